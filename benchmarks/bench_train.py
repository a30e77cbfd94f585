"""Prompt tuning vs model tuning on the default model: parameters (paper Table 4 layout), seconds per
training step on the same batches, and peak memory of each (each row in its own process, so peak
RSS is its own). Each step is `tuning.train.Trainer.step()`, the training loop's own step. Prompt
tuning runs in fp32, in bf16 (frozen bf16 backbone, fp32 prompt) and in bf16 with `--compile`
(tuning/compiled.py; its first step includes the compiling), and the step-throughput ratios to fp32 are
printed from the same run. On a CPU without native bf16 the bf16 rows are left out and the compiled
rows run in fp32, the dtype `--dtype auto` trains with there.

    python benchmarks/bench_train.py [--model smollm2-135m] [--batch-size 8] [--steps 12]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def run_mode(args) -> dict:
    """Median seconds of `Trainer.step()` (tokenising its batch included) for one mode and dtype."""
    import statistics

    import torch

    from tuning.backbone import load_backbone
    from tuning.config import TrainConfig
    from tuning.tasks import get_task
    from tuning.train import Trainer

    torch.set_num_threads(args.threads)
    config = TrainConfig(task="mrpc", mode=args.mode, prompt_length=args.prompt_length, batch_size=args.batch_size,
                         shared_prefix=args.shared_prefix, max_input_length=128, steps=args.steps + 1, progress=False,
                         compile=args.compile)
    backbone = load_backbone(args.model, dtype=getattr(torch, args.dtype), trainable=args.mode == "model")
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    examples = get_task("mrpc").load("train", limit=args.batch_size * (args.steps + 1))
    trainer = Trainer(config, backbone=backbone, train_examples=examples, dev_examples=examples[:1])
    times = []
    for _ in range(args.steps + 1):
        t = time.perf_counter()
        trainer.step()
        times.append(time.perf_counter() - t)
    trainable = sum(p.numel() for p in trainer.optimizer.param_groups[0]["params"])
    total = sum(p.numel() for p in backbone.model.parameters()) + (trainable if args.mode == "prompt" else 0)
    return {"mode": args.mode, "shared_prefix": args.shared_prefix, "dtype": args.dtype, "compile": args.compile,
            "seconds_per_step": statistics.median(times[1:]), "first_step": times[0],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "loaded_rss_mb": rss_loaded, "trainable": trainable, "total": total}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--prompt-length", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--shared-prefix", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    ap.add_argument("--compile", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return

    from tuning.backbone import load_backbone
    from tuning.precision import native_bf16
    from tuning.report import parameter_table

    t = time.perf_counter()
    backbone = load_backbone(args.model)
    print(f"backbone load: {time.perf_counter() - t:.2f} s (cached conversion)\n")
    print(parameter_table(backbone))
    del backbone
    rows = []
    # The dtype `--dtype auto` trains prompts in. Without native bf16 a bf16 matmul is emulated and ~100x
    # slower, so bf16 rows would only time the emulation.
    fast = "bfloat16" if native_bf16("cpu") else "float32"
    variants = [("float32", False)] + ([(fast, False)] if fast != "float32" else []) + [(fast, True)]
    runs = [("prompt", shared, dtype, compiled) for dtype, compiled in variants for shared in (False, True)]
    runs.append(("model", False, "float32", False))
    for mode, shared, dtype, compiled in runs:
        cmd = [sys.executable, __file__, "--mode", mode, "--model", args.model, "--batch-size", str(args.batch_size),
               "--steps", str(args.steps), "--prompt-length", str(args.prompt_length), "--threads", str(args.threads),
               "--dtype", dtype] + (["--shared-prefix"] if shared else []) + (["--compile"] if compiled else [])
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[-1]["seconds_per_step"]
    print(f"\nbatch {args.batch_size} MRPC train examples (≤128 tokens), prompt length {args.prompt_length}, "
          f"{args.threads} threads, median of {args.steps} steps\n")
    print("| mode | dtype | trainable params | s / step | first step s | speed vs model tuning | peak RSS MB | RSS after load MB |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        name = r["mode"] + " tuning" + (" + shared prefix" if r["shared_prefix"] else "") + (" + compile" if r["compile"] else "")
        print(f"| {name} | {r['dtype']} | {r['trainable']:,} | {r['seconds_per_step']:.2f} | {r['first_step']:.1f} | "
              f"{base / r['seconds_per_step']:.2f}× | {r['peak_rss_mb']:.0f} | {r['loaded_rss_mb']:.0f} |")
    step = {(r["mode"], r["shared_prefix"], r["dtype"], r["compile"]): r["seconds_per_step"] for r in rows}
    if fast == "float32":
        print("\nThis CPU has no native bf16 (AVX512-BF16 or AMX): `--dtype auto` trains in fp32 here, so the bf16 rows "
              "are left out.")
    for shared in (False, True):
        fp32 = step[("prompt", shared, "float32", False)]
        shown = "; ".join(f"{dtype}{' + compile' if c else ''} vs fp32 {fp32 / step[('prompt', shared, dtype, c)]:.2f}×"
                          for dtype, c in variants[1:])
        print(f"\nprompt-tuning step throughput{' (shared prefix)' if shared else ''}: {shown}", end="")
    print()


if __name__ == "__main__":
    main()
