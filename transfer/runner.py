"""Runs a job's independent trainings: in-process one after another, or as Ray tasks.

The work itself (`fn(spec) -> result`, plain PyTorch) knows nothing of Ray; this is the thin layer
that schedules it. Each spec is a plain dict, each result a picklable dict, so both travel to and
from Ray workers unchanged.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Sequence

from tuning import ray_env

Unit = Callable[[dict], dict]


def uses_ray(config) -> bool:
    return bool(config.ray or config.address)


def run_all(fn: Unit, specs: Sequence[dict], config, describe: Callable[[dict], str] = str) -> list[dict]:
    """Results of `fn` for every spec, in spec order."""
    if not specs:
        return []
    if uses_ray(config):
        return _run_ray(fn, specs, config, describe)
    out = []
    for i, spec in enumerate(specs, 1):
        print(f"[{i}/{len(specs)}] {describe(spec)}", flush=True)
        start = time.time()
        out.append(fn(spec))
        print(f"[{i}/{len(specs)}] done in {time.time() - start:.0f} s", flush=True)
    return out


def _run_ray(fn: Unit, specs: Sequence[dict], config, describe) -> list[dict]:
    ray_env.configure()  # before Ray is imported
    import ray

    if not ray.is_initialized():
        # RAY_ADDRESS is set by `ray job submit`; else a new local instance ("local": never a stale
        # `ray start` cluster recorded in /tmp/ray, which hangs).
        ray.init(address=config.address or os.environ.get("RAY_ADDRESS") or "local", log_to_driver=config.train.progress)
    remote = ray.remote(num_cpus=config.cpus_per_run)(fn)
    refs = {remote.remote({**spec, "progress": False}): i for i, spec in enumerate(specs)}
    print(f"submitted {len(refs)} Ray tasks ({config.cpus_per_run:g} CPUs each): "
          + "; ".join(describe(s) for s in specs), flush=True)
    results: list = [None] * len(specs)
    pending = list(refs)
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        i = refs[done[0]]
        results[i] = ray.get(done[0])
        print(f"[{len(specs) - len(pending)}/{len(specs)}] finished: {describe(specs[i])}", flush=True)
    return results
