"""Table 3 (§6): a five-prompt ensemble from one frozen model vs the average and best single prompt.

One packed training run per task gives the N prompts (seeds seed..seed+N-1, `TrainConfig.num_prompts`);
`ensemble.EnsembleEngine` then answers every evaluation example with all N prompts in shared batches.
Each prompt's own answers give the single-prompt scores, their majority vote the ensemble's.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ensemble import EnsembleEngine, PromptBank
from tuning.artifact import save_prompt
from tuning.registry import PromptRegistry
from tuning.tasks import get_task

from .common import describe_lr, examples, run_training, skip, train_config, unavailable
from .config import EnsembleConfig
from .report import NA, Table, grouped_bars, mean_std, pct_mean_std, write_report
from .runner import run_all


def ensemble_unit(spec: dict) -> dict:
    """Train N prompts on one task, then score each prompt and their vote on the report split."""
    start = time.time()
    config, result = run_training(spec)
    task = get_task(config.task)
    rows = examples(task.name, spec["eval_split"], config.data_dir, spec["eval_examples"])
    prompts = torch.stack(result.prompts)
    names = [f"{task.name}-p{config.prompt_length}-{config.init}-s{config.seed + k}" for k in range(len(prompts))]
    bank = PromptBank(result.backbone)
    bank.add(task.name, prompts, names)
    engine = EnsembleEngine(bank, max_rows=max(config.eval_batch_size, len(prompts)),
                            max_input_length=config.max_input_length)
    predictions = []
    chunk = max(1, 4 * engine.max_rows // len(prompts))  # a few engine passes per bar step
    for start_at in tqdm(range(0, len(rows), chunk), desc=f"ensemble {task.name}", disable=not config.progress):
        items = [(task.name, e.input_text) for e in rows[start_at:start_at + chunk]]
        predictions += engine.predict(items, voting=spec["voting"])
    singles = [task.score([p.answers[k] for p in predictions], rows) for k in range(len(prompts))]
    ensemble = task.score([p.prediction for p in predictions], rows)
    return {"task": task.name, "names": names, "singles": singles, "ensemble": ensemble,
            "agreement": sum(p.agreement for p in predictions) / len(predictions),
            "selection": result.best_metrics, "artifacts": result.artifacts(),
            "n_eval": len(rows), "seconds": time.time() - start}


def metric_keys(task) -> list[str]:
    """The metrics a paper table shows: the benchmark's own, not our "average" helper key."""
    probe = task.primary_metric
    keys = {"mrpc": ["accuracy", "f1"], "qqp": ["accuracy", "f1"], "cb": ["accuracy", "macro_f1"],
            "multirc": ["em", "f1a"], "record": ["em", "f1"]}.get(task.name)
    return keys or [probe]


def run(config: EnsembleConfig) -> dict:
    config.validate()
    results_dir = Path(config.results_dir or "results/ensemble")
    specs, missing = [], {}
    for name in config.tasks:
        task = get_task(name)
        message = (unavailable(task.name, "train", config.train.data_dir, config.train.train_examples)
                   or unavailable(task.name, config.eval_split, config.train.data_dir, config.eval_examples))
        if message:
            skip(message)
            missing[task.name] = message
            continue
        for seed in config.seeds:
            train = train_config(config, task.name, "prompt", seed)  # config.train packs --num-prompts
            specs.append({"train": train.to_dict(), "eval_split": config.eval_split,
                          "eval_examples": config.eval_examples, "voting": config.voting})
    start = time.time()
    results = run_all(ensemble_unit, specs, config,
                      lambda s: f"{s['train']['task']}: {s['train']['num_prompts']} packed prompts, seed {s['train']['seed']}")
    prompts = PromptRegistry(results_dir / "prompts")  # servable as is: `--registry <results>/prompts`
    for r in results:
        for artifact, name in zip(r.pop("artifacts"), r["names"]):
            save_prompt(artifact, prompts.path_for(r["task"], name))

    table = Table(f"Prompt ensembling (Table 3 layout): {config.train.num_prompts} prompts, {config.voting} vote, "
                  f"{config.eval_split} split", ["Dataset", "Metric", "Average", "Best", "Ensemble"])
    rows, plot = [], {"groups": [], "avg": ([], []), "best": ([], []), "ens": ([], [])}
    for name in config.tasks:
        task = get_task(name)
        keys = metric_keys(task)
        mine = [r for r in results if r["task"] == task.name]
        plot["groups"].append(task.name)
        if not mine:
            table.rows.append([task.name, "/".join(keys), NA, NA, NA])
            rows.append({"task": task.name, "metric": "/".join(keys), "unavailable": missing.get(task.name, "")})
            for k in ("avg", "best", "ens"):
                plot[k][0].append(float("nan"))
                plot[k][1].append(0.0)
            continue
        # Each seed's run is one ensemble; cells pool all of them (mean ± std when there are several runs).
        singles = [s for r in mine for s in r["singles"]]
        best = [max(r["singles"], key=lambda s: s[task.primary_metric]) for r in mine]
        ens = [r["ensemble"] for r in mine]
        table.rows.append([task.name, "/".join(keys),
                           "/".join(pct_mean_std([s[k] for s in singles]) for k in keys),
                           "/".join(pct_mean_std([b[k] for b in best]) for k in keys),
                           "/".join(pct_mean_std([e[k] for e in ens]) for k in keys)])
        for k in keys:
            m, s = mean_std([x[k] for x in singles])
            row = {"task": task.name, "metric": k, "single_mean": m, "single_std": s,
                   "best": mean_std([b[k] for b in best])[0], "ensemble": mean_std([e[k] for e in ens])[0],
                   "agreement": mean_std([r["agreement"] for r in mine])[0], "n_prompts": len(singles),
                   "n_eval": mine[0]["n_eval"]}
            row.update({f"prompt_{i}": x[k] for i, x in enumerate(singles)})
            rows.append(row)
        p = task.primary_metric
        for key, vals in (("avg", [s[p] for s in singles]), ("best", [b[p] for b in best]), ("ens", [e[p] for e in ens])):
            m, s = mean_std(vals)
            plot[key][0].append(m)
            plot[key][1].append(s if key == "avg" else 0.0)
    table.notes = [f"model {config.train.model}; {config.train.steps} steps at batch {config.train.batch_size}, prompt length "
                   f"{config.train.prompt_length}, init {config.train.init}, {describe_lr(config)}; "
                   f"{config.eval_examples or 'all'} {config.eval_split} examples; seeds {list(config.seeds)}; "
                   f"wall time {time.time() - start:.0f} s",
                   "Average: mean±std of the single prompts; Best: the best single prompt (by the task's "
                   "primary metric on the same examples); Ensemble: their vote."]
    paths = write_report(results_dir, "ensemble", table, rows, {"config": config.to_dict(), "results": results})
    grouped_bars(results_dir / "ensemble.png", "Single prompts vs ensemble (primary metric)", plot["groups"],
                 {"average single": plot["avg"], "best single": plot["best"], "ensemble": plot["ens"]})
    paths["png"] = results_dir / "ensemble.png"
    return {"paths": paths, "results": results, "missing": missing}
