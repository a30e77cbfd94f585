"""What decides whether a small model's prompt learns: learning curves on full dev sets, per factor.

Each factor is a set of arms, each arm a few `TrainConfig` overrides of the job's base run. Every arm
trains with evaluation on the whole dev set every `--eval-every` steps; arms that resolve to the same
run (the base run appears in every factor) train once. Beside the curves: the majority-class
baseline (the most common training label, predicted for every dev example) and the model-tuning
baseline (every weight trained, same steps and batches).

Writes `study.md` (best and final dev score of every arm), `study.csv` (one row per arm and
evaluation: the curves), `study.json` (every history record) and `study-<task>.png` (one panel per
factor, score vs step). Each arm's result is also kept in `units/` as soon as it is done, so a study
that is stopped keeps its finished arms and the same command run again trains only the others.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from pathlib import Path

import torch

from tuning.artifact import atomic_write
from tuning.precision import resolve_device, resolve_dtype
from tuning.tasks import get_task

from .common import examples, run_training, skip, train_config, unavailable
from .config import StudyConfig
from .report import Table, pct, write_report
from .runner import run_all

# Arms per factor: TrainConfig overrides of the base run (§3.2 and Figure 3 for length and init).
FACTORS: dict[str, dict[str, dict]] = {
    # The step size relative to the embedding scale (RMS: element RMS of the input embeddings).
    "optimizer": {
        "recipe: AdamW 0.075×RMS, β2 0.99": {},
        "paper: Adafactor lr 0.3": {"recipe": "paper"},
        "Adafactor lr 0.3, scaling on": {"recipe": "paper", "scale_parameter": True},
        "Adafactor lr 0.3×RMS": {"optimizer": "adafactor", "lr_per_embedding_rms": 0.3},
        "Adafactor lr 0.03×RMS": {"optimizer": "adafactor", "lr_per_embedding_rms": 0.03},
        "AdamW 0.075×RMS, β2 0.999": {"optimizer": "adamw", "lr_per_embedding_rms": 0.075, "beta2": 0.999},
        "AdamW 0.022×RMS, β2 0.999": {"optimizer": "adamw", "lr_per_embedding_rms": 0.022, "beta2": 0.999},
    },
    "length": {f"p={n}": {"prompt_length": n} for n in (1, 5, 20, 100)},
    "init": {name: {"init": name} for name in ("random_uniform", "sampled_vocab", "class_label")},
    "precision": {"float32": {"dtype": "float32"}, "bfloat16": {"dtype": "bfloat16"}},
    # Evaluating a moving average of the prompt instead of its last value (not in the paper).
    "averaging": {"last prompt": {"ema_decay": 0.0}, "EMA 0.99": {"ema_decay": 0.99}},
    # Training the prompt through a residual MLP (Razdaibiedina et al., 2023; not in the paper).
    "reparameterization": {"prompt is the parameter": {}, "residual MLP": {"reparameterization": "residual_mlp"}},
}
MODEL_TUNING = "model tuning"
NOT_RUN = "—"  # a baseline that does not apply (generation tasks, T5) or was turned off (--no-linear-probe)


def study_unit(spec: dict) -> dict:
    """One arm: train with full-dev evaluations, return its curve."""
    start = time.time()
    config, result = run_training(spec)
    curve = [{"step": r["step"], "loss": r["loss"], "lr": r["lr"], **r["dev"][0]} for r in result.history if "dev" in r]
    return {"key": spec["key"], "curve": curve, "losses": [r["loss"] for r in result.history],
            "best": result.best_metrics[0], "config": result.config.to_dict(), "seconds": time.time() - start}


def unit_path(units_dir: str | Path, key: str) -> Path:
    return Path(units_dir) / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def kept_unit(spec: dict) -> dict:
    """`study_unit`, its result written to the spec's `units_dir` (temp file, then rename) as soon as it is done."""
    result = study_unit(spec)
    atomic_write(unit_path(spec["units_dir"], spec["key"]), lambda tmp: Path(tmp).write_text(json.dumps(result)))
    return result


def majority_baseline(task_name: str, data_dir, train_limit=None, dev_limit=None) -> dict | None:
    """Dev metrics of always answering the most common training label (classification tasks only)."""
    task = get_task(task_name)
    if task.kind != "classification":
        return None
    label, _ = Counter(e.target_text for e in examples(task_name, "train", data_dir, train_limit)).most_common(1)[0]
    dev = examples(task_name, "validation", data_dir, dev_limit)
    return task.score([label] * len(dev), dev)


