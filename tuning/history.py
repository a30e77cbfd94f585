"""A training run's learning curve, kept on disk as it happens: JSON lines and TensorBoard events.

One record per training step (`step`, `loss`, `lr`, `seconds`), plus `dev` (a metrics dict per
prompt) at each evaluation, the same records `train()` returns in `TrainResult.history`.
"""

from __future__ import annotations

import json
from pathlib import Path


class HistoryWriter:
    """Appends each record to `<stem>.history.jsonl` and writes its scalars under `<stem>.tensorboard/`.

    `past`: the records of a resumed run up to its checkpoint; the file starts with them, and TensorBoard
    hides what an earlier writer logged from the first new step on (a run started over: from step 1)."""

    def __init__(self, stem: str | Path, past: list[dict] = ()):
        from torch.utils.tensorboard import SummaryWriter

        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        self.path = stem.with_name(stem.name + ".history.jsonl")
        self.tensorboard_dir = stem.with_name(stem.name + ".tensorboard")
        self._file = open(self.path, "w")
        self._file.writelines(json.dumps(record) + "\n" for record in past)
        self._tb = SummaryWriter(str(self.tensorboard_dir), purge_step=past[-1]["step"] + 1 if past else 1)

    def __call__(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        step = record["step"]
        self._tb.add_scalar("train/loss", record["loss"], step)
        self._tb.add_scalar("train/lr", record["lr"], step)
        for k, metrics in enumerate(record.get("dev", [])):
            for name, value in metrics.items():
                self._tb.add_scalar(f"dev/prompt_{k}/{name}", value, step)

    def close(self) -> None:
        self._file.close()
        self._tb.close()

    def __enter__(self) -> "HistoryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()



def read_history(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _dev_axis(ax, metric: str, baselines: dict[str, float] | None) -> None:
    """Baselines (name -> 0-1 value) as horizontal lines, axis labels and the legend of a dev-metric panel."""
    for j, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(100 * value, color=("grey", "brown", "black")[j % 3], ls=("--", "-.", ":")[j % 3], lw=1, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel(f"dev {metric} (%)")
    ax.legend(fontsize=7)


def _save(fig, out: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    _pyplot().close(fig)
    return out


def run_label(path: str | Path) -> str:
    return Path(path).name.removesuffix(".history.jsonl")


def plot_history(path: str | Path, out: str | Path, metric: str, baselines: dict[str, float] | None = None,
                 smooth: int = 50) -> Path:
    """A run's curve as a picture: each packed prompt's dev `metric` per evaluation (left) and the
    training loss, averaged over `smooth` steps (right); `baselines` (name -> value) as lines."""
    records = read_history(path)
    evals = [r for r in records if "dev" in r]
    fig, (dev, loss) = _pyplot().subplots(1, 2, figsize=(10, 3.8))
    for k in range(len(evals[0]["dev"]) if evals else 0):
        dev.plot([r["step"] for r in evals], [100 * r["dev"][k][metric] for r in evals], marker="o", ms=3,
                 label=f"prompt {k}")
    _dev_axis(dev, metric, baselines)
    losses = [r["loss"] for r in records]
    window = max(1, min(smooth, len(losses)))
    averaged = [sum(losses[i - window:i]) / window for i in range(window, len(losses) + 1)]
    loss.plot([r["step"] for r in records[window - 1:]], averaged)
    loss.set_xlabel("step")
    loss.set_ylabel(f"training loss (mean of {window} steps)")
    loss.set_yscale("log")
    fig.suptitle(run_label(path), fontsize=10)
    return _save(fig, out)


def plot_runs(paths: list[str | Path], out: str | Path, metric: str, baselines: dict[str, float] | None = None,
              labels: list[str] | None = None) -> Path:
    """Several runs on one axis: each run's dev `metric` per evaluation, the mean over its packed prompts
    with their min-max band, so runs of different K, init or recipe compare at equal steps."""
    fig, ax = _pyplot().subplots(figsize=(7, 4.2))
    for path, label in zip(paths, labels or [run_label(p) for p in paths]):
        evals = [r for r in read_history(path) if "dev" in r]
        steps = [r["step"] for r in evals]
        values = [[100 * m[metric] for m in r["dev"]] for r in evals]
        k = len(values[0]) if values else 0
        line, = ax.plot(steps, [sum(v) / len(v) for v in values], marker="o", ms=3,
                        label=f"{label} (mean of {k})" if k > 1 else label)
        if k > 1:
            ax.fill_between(steps, [min(v) for v in values], [max(v) for v in values], color=line.get_color(), alpha=0.15)
    _dev_axis(ax, metric, baselines)
    return _save(fig, out)
