"""HTTP latency and throughput of the Serve endpoint, with and without dynamic batching, side by side.

Two apps run at once on one local Serve, identical except `max_batch_size` (16 vs 1, i.e. no
`@serve.batch` effect); at each concurrency a closed loop of C clients sends single-input MRPC dev
requests to one app, then to the other. Prints p50/p99 latency, requests/s and the mean batch size
the server actually formed (from GET /v1/stats). The client runs in this process and shares the CPU
with the server: compare the two modes, not absolute numbers across machines.

    python benchmarks/bench_http.py                          # SmolLM2-135M, N=5 random prompts
    python benchmarks/bench_http.py --registry registry      # the registry's trained MRPC prompts
    python benchmarks/bench_http.py --smoke                  # tiny random model, ~30 s: does it work?
"""

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tuning import ray_env  # noqa: E402

ray_env.configure()

import httpx  # noqa: E402
import torch  # noqa: E402

MODES = {"batched": 16, "unbatched": 1}  # max_batch_size


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--registry", default=None, help="serve this registry's prompts (default: N random prompts)")
    p.add_argument("--task", default="mrpc")
    p.add_argument("--n-prompts", type=int, default=5)
    p.add_argument("--prompt-length", type=int, default=20)
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    p.add_argument("--requests", type=int, default=96, help="timed requests per (mode, concurrency)")
    p.add_argument("--warmup", type=int, default=4)
    p.add_argument("--modes", default="batched,unbatched")
    p.add_argument("--batch-wait", type=float, default=0.01, help="batch_wait_timeout_s of the batched app")
    p.add_argument("--torch-threads", type=int, default=2)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--smoke", action="store_true", help="tiny random model, few requests (~30 s)")
    args = p.parse_args(argv)
    if args.smoke:
        args.requests, args.warmup, args.concurrency, args.n_prompts, args.prompt_length = 16, 2, "1,8,32", 3, 4
    try:
        args.levels = [int(c) for c in args.concurrency.split(",")]
        args.mode_list = [m.strip() for m in args.modes.split(",")]
        assert args.levels and min(args.levels) >= 1 and set(args.mode_list) <= set(MODES)
    except (ValueError, AssertionError):
        p.error(f"--concurrency takes positive integers like 1,8,32 and --modes a subset of {','.join(MODES)}")
    return args


def prepare(args, workdir: Path) -> tuple[str, str, list[str]]:
    """(model, registry, input texts): random prompts are saved with the backbone's fingerprint."""
    from tuning.artifact import PromptArtifact, save_prompt
    from tuning.backbone import load_backbone
    from tuning.tasks import DatasetUnavailable, get_task

    model = args.model
    if args.smoke:
        from tuning.tiny import build_tiny
        model = str(build_tiny("llama", workdir / "tiny-llama"))
    try:
        texts = [e.input_text for e in get_task(args.task).load("validation", data_dir=args.data_dir, limit=256)]
    except DatasetUnavailable as e:
        sys.exit(f"error: {e}")
    if args.registry:
        return model, args.registry, texts
    backbone = load_backbone(model)
    g = torch.Generator().manual_seed(0)
    registry = workdir / "registry"
    for k in range(args.n_prompts):
        vocab = backbone.model.get_input_embeddings().weight
        ids = torch.randint(0, vocab.shape[0], (args.prompt_length,), generator=g)
        prompt = backbone.embed(ids).detach()  # sampled-vocab init (paper §3.2): realistic norms
        save_prompt(PromptArtifact(prompt=prompt, task=args.task, backbone=backbone.name,
                                   fingerprint=backbone.fingerprint, init="sampled_vocab"),
                    registry / args.task / f"{args.task}-{k}")
    return model, str(registry), texts


async def closed_loop(url: str, texts: list[str], task: str, concurrency: int, n: int) -> tuple[list[float], float, int]:
    """C clients, each sending its next request when the last one answers; (latencies, wall s, errors)."""
    latencies, errors, next_i = [], 0, 0
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=concurrency + 4)) as client:
        async def worker():
            nonlocal next_i, errors
            while next_i < n:
                i, next_i = next_i, next_i + 1
                t = time.perf_counter()
                r = await client.post(url, json={"task": task, "input": texts[i % len(texts)]})
                latencies.append(time.perf_counter() - t)
                errors += r.status_code != 200
        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, time.perf_counter() - start, errors


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main(argv=None) -> int:
    args = parse_args(argv)
    import ray
    from ray import serve

    from deployments.app import build
    from deployments.config import ServeConfig

    torch.set_num_threads(args.torch_threads)
    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    model, registry, texts = prepare(args, workdir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    ongoing = 2 * max(max(args.levels), 16)
    targets = [serve.RunTarget(build(ServeConfig(
        model=model, registry=registry, num_cpus=0.5, torch_threads=args.torch_threads, max_batch_size=size,
        batch_wait_timeout_s=args.batch_wait, max_ongoing_requests=ongoing, max_queued_requests=-1,
        reload_interval_s=0)), name=f"bench-{mode}", route_prefix=f"/{mode}")
        for mode, size in MODES.items() if mode in args.mode_list]
    t = time.perf_counter()
    serve.run_many(targets)
    base = f"http://127.0.0.1:{port}"
    print(f"model {model}, {args.n_prompts if not args.registry else 'registry'} prompts on {args.task}, "
          f"apps up in {time.perf_counter() - t:.1f} s; {args.requests} timed requests per row", flush=True)

    rows = []
    for c in args.levels:
        for mode in args.mode_list:
            url = f"{base}/{mode}/v1/predict"
            asyncio.run(closed_loop(url, texts, args.task, min(c, args.warmup), args.warmup))
            before = httpx.get(f"{base}/{mode}/v1/stats").json()
            lat, wall, errors = asyncio.run(closed_loop(url, texts, args.task, c, max(args.requests, c)))
            after = httpx.get(f"{base}/{mode}/v1/stats").json()
            batches = after["batches"] - before["batches"]
            rows.append({"mode": mode, "c": c, "n": len(lat), "p50": 1e3 * statistics.median(lat),
                         "p99": 1e3 * pct(lat, 0.99), "rps": len(lat) / wall, "errors": errors,
                         "batch": (after["requests"] - before["requests"]) / max(batches, 1)})
            r = rows[-1]
            print(f"  {mode:<9} c={c:<3} p50 {r['p50']:8.1f} ms  p99 {r['p99']:8.1f} ms  {r['rps']:7.2f} req/s  "
                  f"mean batch {r['batch']:5.2f}  errors {errors}", flush=True)

    print(f"\n{'mode':<10}{'conc':>5}{'requests':>9}{'p50 ms':>10}{'p99 ms':>10}{'req/s':>9}{'batch':>7}{'errors':>7}")
    for r in rows:
        print(f"{r['mode']:<10}{r['c']:>5}{r['n']:>9}{r['p50']:>10.1f}{r['p99']:>10.1f}{r['rps']:>9.2f}"
              f"{r['batch']:>7.2f}{r['errors']:>7}")
    if set(args.mode_list) == set(MODES):
        print("\nthroughput batched / unbatched: " + ", ".join(
            f"c={c}: {b['rps'] / u['rps']:.2f}x" for c in args.levels
            for b in rows if b["c"] == c and b["mode"] == "batched"
            for u in rows if u["c"] == c and u["mode"] == "unbatched"))
    for target in targets:
        serve.delete(target.name)
    serve.shutdown()
    ray.shutdown()
    return 0 if not any(r["errors"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
