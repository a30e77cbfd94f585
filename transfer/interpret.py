"""§7 interpretability: the nearest vocabulary neighbours (cosine, input embedding matrix) of each
learned prompt token, and whether class-label initialisations persist through training.

For a class_label prompt, token i was initialised from label i's (sub-token averaged) embedding
(§3.2); the paper finds "that label is often among the learned token's nearest neighbors after
tuning". We check exactly that, and count the prompt tokens that have any verbalizer among their
top-k neighbours (with other inits the labels "tend to appear as neighbors to multiple prompt tokens").
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from tuning.artifact import PromptArtifact, load_prompt  # noqa: E402
from tuning.backbone import Backbone, load_backbone  # noqa: E402
from tuning.encoding import target_ids  # noqa: E402
from tuning.prompts import init_prompt  # noqa: E402
from tuning.tasks import get_task  # noqa: E402

from .common import run_training, train_config  # noqa: E402
from .config import InterpretConfig  # noqa: E402
from .report import Table, write_csv, write_report  # noqa: E402
from .runner import run_all  # noqa: E402


@torch.no_grad()
def nearest_neighbours(backbone: Backbone, prompt: torch.Tensor, k: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """(cosines [p, k], token ids [p, k]) of each prompt token's k nearest vocabulary embeddings."""
    weight = backbone.model.get_input_embeddings().weight
    n = min(len(backbone.tokenizer), weight.shape[0])  # rows past the tokenizer are padding, not tokens
    vocab = F.normalize(weight[:n].float(), dim=-1)
    sims = F.normalize(prompt.float().to(vocab.device), dim=-1) @ vocab.T
    top = sims.topk(min(k, n), dim=-1)
    return top.values.cpu(), top.indices.cpu()


def label_tokens(backbone: Backbone, labels) -> list[list[int]]:
    """Each label's token ids as class_label initialisation embeds them (tuning.prompts.class_label)."""
    return [target_ids(backbone, label, eos=False) for label in labels]


def analyse(backbone: Backbone, prompt: torch.Tensor, init: str, labels, k: int = 5) -> dict:
    """Neighbours of every prompt token plus the class-label persistence checks."""
    cos, ids = nearest_neighbours(backbone, prompt, k)
    tok = backbone.tokenizer
    per_label = label_tokens(backbone, labels)
    any_label = {i for ids_ in per_label for i in ids_}
    tokens = []
    for t in range(prompt.shape[0]):
        top = ids[t].tolist()
        row = {"token": t, "neighbours": [tok.decode([i]) for i in top], "ids": top,
               "cosines": [round(float(c), 4) for c in cos[t]], "has_label": bool(any_label & set(top)),
               "init_word": labels[t] if init == "class_label" and t < len(labels) else "", "own_label": None}
        if row["init_word"]:
            row["own_label"] = bool(set(per_label[t]) & set(top))
        tokens.append(row)
    initialised = [r for r in tokens if r["init_word"]]
    return {"tokens": tokens, "init": init, "labels": list(labels),
            "persisting": sum(r["own_label"] for r in initialised), "initialised": len(initialised),
            "with_label": sum(r["has_label"] for r in tokens), "length": prompt.shape[0],
            "mean_top1": float(cos[:, 0].mean())}


def interpret_unit(spec: dict) -> dict:
    config, result = run_training(spec)
    return {"artifacts": result.artifacts()}


def _md(text: str) -> str:
    return repr(text)[1:-1].replace("|", "\\|")


