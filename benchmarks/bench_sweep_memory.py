"""Memory and wall time of a 4-trial sweep: shared frozen checkpoint vs the torch module per trial.

    python benchmarks/bench_sweep_memory.py [--model smollm2-135m] [--trials 4] [--steps 2]

Variant "shared": the backbone's weights go into the object store once as numpy arrays and each trial
maps them (tuning/sweep/shared_weights.py). Variant "module": the Backbone (torch module) goes
through tune.with_parameters, which stores it once but unpickles a private copy in every trial.
Memory is sampled every 0.5 s over Ray's worker processes (psutil): peak sum of RSS (counts shared
pages once per process), USS (private pages only) and PSS (shared pages split between processes:
the honest total). Each variant runs in a fresh local Ray. Run on an idle machine.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tuning import ray_env  # noqa: E402

ray_env.configure()
for key, value in (("HF_HUB_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(key, value)

import psutil  # noqa: E402

GIB = 1024 ** 3


def ray_workers() -> list[psutil.Process]:
    """Trial processes of this benchmark's own Ray (descendants of this driver: the local raylet's
    workers), not other Ray sessions on the machine."""
    out = []
    for p in psutil.Process(os.getpid()).children(recursive=True):
        try:
            cmd = " ".join(p.cmdline())
            if cmd.startswith("ray::") or "default_worker.py" in cmd:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return out


class Sampler(threading.Thread):
    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.interval, self.stop, self.peak = interval, threading.Event(), {"rss": 0, "uss": 0, "pss": 0, "procs": 0}

    def run(self):
        while not self.stop.is_set():
            total = {"rss": 0, "uss": 0, "pss": 0}
            procs = 0
            for p in ray_workers():
                try:
                    info = p.memory_full_info()
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                procs += 1
                for k in total:
                    total[k] += getattr(info, k, 0)
            for k, v in total.items():
                self.peak[k] = max(self.peak[k], v)
            self.peak["procs"] = max(self.peak["procs"], procs)
            self.stop.wait(self.interval)


def run_variant(shared: bool, args) -> dict:
    import ray

    from tuning.fields import compose
    from tuning.sweep.config import SweepConfig
    from tuning.sweep.job import run_sweep

    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    root = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    config = compose(SweepConfig, tasks=args.task, model=args.model, trials=args.trials, top_n=1, steps=args.steps,
                     batch_size=args.batch_size, prompt_length=args.prompt_length, eval_every=args.steps,
                     train_examples=32, eval_examples=args.eval_examples, eval_batch_size=8,
                     max_input_length=128, early_stop=False, cpus_per_trial=args.num_cpus / args.trials,
                     storage=str(root / "runs"), registry=str(root / "registry"), name="bench",
                     shared_checkpoint=shared, register=False, dashboard=False)
    sampler = Sampler()
    sampler.start()
    start = time.perf_counter()
    outcome = run_sweep(config)
    wall = time.perf_counter() - start
    sampler.stop.set()
    sampler.join()
    ray.shutdown()
    errors = sum(r.error is not None for r in outcome.results[args.task])
    return {"variant": "shared checkpoint" if shared else "module per trial", "wall": wall, **sampler.peak,
            "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--task", default="mrpc")
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--prompt-length", type=int, default=5)
    parser.add_argument("--eval-examples", type=int, default=4)
    parser.add_argument("--num-cpus", type=float, default=2)
    parser.add_argument("--only", choices=["shared", "module"], default=None)
    args = parser.parse_args()
    from tuning.backbone import load_backbone
    backbone = load_backbone(args.model)  # convert/cache once, outside the timings
    weights = sum(p.numel() * p.element_size() for p in backbone.model.parameters()) / GIB
    del backbone
    rows = [run_variant(v, args) for v in (True, False) if args.only in (None, "shared" if v else "module")]
    print(f"\n{args.trials}-trial sweep on {args.model} ({weights:.2f} GiB of weights), {args.steps} steps each, "
          f"{args.num_cpus:g} CPUs; peak sums over Ray worker processes")
    print("| variant | wall s | peak RSS GiB | peak USS GiB | peak PSS GiB | worker procs | failed trials |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['wall']:.1f} | {r['rss'] / GIB:.2f} | {r['uss'] / GIB:.2f} | "
              f"{r['pss'] / GIB:.2f} | {r['procs']} | {r['errors']} |")
    if len(rows) == 2:
        a, b = rows
        print(f"module/shared: wall {b['wall'] / a['wall']:.2f}x, PSS {b['pss'] / max(a['pss'], 1):.2f}x, "
              f"USS {b['uss'] / max(a['uss'], 1):.2f}x")


if __name__ == "__main__":
    main()
