"""A static HTML dashboard of a sweep: learning curves, dev metric vs each hyperparameter, best-N table.

It reads only the files Tune leaves on disk (`<trial>/params.json`, `<trial>/result.json`), so it can
be rebuilt later, anywhere, without Ray: `python -m tuning.sweep report <experiment dir>`.
Plots are embedded as base64 PNGs: the file is self-contained and opens from disk or a mail.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .registry import REGISTERED_FILE
from .space import HYPERPARAMETERS

REPORT_FILE = "report.html"


@dataclass
class Trial:
    name: str
    params: dict
    results: list[dict] = field(default_factory=list)
    error: bool = False

    @property
    def last(self) -> dict:
        return self.results[-1] if self.results else {}

    @property
    def trial_id(self) -> str:
        return str(self.last.get("trial_id", self.name))

    @property
    def status(self) -> str:
        if self.error and not self.last.get("finished"):
            return "error"
        if self.last.get("finished"):
            return "complete"
        return "stopped early" if self.results else "no result"

    @property
    def best_score(self) -> float:
        return float(self.last.get("best_score", math.nan))


def read_experiment(directory: Path) -> list[Trial]:
    trials = []
    for trial_dir in sorted(p for p in directory.iterdir() if (p / "params.json").exists()):
        params = json.loads((trial_dir / "params.json").read_text())
        results = []
        result_file = trial_dir / "result.json"
        if result_file.exists():
            for line in result_file.read_text().splitlines():
                if line.strip():
                    try:
                        results.append(json.loads(line))
                    except json.JSONDecodeError:  # a line being written right now
                        pass
        # A retried trial reports again from step 0: keep the last run of each step.
        by_step = {r.get("step"): r for r in results}
        results = [by_step[s] for s in sorted(by_step, key=lambda s: s or 0)]
        trials.append(Trial(trial_dir.name, params, results, (trial_dir / "error.txt").exists()))
    return trials


def experiments(root: Path) -> dict[str, Path]:
    """`root` itself when it is one Tune experiment, else its task experiments."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory: pass an experiment directory (<storage>/<name>)")
    if any((p / "params.json").exists() for p in root.iterdir()):
        return {root.name: root}
    found = {p.name: p for p in sorted(root.iterdir()) if p.is_dir() and any((q / "params.json").exists() for q in p.iterdir() if q.is_dir())}
    if not found:
        raise ValueError(f"no Tune trials under {root}: pass <storage>/<name> or <storage>/<name>/<task>")
    return found


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _learning_curves(task: str, trials: list[Trial]) -> str:
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(8, 4))
    for t in trials:
        steps = [r["step"] for r in t.results if "score" in r]
        if steps:
            ax.plot(steps, [r["score"] for r in t.results if "score" in r], marker="o", markersize=3,
                    linestyle="-" if t.status == "complete" else "--", label=f"{t.trial_id} ({t.status})")
    ax.set(xlabel="training step", ylabel="dev primary metric (best of packed prompts)", title=f"{task}: learning curves")
    ax.grid(alpha=0.3)
    if len(trials) <= 12:
        ax.legend(fontsize=7, loc="best")
    return _png(fig)


def _vs_hyperparameters(task: str, trials: list[Trial]) -> str:
    import matplotlib.pyplot as plt
    scored = [t for t in trials if not math.isnan(t.best_score)]
    names = [h for h in (*HYPERPARAMETERS, "seed") if any(h in t.params for t in scored)]
    cols = 3
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(11, 3 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        values = [t.params.get(name) for t in scored]
        ys = [t.best_score for t in scored]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric and (name == "lr" or len(set(values)) > 3):
            ax.scatter(values, ys, alpha=0.8)
            if name == "lr":
                ax.set_xscale("log")
        else:
            labels = sorted({str(v) for v in values})
            ax.scatter([labels.index(str(v)) for v in values], ys, alpha=0.8)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.set(xlabel=name, ylabel="best dev metric")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.suptitle(f"{task}: dev metric vs each hyperparameter")
    fig.tight_layout()
    return _png(fig)


def _best_table(trials: list[Trial], registered: list[dict]) -> str:
    reg = {(r["trial_id"], r["k"]): Path(r["path"]).name for r in registered}
    rows = []
    for t in trials:
        k = 0
        while f"prompt_{k}/best_score" in t.last:
            rows.append((t.last[f"prompt_{k}/best_score"], t, k))
            k += 1
    rows.sort(key=lambda r: -r[0])
    shown = max(len(reg), 10)
    head = "".join(f"<th>{h}</th>" for h in ("rank", "trial", "prompt", "best dev", "at step", "status",
                                            "lr", "batch", "steps", "length", "init", "seed", "registered"))
    body = []
    for rank, (score, t, k) in enumerate(rows[:shown], 1):
        p = t.params
        lr = p.get("lr")
        cells = [rank, t.trial_id, k, f"{score:.4f}", t.last.get(f"prompt_{k}/best_step", ""), t.status,
                 f"{lr:.4g}" if isinstance(lr, (int, float)) else lr, p.get("batch_size"), p.get("steps"),
                 p.get("prompt_length"), p.get("init"), p.get("seed", 0) + k if isinstance(p.get("seed"), int) else "",
                 reg.get((t.trial_id, k), "")]
        tds = [f'<td class="score">{c}</td>' if i == 3 else f"<td>{html.escape(str(c))}</td>" for i, c in enumerate(cells)]
        body.append("<tr>" + "".join(tds) + "</tr>")
    return f'<table class="best"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


_STYLE = """body{font-family:sans-serif;margin:24px;color:#222}h1{font-size:22px}h2{margin-top:32px;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f0f0f0}img{max-width:100%;display:block;margin:12px 0}.meta{color:#666;font-size:13px}"""


def render(root: str | Path) -> str:
    root = Path(root)
    sections = []
    for task, directory in experiments(root).items():
        trials = read_experiment(directory)
        registered_file = directory / REGISTERED_FILE
        registered = json.loads(registered_file.read_text()) if registered_file.exists() else []
        counts = {s: sum(t.status == s for t in trials) for s in ("complete", "stopped early", "error", "no result")}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        sections.append(
            f'<section id="{html.escape(task)}"><h2>{html.escape(task)}</h2>'
            f'<p class="meta">{len(trials)} trials ({summary}); registered prompts: {len(registered)}. '
            f'Dev primary metric; packed prompts are separate candidates.</p>'
            f'<h3>Best prompts</h3>{_best_table(trials, registered)}'
            f'<h3>Learning curves</h3><img alt="learning curves {html.escape(task)}" src="data:image/png;base64,{_learning_curves(task, trials)}">'
            f'<h3>Dev metric vs hyperparameters</h3><img alt="hyperparameters {html.escape(task)}" src="data:image/png;base64,{_vs_hyperparameters(task, trials)}">'
            f'</section>')
    title = f"Prompt-tuning sweep: {html.escape(root.name)}"
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>{title}</title><style>{_STYLE}</style></head>'
            f'<body><h1>{title}</h1><p class="meta">{html.escape(str(root))} &middot; TensorBoard: '
            f'<code>tensorboard --logdir {html.escape(str(root))}</code></p>{"".join(sections)}</body></html>')


def write_report(root: str | Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    out = Path(root) / REPORT_FILE
    out.write_text(render(root))
    return out
