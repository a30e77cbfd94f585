"""The HTTP service against its own engine, side by side in one run: does Serve deliver the engine's speed?

For each prompt count N and precision, one app serves an MRPC registry; the same backbone and prompts
also run in this process. Printed per (N, dtype):
  - in-process `EnsembleEngine.predict` throughput at batch 1 and 32 (examples/s), and batch-1 latency;
  - HTTP at concurrency 1/8/32 (one input per request, closed loop): requests/s, p50/p99 latency, the
    mean requests per engine pass the server formed (GET /v1/stats), status counts;
  - the ratios the targets name: HTTP c=32 / engine batch 32, HTTP c=1 p50 / engine batch-1 latency,
    and across precisions bf16 / fp32 throughput at c=32 with the share of identical answers.
The load client (`load.py`) is raw asyncio HTTP/1.1 on keep-alive connections; its own CPU seconds are
printed beside each row.

    python benchmarks/bench_http.py                              # SmolLM2-135M, N=3 and 5, fp32 and bf16
    python benchmarks/bench_http.py --n-prompts 3 --registry reference_registry   # + the 5 trained MRPC prompts
    python benchmarks/bench_http.py --smoke                      # tiny random model, ~1 min: does it work?
"""

import argparse
import asyncio
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tuning import ray_env  # noqa: E402

ray_env.configure()
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # --smoke: tests/tiny.py

import httpx  # noqa: E402
import torch  # noqa: E402
from load import closed_loop, pct, post  # noqa: E402  (benchmarks/load.py)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--registry", default=None, help="also serve this registry's MRPC prompts (trained ones)")
    p.add_argument("--n-prompts", default="3,5", help="comma-separated counts of random prompts (0: none)")
    p.add_argument("--dtypes", default="float32,bfloat16")
    p.add_argument("--prompt-length", type=int, default=20)
    p.add_argument("--concurrency", default="1,8,32")
    p.add_argument("--requests", type=int, default=96, help="timed requests per concurrency (at least C)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--smoke", action="store_true", help="tiny random model, few requests")
    args = p.parse_args(argv)
    if args.smoke:
        args.requests, args.n_prompts, args.prompt_length = 24, "3", 4
    try:
        args.levels = [int(c) for c in args.concurrency.split(",")]
        args.ns = [int(n) for n in args.n_prompts.split(",") if int(n)]
        args.dtype_list = args.dtypes.split(",")
        assert min(args.levels) >= 1 and (args.ns or args.registry) and set(args.dtype_list) <= {"float32", "bfloat16"}
    except (ValueError, AssertionError):
        p.error("--concurrency and --n-prompts take positive integers like 1,8,32; --dtypes float32 and/or bfloat16")
    return args


def random_registry(backbone, root: Path, n: int, length: int) -> str:
    """n sampled-vocabulary prompts (paper §3.2: realistic norms) for MRPC."""
    from tuning.artifact import PromptArtifact, save_prompt
    from tuning.registry import PromptRegistry

    g = torch.Generator().manual_seed(n)
    vocab = backbone.model.get_input_embeddings().weight.shape[0]
    registry = PromptRegistry(root / f"n{n}")
    for k in range(n):
        prompt = backbone.embed(torch.randint(0, vocab, (length,), generator=g)).detach()
        save_prompt(PromptArtifact(prompt=prompt, task="mrpc", backbone=backbone.name, fingerprint=backbone.fingerprint,
                                   init="sampled_vocab"), registry.path_for("mrpc", f"mrpc-{k}"))
    return str(registry.root)