@torch.no_grad()
def frozen_features(backbone, texts: list[str], max_input_length: int, batch_size: int = 32) -> torch.Tensor:
    """The backbone's last-layer state at each input's last token, with no prompt: [n, d]."""
    from tuning.encoding import encode

    out = []
    for i in range(0, len(texts), batch_size):
        batch = encode(backbone, texts[i:i + batch_size], None, max_input_length, "left").to(backbone.device)
        positions = (batch.input_mask.cumsum(-1) - 1).clamp(min=0)
        hidden = backbone.model.base_model(input_ids=batch.input_ids, attention_mask=batch.input_mask,
                                           position_ids=positions).last_hidden_state
        out.append(hidden[:, -1].float().cpu())
    return torch.cat(out)


def linear_probe_baseline(config: StudyConfig, task_name: str) -> dict | None:
    """Dev metrics of a logistic regression on the frozen model's last-token features (no prompt):
    how much of the task the frozen representations already separate (decoder-only, classification)."""
    from sklearn.linear_model import LogisticRegression

    from tuning.train import backbone_for

    task = get_task(task_name)
    train = examples(task_name, "train", config.train.data_dir, config.train.train_examples)
    if task.kind != "classification" or len({e.label for e in train}) < 2:
        return None  # nothing to separate
    backbone = backbone_for(config.train)
    if backbone.is_encoder_decoder:
        return None
    dev = examples(task_name, "validation", config.train.data_dir, config.eval_examples)
    x_train = frozen_features(backbone, [e.input_text for e in train], config.train.max_input_length)
    x_dev = frozen_features(backbone, [e.input_text for e in dev], config.train.max_input_length)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    probe = LogisticRegression(C=0.01, max_iter=2000).fit(((x_train - mean) / std).numpy(), [e.label for e in train])
    predicted = probe.predict(((x_dev - mean) / std).numpy())
    return task.score([task.verbalizers[i] for i in predicted], dev)


def plan(config: StudyConfig) -> tuple[list[dict], list[dict]]:
    """(arms: task/factor/arm/key, unique training specs by key)."""
    arms, specs = [], {}
    for task in config.tasks:
        runs = [(factor, name, o) for factor in config.factors for name, o in FACTORS[factor].items()]
        if config.model_tuning:
            runs.append((MODEL_TUNING, MODEL_TUNING, {"mode": "model", "lr": config.model_lr}))
        for seed in config.seeds:
            for factor, name, overrides in runs:
                mode = overrides.get("mode", "prompt")
                train = train_config(config, task, mode, seed, **{k: v for k, v in overrides.items() if k != "mode"})
                train.dtype = resolve_dtype(train.dtype, resolve_device(train.device), mode)
                train.eval_examples = config.eval_examples   # the curve is on the reported (whole) dev set
                key = json.dumps(train.to_dict(), sort_keys=True)
                specs.setdefault(key, {"train": train.to_dict(), "key": key})
                arms.append({"task": task, "factor": factor, "arm": name, "seed": seed, "key": key})
    return arms, list(specs.values())


