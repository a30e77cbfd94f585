"""fp32 vs bf16 for the ensemble engine: examples/s, dev accuracy, and how often the answers agree.

    python benchmarks/bench_precision.py --registry registry --task mrpc --examples 200

With --registry, the task's trained prompts are used (e.g. those the README's main job registered);
without, random sampled-vocabulary prompts (accuracy is then meaningless, agreement still is).
"""

from __future__ import annotations

import argparse
import time

import torch

from ensemble import EnsembleEngine, PromptBank
from tuning.backbone import load_backbone
from tuning.prompts import init_prompt
from tuning.tasks import get_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--registry", default=None)
    ap.add_argument("--task", default="mrpc")
    ap.add_argument("--examples", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task(args.task)
    dev = task.load("validation", limit=args.examples)
    results = {}
    for name in ("float32", "bfloat16"):
        backbone = load_backbone(args.model, dtype=getattr(torch, name))
        bank = PromptBank(backbone, args.registry)
        if args.task not in bank.tasks:
            bank.add(args.task, torch.stack([init_prompt(backbone, 20, "sampled_vocab", s) for s in range(5)]))
        engine = EnsembleEngine(bank, max_rows=32)
        engine.predict([(args.task, dev[0].input_text)])
        t = time.perf_counter()
        preds = []
        for i in range(0, len(dev), args.batch_size):
            preds += engine.predict([(args.task, e.input_text) for e in dev[i:i + args.batch_size]])
        seconds = time.perf_counter() - t
        metrics = task.score([p.prediction for p in preds], dev)
        single = task.score([p.answers[0] for p in preds], dev)
        results[name] = (preds, len(dev) / seconds, metrics, single, bank.tasks[args.task].n)
    (p32, r32, m32, s32, n), (p16, r16, m16, s16, _) = results["float32"], results["bfloat16"]
    agree = sum(a.prediction == b.prediction for a, b in zip(p32, p16)) / len(dev)
    member = sum(x == y for a, b in zip(p32, p16) for x, y in zip(a.answers, b.answers)) / (len(dev) * n)
    key = task.primary_metric
    source = f"prompts from {args.registry}" if args.registry else "random prompts"
    print(f"{args.model}, {args.task} dev ({len(dev)} examples), N={n} {source}, batch {args.batch_size}\n")
    print(f"| precision | examples/s | ensemble {key} | prompt 0 {key} |")
    print("|---|---:|---:|---:|")
    print(f"| fp32 | {r32:.2f} | {m32[key]:.4f} | {s32[key]:.4f} |")
    print(f"| bf16 | {r16:.2f} ({r16 / r32:.2f}×) | {m16[key]:.4f} | {s16[key]:.4f} |")
    print(f"\nensemble answers equal: {agree:.1%}; per-prompt answers equal: {member:.1%}")


if __name__ == "__main__":
    main()