def engine_rates(model: str, registry: str, dtype: str, texts: list[str]) -> dict:
    """In-process throughput at batch 1 and 32, and batch-1 latency, with the server's engine settings."""
    from ensemble import EnsembleEngine, PromptBank
    from tuning.backbone import load_backbone

    engine = EnsembleEngine(PromptBank(load_backbone(model, dtype=getattr(torch, dtype)), registry))
    out = {}
    for batch in (1, 32):
        items = [("mrpc", t) for t in texts[:batch]]
        engine.predict(items)  # warm-up
        repeats = 8 if batch == 1 else 2
        t = time.perf_counter()
        for r in range(repeats):
            engine.predict([("mrpc", x) for x in texts[r * batch:(r + 1) * batch]] if batch > 1 else
                           [("mrpc", texts[r])])
        seconds = (time.perf_counter() - t) / repeats
        out[batch] = {"rate": batch / seconds, "latency": seconds}
    return out


def worst_case(port: int, path: str, model: str) -> dict:
    """One request at the default limits' maximum cost: 16 inputs of exactly 256 tokens (4,096 tokens)."""
    from tuning.backbone import resolve
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve(model))
    ids = tokenizer("the quick brown fox jumps over the lazy dog " * 64, add_special_tokens=False).input_ids
    text = tokenizer.decode(ids[:256])
    while len(tokenizer(text, add_special_tokens=False).input_ids) > 256:
        text = text[:-4]
    body = json.dumps({"task": "mrpc", "inputs": [text] * 16}).encode()

    async def one():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        t = time.perf_counter()
        status, _, _ = await post(reader, writer, path, body)
        writer.close()
        return status, time.perf_counter() - t

    status, seconds = asyncio.run(one())
    return {"inputs": 16, "status": status, "seconds": seconds}


def mean_batch(before: dict, after: dict) -> float:
    new = {int(k): v - before["batch_requests"].get(k, 0) for k, v in after["batch_requests"].items()}
    passes = sum(new.values())
    return sum(k * v for k, v in new.items()) / passes if passes else 0.0


