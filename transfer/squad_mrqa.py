"""Table 1 (§5): resilience to domain shift. Train on SQuAD, evaluate zero-shot F1/EM on the MRQA 2019
out-of-domain dev sets, prompt tuning vs model tuning, mean ± std over seeds, Δ = prompt − model.

The checkpoint is selected on SQuAD dev (in-domain), as the out-of-domain sets are unseen.
Missing out-of-domain sets (only RACE ships offline) are reported, not fatal.
"""

from __future__ import annotations

import time
from pathlib import Path

from tuning.evaluate import predict
from tuning.model import PromptedLM
from tuning.tasks import get_task

from .common import describe_lr, examples, run_training, skip, train_config, unavailable
from .config import SquadMrqaConfig
from .report import NA, Table, grouped_bars, mean_std, pct_mean_std, write_report
from .runner import run_all

DOMAINS = {"squad": "Wiki", "textbookqa": "Book", "bioasq": "Bio", "race": "Exam", "relation_extraction": "Wiki",
           "duorc": "Movie", "drop": "Wiki"}
SHOWN = {"squad": "SQuAD", "textbookqa": "TextbookQA", "bioasq": "BioASQ", "race": "RACE",
         "relation_extraction": "RE", "duorc": "DuoRC", "drop": "DROP"}


def transfer_unit(spec: dict) -> dict:
    """Train on SQuAD (prompt or whole model), then score the result on each out-of-domain set."""
    start = time.time()
    config, result = run_training(spec)
    lm = PromptedLM(result.backbone)
    prompt = result.prompts[0][None].to(result.backbone.device)  # [1, p, d]; p = 0 for model tuning
    scores = {"squad": {k: v for k, v in result.best_metrics[0].items() if k != "step"}}
    samples = {}  # a few predictions per set, kept in the JSON to see what the model actually answers
    for name in spec["ood"]:
        task = get_task(name)
        rows = examples(name, "validation", config.data_dir, spec["eval_examples"])
        answers = predict(lm, prompt, task, [e.input_text for e in rows], batch_size=config.eval_batch_size,
                          max_input_length=config.max_input_length, max_new_tokens=spec["max_new_tokens"])[0]
        scores[name] = task.score(answers, rows)
        samples[name] = [{"prediction": a, "answers": list(e.answers)} for a, e in zip(answers[:5], rows)]
    return {"mode": config.mode, "seed": config.seed, "scores": scores, "best_step": result.best_metrics[0]["step"],
            "samples": samples, "seconds": time.time() - start}


def run(config: SquadMrqaConfig) -> dict:
    config.validate()
    results_dir = Path(config.results_dir or "results/squad-mrqa")
    message = (unavailable("squad", "train", config.train.data_dir, config.train.train_examples)
               or unavailable("squad", "validation", config.train.data_dir, config.select_examples or config.eval_examples))
    if message:
        raise ValueError(f"SQuAD is needed to train: {message}")
    missing = {}
    for name in config.ood:
        get_task(name)  # unknown names fail here, before any training
        if (m := unavailable(name, "validation", config.train.data_dir, config.eval_examples)) is not None:
            skip(m)
            missing[name] = m
    ood = [n for n in config.ood if n not in missing]
    specs = [{"train": train_config(config, "squad", mode, seed).to_dict(), "ood": ood,
              "eval_examples": config.eval_examples, "max_new_tokens": config.max_new_tokens}
             for mode in config.modes for seed in config.seeds]
    start = time.time()
    results = run_all(transfer_unit, specs, config,
                      lambda s: f"{s['train']['mode']} tuning on SQuAD, seed {s['train']['seed']} -> {', '.join(s['ood']) or 'no OOD set'}")

    def values(mode, name, metric):
        return [r["scores"][name][metric] for r in results if r["mode"] == mode and name in r["scores"]]

    modes = [m for m in ("model", "prompt") if m in config.modes]
    table = Table("Zero-shot domain transfer from SQuAD (Table 1 layout): F1 (EM), mean±std over seeds",
                  ["Dataset", "Domain"] + [m.capitalize() for m in modes] + (["Δ"] if len(modes) == 2 else []))
    rows, plot = [], {m: ([], []) for m in modes}
    for name in ["squad", *config.ood]:
        if name in missing:
            table.rows.append([SHOWN.get(name, name), DOMAINS.get(name, ""), *[NA] * len(modes)]
                              + ([NA] if len(modes) == 2 else []))
            rows.append({"dataset": name, "domain": DOMAINS.get(name, ""), "unavailable": missing[name]})
            for m in modes:
                plot[m][0].append(float("nan"))
                plot[m][1].append(0.0)
            continue
        cells, row = [], {"dataset": name, "domain": DOMAINS.get(name, "")}
        for m in modes:
            f1, em = values(m, name, "f1"), values(m, name, "em")
            cells.append(f"{pct_mean_std(f1)} ({pct_mean_std(em)})")
            (f1m, f1s), (emm, ems) = mean_std(f1), mean_std(em)
            row.update({f"{m}_f1_mean": f1m, f"{m}_f1_std": f1s, f"{m}_em_mean": emm, f"{m}_em_std": ems,
                        f"{m}_runs": len(f1)})
            plot[m][0].append(f1m)
            plot[m][1].append(f1s)
        if len(modes) == 2:
            delta = row["prompt_f1_mean"] - row["model_f1_mean"]
            row["delta_f1"] = delta
            cells.append(f"{100 * delta:+.1f}")
        table.rows.append([SHOWN.get(name, name), DOMAINS.get(name, ""), *cells])
        rows.append(row)
    table.notes = [f"model {config.train.model}; {config.train.steps} steps at batch {config.train.batch_size}; prompt length "
                   f"{config.train.prompt_length} ({config.train.init}, {describe_lr(config)}); model tuning lr {config.model_lr} "
                   f"(Adafactor); {config.train.train_examples or 'all'} SQuAD train examples; {config.eval_examples or 'all'} examples per "
                   f"eval set; max input {config.train.max_input_length} tokens; seeds {list(config.seeds)}; "
                   f"wall time {time.time() - start:.0f} s",
                   "SQuAD row: in-domain dev (the checkpoint-selection set). Δ: prompt − model F1."]
    paths = write_report(results_dir, "squad_mrqa", table, rows, {"config": config.to_dict(), "results": results})
    grouped_bars(results_dir / "squad_mrqa.png", "F1 after training on SQuAD (zero-shot out of domain)",
                 [SHOWN.get(n, n) for n in ["squad", *config.ood]], {f"{m} tuning": plot[m] for m in modes},
                 ylabel="F1 (%)")
    paths["png"] = results_dir / "squad_mrqa.png"
    return {"paths": paths, "results": results, "missing": missing}
