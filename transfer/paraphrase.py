"""Table 2 (§5): zero-shot transfer between the paraphrase tasks QQP and MRPC, prompt vs model tuning.

The trained model is rank-classified over the TRAINING task's verbalizers (the only labels it was
taught); `PARAPHRASE_LABEL_MAP` turns those into the evaluation task's labels before scoring, so
"duplicate" counts as "equivalent" and vice versa. Accuracy and F1, mean ± std over seeds.
"""

from __future__ import annotations

import time
from pathlib import Path

from tuning.evaluate import predict
from tuning.model import PromptedLM
from tuning.tasks import PARAPHRASE_LABEL_MAP, get_task

from .common import describe_lr, examples, run_training, skip, train_config, unavailable
from .config import ParaphraseConfig
from .report import NA, Table, grouped_bars, mean_std, pct_mean_std, write_report
from .runner import run_all


def zero_shot(lm, prompt, train_task, eval_task, examples, batch_size: int, max_input_length: int) -> dict:
    """Score a train_task model on eval_task examples through the label map."""
    answers = predict(lm, prompt, train_task, [e.input_text for e in examples], batch_size=batch_size,
                      max_input_length=max_input_length)[0]
    return eval_task.score([PARAPHRASE_LABEL_MAP[a] for a in answers], examples)


def paraphrase_unit(spec: dict) -> dict:
    start = time.time()
    config, result = run_training(spec)
    out = {"train": config.task, "eval": spec["eval"], "mode": config.mode, "seed": config.seed,
           "in_domain": {k: v for k, v in result.best_metrics[0].items() if k != "step"}, "transfer": None}
    if spec["eval_available"]:
        eval_task = get_task(spec["eval"])
        rows = examples(eval_task.name, "validation", config.data_dir, spec["eval_examples"])
        out["transfer"] = zero_shot(PromptedLM(result.backbone), result.prompts[0][None], get_task(config.task),
                                    eval_task, rows, config.eval_batch_size, config.max_input_length)
    out["seconds"] = time.time() - start
    return out


def run(config: ParaphraseConfig) -> dict:
    config.validate()
    results_dir = Path(config.results_dir or "results/paraphrase")
    specs, missing = [], {}
    for direction in config.directions:
        source, target = direction.split(":")
        no_train = (unavailable(source, "train", config.train.data_dir, config.train.train_examples)
                    or unavailable(source, "validation", config.train.data_dir, config.select_examples or config.eval_examples))
        no_eval = unavailable(target, "validation", config.train.data_dir, config.eval_examples)
        if no_train:
            skip(no_train)
            missing[direction] = no_train
            continue
        if no_eval:  # the training still gives the in-domain row
            skip(no_eval)
            missing[direction] = no_eval
        for mode in config.modes:
            for seed in config.seeds:
                specs.append({"train": train_config(config, source, mode, seed).to_dict(), "eval": target,
                              "eval_available": not no_eval, "eval_examples": config.eval_examples})
    start = time.time()
    results = run_all(paraphrase_unit, specs, config,
                      lambda s: f"{s['train']['mode']} tuning on {s['train']['task']}, seed {s['train']['seed']} -> {s['eval']}")

    modes = [m for m in ("model", "prompt") if m in config.modes]
    table = Table("Zero-shot transfer between paraphrase tasks (Table 2 layout), mean±std over seeds",
                  ["Train", "Eval", "Tuning", "Accuracy", "F1", "In-domain acc.", "In-domain F1"])
    rows, groups, plot = [], [], {m: ([], []) for m in modes}
    for direction in config.directions:
        source, target = direction.split(":")
        groups.append(f"{source.upper()}→{target.upper()}")
        for mode in modes:
            mine = [r for r in results if r["train"] == source and r["eval"] == target and r["mode"] == mode]
            transfer = [r["transfer"] for r in mine if r["transfer"] is not None]
            inside = [r["in_domain"] for r in mine]
            cells = [pct_mean_std([t[k] for t in transfer]) if transfer else NA for k in ("accuracy", "f1")]
            cells += [pct_mean_std([t[k] for t in inside]) if inside else NA for k in ("accuracy", "f1")]
            table.rows.append([source.upper(), target.upper(), mode.capitalize(), *cells])
            row = {"train": source, "eval": target, "mode": mode, "runs": len(mine)}
            for prefix, got in (("transfer", transfer), ("in_domain", inside)):
                for k in ("accuracy", "f1"):
                    row[f"{prefix}_{k}_mean"], row[f"{prefix}_{k}_std"] = mean_std([t[k] for t in got])
            if direction in missing:
                row["unavailable"] = missing[direction]
            rows.append(row)
            plot[mode][0].append(row["transfer_f1_mean"])
            plot[mode][1].append(row["transfer_f1_std"] if transfer else 0.0)
    table.notes = [f"model {config.train.model}; {config.train.steps} steps at batch {config.train.batch_size}; prompt length "
                   f"{config.train.prompt_length} ({config.train.init}, {describe_lr(config)}); model tuning lr {config.model_lr}; "
                   f"{config.eval_examples or 'all'} validation examples per set; seeds {list(config.seeds)}; "
                   f"wall time {time.time() - start:.0f} s",
                   "Accuracy/F1: zero-shot on the Eval task's validation split, predictions mapped with "
                   "PARAPHRASE_LABEL_MAP; In-domain: the Train task's validation split."]
    paths = write_report(results_dir, "paraphrase", table, rows, {"config": config.to_dict(), "results": results})
    grouped_bars(results_dir / "paraphrase.png", "Zero-shot paraphrase transfer (F1)", groups,
                 {f"{m} tuning": plot[m] for m in modes}, ylabel="F1 (%)")
    paths["png"] = results_dir / "paraphrase.png"
    return {"paths": paths, "results": results, "missing": missing}
