"""Packed multi-prompt training: K prompts in one pass vs K separate trainings, same steps and batch.

    python benchmarks/bench_packed.py [--model smollm2-135m] [--k 4] [--steps 4] [--batch-size 4]

No Ray: the math only (tuning.train.train), side by side in one process, with and without the
decoder-only shared prefix (each prompt's keys/values computed once per step). Evaluation is one
tiny pass at the end; prompt-steps per CPU-second counts process CPU time (all threads).
Run on an idle machine: two heavy processes on 2 cores slow each other 10-30x.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402


def timed(fn):
    cpu, wall = time.process_time(), time.perf_counter()
    result = fn()
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    from tuning.backbone import load_backbone
    from tuning.config import TrainConfig
    from tuning.encoding import encode
    from tuning.tasks import get_task
    from tuning.train import train

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--prompt-length", type=int, default=20)
    parser.add_argument("--max-input-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    backbone = load_backbone(args.model)
    task = get_task(args.task)
    train_set = task.load("train", limit=max(64, args.batch_size * args.steps))
    dev_set = task.load("validation", limit=2)
    batch = encode(backbone, [e.input_text for e in train_set], [e.target_text for e in train_set],
                   args.max_input_length, "right")
    tokens_per_example = float((batch.input_mask.sum(1) + batch.target_mask.sum(1)).float().mean()) + args.prompt_length

    def run(k: int, seed: int, shared: bool):
        config = TrainConfig(task=args.task, model=args.model, prompt_length=args.prompt_length, init="sampled_vocab",
                             num_prompts=k, steps=args.steps, batch_size=args.batch_size, eval_every=args.steps,
                             eval_batch_size=8, max_input_length=args.max_input_length, shared_prefix=shared,
                             seed=seed, progress=False)
        return train(config, backbone=backbone, train_examples=train_set, dev_examples=dev_set)

    run(1, 0, True)  # warm-up: first-call allocations and kernel selection
    rows = []
    for shared in (False, True):
        _, cpu_p, wall_p = timed(lambda: run(args.k, 0, shared))
        separate = [timed(lambda i=i: run(1, i, shared)) for i in range(args.k)]
        cpu_s, wall_s = sum(s[1] for s in separate), sum(s[2] for s in separate)
        prompt_steps = args.k * args.steps
        tokens = prompt_steps * args.batch_size * tokens_per_example
        for name, cpu, wall in ((f"packed K={args.k}", cpu_p, wall_p), (f"{args.k} separate", cpu_s, wall_s)):
            rows.append((name, shared, cpu, wall, prompt_steps / cpu, tokens / cpu))
        rows.append(("packed/separate", shared, None, None, cpu_s / cpu_p, None))

    print(f"\n{args.model}, task {args.task}: {args.k} prompts x {args.steps} steps, batch {args.batch_size}, "
          f"prompt {args.prompt_length}, ~{tokens_per_example:.0f} tokens/example incl. prompt, {args.threads} threads")
    print("| run | shared prefix | CPU s | wall s | prompt-steps / CPU s | tokens / CPU s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, shared, cpu, wall, rate, tok in rows:
        if cpu is None:
            print(f"| **{name} speed-up** | {shared} | | | **{rate:.2f}x** | |")
        else:
            print(f"| {name} | {shared} | {cpu:.1f} | {wall:.1f} | {rate:.3f} | {tok:.0f} |")


if __name__ == "__main__":
    main()