def run(config: InterpretConfig) -> dict:
    config.validate()
    results_dir = Path(config.results_dir or "results/interpret")
    start = time.time()
    backbone = load_backbone(config.train.model)
    named: list[tuple[str, PromptArtifact]] = []
    if config.prompts:
        named = [(Path(p).stem, load_prompt(p, backbone)) for p in config.prompts]
    elif config.untrained:
        task = get_task(config.train.task)
        for seed in config.seeds:
            prompt = init_prompt(backbone, config.train.prompt_length, config.train.init, seed, task.init_words)
            named.append((f"{task.name}-p{config.train.prompt_length}-{config.train.init}-s{seed}-untrained",
                          PromptArtifact(prompt, task.name, backbone.name, backbone.fingerprint, config.train.init,
                                         task.verbalizers)))
    else:
        specs = [{"train": train_config(config, config.train.task, "prompt", seed).to_dict()} for seed in config.seeds]
        for r in run_all(interpret_unit, specs, config, lambda s: f"prompt tuning {s['train']['task']}, seed {s['train']['seed']}"):
            for a in r["artifacts"]:
                named.append((f"{a.task}-p{a.length}-{a.init}-s{a.config.get('seed')}", a))

    analyses, rows = [], []
    summary = Table(f"Prompt interpretability (§7): top-{config.top_k} cosine neighbours in {backbone.name}'s "
                    "input embeddings", ["Prompt", "Task", "Init", "Label inits persisting",
                                         f"Tokens with a label in top-{config.top_k}", "Mean top-1 cosine"])
    detail = ["", "| Prompt | Token | Init word | Nearest neighbours (cosine) |", "|---|---|---|---|"]
    for name, artifact in named:
        labels = get_task(artifact.task).init_words if artifact.task else artifact.verbalizers
        a = analyse(backbone, artifact.prompt, artifact.init, labels, config.top_k)
        a["name"], a["task"] = name, artifact.task
        analyses.append(a)
        persisting = f"{a['persisting']}/{a['initialised']}" if a["initialised"] else "– (not class_label)"
        summary.rows.append([name, artifact.task, artifact.init, persisting, f"{a['with_label']}/{a['length']}",
                             f"{a['mean_top1']:.3f}"])
        for t in a["tokens"]:
            shown = ", ".join(f"'{_md(w)}' {c:.2f}" for w, c in zip(t["neighbours"], t["cosines"]))
            mark = " ✓" if t["own_label"] else (" ✗" if t["own_label"] is False else "")
            detail.append(f"| {name} | {t['token']} | {_md(t['init_word'])}{mark} | {shown} |")
            row = {"prompt": name, "task": artifact.task, "init": artifact.init, "token": t["token"],
                   "init_word": t["init_word"], "own_label_in_top_k": t["own_label"], "label_in_top_k": t["has_label"]}
            for j, (w, c) in enumerate(zip(t["neighbours"], t["cosines"]), 1):
                row[f"neighbour_{j}"], row[f"cosine_{j}"] = w, c
            rows.append(row)
    summary.notes = [f"{len(named)} prompt(s); wall time {time.time() - start:.0f} s. Label inits persisting: "
                     "class_label tokens whose own label token is among their neighbours (✓ below). Labels are "
                     "the task's init words (its verbalizers for classification)."]
    paths = write_report(results_dir, "interpret", summary, [], {"config": config.to_dict(), "prompts": analyses})
    paths["md"].write_text(summary.markdown() + "\n".join(detail) + "\n")
    paths["csv"] = write_csv(results_dir / "interpret.csv", rows)
    paths["png"] = _plot(results_dir / "interpret.png", analyses, config.top_k)
    return {"paths": paths, "analyses": analyses}


def _plot(path: Path, analyses: list[dict], k: int) -> Path:
    """Top-1 neighbour cosine per prompt token; tokens with a label among their neighbours in orange."""
    shown = analyses[:6]
    fig, axes = plt.subplots(len(shown), 1, figsize=(8, 1.8 * len(shown) + 0.6), squeeze=False)
    for ax, a in zip(axes[:, 0], shown):
        colours = ["tab:orange" if t["has_label"] else "tab:blue" for t in a["tokens"]]
        ax.bar(range(a["length"]), [t["cosines"][0] for t in a["tokens"]], color=colours)
        ax.set_ylabel("top-1 cos", fontsize=8)
        ax.set_title(f"{a['name']}: orange = a label among its top-{k}", fontsize=9)
    axes[-1, 0].set_xlabel("prompt token")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