def main(argv=None) -> int:
    args = parse_args(argv)
    import ray
    from ray import serve

    from deployments.app import build
    from deployments.config import ServeConfig
    from tuning.backbone import load_backbone
    from tuning.tasks import DatasetUnavailable, get_task

    workdir = Path(tempfile.mkdtemp(prefix="bench-http-"))
    model = args.model
    if args.smoke:
        from tiny import build_tiny  # tests/tiny.py: the test fixtures' tiny random models
        model = str(build_tiny("llama", workdir / "tiny-llama"))
    try:
        texts = [e.input_text for e in get_task("mrpc").load("validation", data_dir=args.data_dir, limit=256)]
    except DatasetUnavailable as e:
        sys.exit(f"error: {e}")
    backbone = load_backbone(model)
    registries = {f"N={n} random": random_registry(backbone, workdir, n, args.prompt_length) for n in args.ns}
    if args.registry:
        registries[f"{Path(args.registry).name}"] = args.registry
    del backbone

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    print(f"model {model}; MRPC dev inputs, one per request; {args.requests} timed requests per row; "
          f"{torch.get_num_threads()} torch threads", flush=True)
    rows, answers, worst = [], {}, {}
    for label, registry in registries.items():
        for dtype in args.dtype_list:
            name = f"bench-{label.replace('=', '').replace(' ', '-')}-{dtype}"
            t = time.perf_counter()
            serve.run(build(ServeConfig(model=model, registry=registry, num_cpus=0.5, dtype=dtype,
                                        bf16_guard_examples=0, max_queued_requests=-1, max_queue_wait_s=0,
                                        reload_interval_s=0)), name=name, route_prefix=f"/{name}")
            engine = engine_rates(model, registry, dtype, texts)
            print(f"\n{label} {dtype}: app up in {time.perf_counter() - t:.0f} s; engine in process: "
                  f"batch 1 {engine[1]['rate']:.2f} ex/s ({1e3 * engine[1]['latency']:.0f} ms), "
                  f"batch 32 {engine[32]['rate']:.2f} ex/s", flush=True)
            for c in args.levels:
                path = f"/{name}/v1/predict"
                asyncio.run(closed_loop(port, path, "mrpc", texts, min(c, 4), 4))  # warm-up
                before = httpx.get(f"http://127.0.0.1:{port}/{name}/v1/stats").json()
                run = asyncio.run(closed_loop(port, path, "mrpc", texts, c, max(args.requests, c)))
                after = httpx.get(f"http://127.0.0.1:{port}/{name}/v1/stats").json()
                lat = run.latencies
                rows.append({"label": label, "dtype": dtype, "c": c, "rps": len(lat) / run.wall,
                             "p50": statistics.median(lat), "p99": pct(lat, 0.99), "batch": mean_batch(before, after),
                             "statuses": dict(run.statuses), "lost": run.lost, "client_cpu": run.client_cpu,
                             "engine": engine})
                answers.setdefault((label, dtype), {}).update(run.answers)
                r = rows[-1]
                print(f"  c={c:<3} {r['rps']:6.2f} req/s  p50 {1e3 * r['p50']:7.0f} ms  p99 {1e3 * r['p99']:7.0f} ms  "
                      f"mean batch {r['batch']:5.2f}  statuses {r['statuses']}  client CPU {r['client_cpu']:.1f} s",
                      flush=True)
            worst[(label, dtype)] = worst_case(port, f"/{name}/v1/predict", model)
            print(f"  largest legal request ({worst[(label, dtype)]['inputs']} inputs × 256 tokens = 4,096, the "
                  f"default max_request_tokens): {worst[(label, dtype)]['seconds']:.1f} s, "
                  f"status {worst[(label, dtype)]['status']}", flush=True)
            serve.delete(name)

    print("\n| prompts | dtype | engine b=1 ex/s | engine b=32 ex/s | c | HTTP req/s | p50 ms | p99 ms | "
          "mean batch | statuses |\n|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e = r["engine"]
        print(f"| {r['label']} | {r['dtype']} | {e[1]['rate']:.2f} | {e[32]['rate']:.2f} | {r['c']} | {r['rps']:.2f} | "
              f"{1e3 * r['p50']:.0f} | {1e3 * r['p99']:.0f} | {r['batch']:.2f} | {r['statuses']} |")
    print("\nratios (targets: HTTP c=32 / engine b=32 >= 0.85; mean batch at c=32 >= 8; c=1 p50 / engine b=1 latency "
          "<= 1.2; bf16 / fp32 HTTP c=32 >= 1.8 with >= 99% identical answers):")
    for (label, dtype), group in _groups(rows).items():
        top, one = group.get(max(args.levels)), group.get(1)
        parts = []
        if top:
            parts.append(f"HTTP c={top['c']} / engine b=32 {top['rps'] / top['engine'][32]['rate']:.2f}x, "
                         f"mean batch {top['batch']:.1f}")
        if one:
            parts.append(f"c=1 p50 / engine b=1 latency {one['p50'] / one['engine'][1]['latency']:.2f}x")
        print(f"  {label} {dtype}: " + "; ".join(parts))
    for label in registries:
        a, b = _groups(rows).get((label, "float32"), {}), _groups(rows).get((label, "bfloat16"), {})
        top = max(args.levels)
        if top in a and top in b:
            x, y = answers[(label, "float32")], answers[(label, "bfloat16")]
            pairs = [(p, q) for i in x.keys() & y.keys() for p, q in zip(x[i], y[i])]
            same = sum(p == q for p, q in pairs) / max(len(pairs), 1)
            print(f"  {label} bf16 / fp32 at c={top}: {b[top]['rps'] / a[top]['rps']:.2f}x; identical answers "
                  f"{100 * same:.1f}% of {len(pairs)} (input, prompt) pairs")
    lost = sum(r["lost"] for r in rows)
    print(f"\nlost (no answer, or a 5xx other than 503 by policy): {lost}")
    serve.shutdown()
    ray.shutdown()
    return 0 if not lost else 1


def _groups(rows) -> dict:
    out = {}
    for r in rows:
        out.setdefault((r["label"], r["dtype"]), {})[r["c"]] = r
    return out


if __name__ == "__main__":
    sys.exit(main())