def run(config: StudyConfig) -> dict:
    config.validate()
    results_dir = Path(config.results_dir or "results/study")
    missing = {}
    for task in config.tasks:
        message = unavailable(task, "train", config.train.data_dir) or unavailable(task, "validation", config.train.data_dir)
        if message:
            skip(message)
            missing[task] = message
    config.tasks = tuple(t for t in config.tasks if t not in missing)
    arms, specs = plan(config)
    start = time.time()
    units_dir = results_dir / "units"
    done = {s["key"]: json.loads(unit_path(units_dir, s["key"]).read_text()) for s in specs
            if unit_path(units_dir, s["key"]).exists()}
    if done:
        print(f"{len(done)} of {len(specs)} runs already done: reusing them from {units_dir}", flush=True)
    todo = [{**s, "units_dir": str(units_dir)} for s in specs if s["key"] not in done]
    done |= {r["key"]: r for r in run_all(kept_unit, todo, config, _describe)}
    baselines = {task: majority_baseline(task, config.train.data_dir, config.train.train_examples, config.eval_examples)
                 for task in config.tasks}
    probes = {task: linear_probe_baseline(config, task) if config.linear_probe else None for task in config.tasks}

    table = Table(f"Learning study: {config.train.steps} steps at batch {config.train.batch_size}, whole dev sets",
                  ["Task", "Factor", "Arm", "Optimiser, lr", "Best dev (step)", "Final dev", "Majority",
                   "Linear probe", "s"])
    rows = []
    for a in arms:
        r, task = done[a["key"]], get_task(a["task"])
        metric, majority = task.primary_metric, baselines[a["task"]]
        best = r["best"]
        resolved = r["config"]
        table.rows.append([a["task"], a["factor"], a["arm"], f"{resolved['optimizer']} {resolved['lr']:.3g}",
                           f"{pct(best[metric])} ({best['step']})",
                           pct(r["curve"][-1][metric]), pct(majority[metric]) if majority else NOT_RUN,
                           pct(probes[a["task"]][metric]) if probes[a["task"]] else NOT_RUN, f"{r['seconds']:.0f}"])
        for point in r["curve"]:
            rows.append({**{k: a[k] for k in ("task", "factor", "arm", "seed")}, "metric": metric,
                         "majority": majority[metric] if majority else None,
                         "linear_probe": probes[a["task"]][metric] if probes[a["task"]] else None, **point})
    table.notes = [f"model {config.train.model}; lr and optimiser per arm (recipe: tuning/recipe.py); prompt length "
                   f"{config.train.prompt_length}, init {config.train.init} unless the arm says otherwise; seeds {list(config.seeds)}; "
                   f"evaluation every {config.eval_every} steps on the whole dev set; wall time {time.time() - start:.0f} s",
                   "Majority: the most common training label answered for every dev example. Linear probe: "
                   "logistic regression on the frozen model's last-token state (no prompt), trained on the same "
                   "training examples: what the frozen representations already separate."]
    paths = write_report(results_dir, "study", table, rows,
                         {"config": config.to_dict(), "arms": arms, "runs": list(done.values()), "majority": baselines,
                          "linear_probe": probes})
    for task in config.tasks:
        paths[f"png-{task}"] = plot_task(results_dir / f"study-{task}.png", task, arms, done, baselines[task],
                                         probes[task])
    return {"paths": paths, "arms": arms, "runs": done, "majority": baselines, "linear_probe": probes,
            "missing": missing}


def _describe(spec: dict) -> str:
    t = spec["train"]
    return (f"{t['task']} {t['mode']}: {t['recipe']} recipe, {t['optimizer'] or 'its optimiser'} lr {t['lr'] or 'its lr'}, "
            f"p={t['prompt_length']}, "
            f"{t['init']}, {t['dtype']}, seed {t['seed']}")


def plot_task(path: Path, task_name: str, arms: list[dict], done: dict, majority: dict | None,
              probe: dict | None = None) -> Path:
    """One panel per factor: each arm's dev score vs step, with the baselines on the same axes."""
    from .report import plt

    task = get_task(task_name)
    metric = task.primary_metric
    mine = [a for a in arms if a["task"] == task_name]
    factors = [f for f in dict.fromkeys(a["factor"] for a in mine) if f != MODEL_TUNING]
    model = [a for a in mine if a["factor"] == MODEL_TUNING]
    fig, axes = plt.subplots(1, max(1, len(factors)), figsize=(4.2 * max(1, len(factors)), 3.6), sharey=True, squeeze=False)
    for ax, factor in zip(axes[0], factors):
        for j, a in enumerate(x for x in mine if x["factor"] == factor):
            curve = done[a["key"]]["curve"]
            ax.plot([p["step"] for p in curve], [100 * p[metric] for p in curve], marker="o", ms=3,
                    color=f"C{j}", label=a["arm"] + (f" s{a['seed']}" if len({x['seed'] for x in mine}) > 1 else ""))
        for a in model:
            curve = done[a["key"]]["curve"]
            ax.plot([p["step"] for p in curve], [100 * p[metric] for p in curve], "k:", label=MODEL_TUNING)
        if majority:
            ax.axhline(100 * majority[metric], color="grey", ls="--", lw=1, label="majority class")
        if probe:
            ax.axhline(100 * probe[metric], color="brown", ls="-.", lw=1, label="linear probe, frozen features")
        ax.set_title(factor, fontsize=10)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel(f"{task_name} dev {metric} (%)")
    fig.suptitle(f"{task_name}: learning curves (whole dev set)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
