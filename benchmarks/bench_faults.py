"""The service under load and under a replica crash: nothing lost, fast failures, quick recovery, no wrong answers.

1. `--requests` single-input MRPC requests at concurrency `--concurrency`: status counts, lost (no
   answer, or a 5xx other than 503 by policy), throughput; their answers become the reference.
2. The same load again, and the replica's actor is killed (`ray.kill`, as a crash would) a third of the
   way in. Printed: requests failed and how fast they failed, seconds from the kill until requests
   succeed again, seconds /healthz was not answering "ok", and wrong answers (200s that differ from
   the reference answer for the same input; must be 0).

    python benchmarks/bench_faults.py --registry reference_registry      # SmolLM2-135M, the shipped prompts
    python benchmarks/bench_faults.py --smoke                            # tiny random model, ~2 min
"""

import argparse
import asyncio
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from tuning import ray_env  # noqa: E402

ray_env.configure()
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))  # --smoke: tests/tiny.py

import httpx  # noqa: E402
import torch  # noqa: E402
from load import closed_loop, pct  # noqa: E402  (benchmarks/load.py)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--registry", default="reference_registry")
    p.add_argument("--dtype", default="auto")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--smoke", action="store_true", help="tiny random model with random prompts, 300 requests")
    return p.parse_args(argv)


def smoke_setup(workdir: Path) -> tuple[str, str]:
    from tuning.artifact import PromptArtifact, save_prompt
    from tuning.backbone import load_backbone
    from tuning.registry import PromptRegistry
    from tiny import build_tiny  # tests/tiny.py: the test fixtures' tiny random models

    model = str(build_tiny("llama", workdir / "tiny-llama"))
    backbone = load_backbone(model)
    registry = PromptRegistry(workdir / "registry")
    for k in range(3):
        save_prompt(PromptArtifact(prompt=torch.randn(4, backbone.embed_dim), task="mrpc", backbone=backbone.name,
                                   fingerprint=backbone.fingerprint), registry.path_for("mrpc", f"mrpc-{k}"))
    return model, str(registry.root)


def watch_health(url: str, stop: threading.Event, samples: list) -> None:
    while not stop.is_set():
        t = time.perf_counter()
        try:
            r = httpx.get(url, timeout=2)
            ok = r.status_code == 200 and r.json().get("status") == "ok"
        except (httpx.HTTPError, ValueError):
            ok = False
        samples.append((t, ok))
        time.sleep(0.25)


def kill_replica_later(after_s: float, killed_at: list) -> None:
    import ray

    time.sleep(after_s)
    replicas = [a for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].startswith("SERVE_REPLICA::")]
    handle = ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"])
    killed_at.append(time.perf_counter())
    ray.kill(handle, no_restart=True)  # Serve's controller notices and starts a new replica


def main(argv=None) -> int:
    args = parse_args(argv)
    import ray
    from ray import serve

    from deployments.app import build
    from deployments.config import ServeConfig
    from tuning.tasks import DatasetUnavailable, get_task

    model, registry = args.model, args.registry
    if args.smoke:
        model, registry = smoke_setup(Path(tempfile.mkdtemp(prefix="bench-faults-")))
        args.requests = min(args.requests, 300)
    try:
        texts = [e.input_text for e in get_task("mrpc").load("validation", data_dir=args.data_dir, limit=200)]
    except DatasetUnavailable as e:
        sys.exit(f"error: {e}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    serve.start(http_options={"host": "127.0.0.1", "port": port, "request_timeout_s": 65})
    serve.run(build(ServeConfig(model=model, registry=registry, num_cpus=0.5, dtype=args.dtype, reload_interval_s=0,
                                max_queued_requests=-1)), name="faults", route_prefix="/")
    base = f"http://127.0.0.1:{port}"
    info = httpx.get(f"{base}/v1/stats").json()["precision"]
    print(f"model {model}, registry {registry} ({info['dtype']}), {args.requests} requests at concurrency "
          f"{args.concurrency}", flush=True)

    asyncio.run(closed_loop(port, "/v1/predict", "mrpc", texts, 4, 8))  # warm-up
    steady = asyncio.run(closed_loop(port, "/v1/predict", "mrpc", texts, args.concurrency, args.requests))
    print(f"\n1. steady load: {dict(steady.statuses)}; lost {steady.lost}; {args.requests / steady.wall:.2f} req/s; "
          f"p50 {pct(steady.latencies, .5):.1f} s, p99 {pct(steady.latencies, .99):.1f} s", flush=True)

    stop, health, killed_at = threading.Event(), [], []
    watcher = threading.Thread(target=watch_health, args=(f"{base}/healthz", stop, health), daemon=True)
    killer = threading.Thread(target=kill_replica_later, args=(steady.wall / 3, killed_at), daemon=True)
    watcher.start()
    start = time.perf_counter()
    killer.start()
    crash = asyncio.run(closed_loop(port, "/v1/predict", "mrpc", texts, args.concurrency, args.requests))
    stop.set()
    watcher.join()
    kill_t = killed_at[0] - start if killed_at else float("nan")
    failed = [(t, s, lat) for t, s, lat in crash.events if s != 200]
    back = [t for t, s, _ in crash.events if s == 200 and t > kill_t]
    recovery = (min(back) - kill_t) if back else float("nan")
    down = [t for t, ok in health if not ok and t >= killed_at[0]] if killed_at else []
    common = crash.answers.keys() & steady.answers.keys()
    wrong = sum(crash.answers[i] != steady.answers[i] for i in common)
    flipped = sum(a != b for i in common for a, b in zip(crash.answers[i], steady.answers[i]))
    print(f"2. replica killed at {kill_t:.1f} s: {dict(crash.statuses)}; lost {crash.lost}")
    print(f"   failed requests: {len(failed)}, their latency p50 {pct([x[2] for x in failed], .5):.1f} s, "
          f"max {max([x[2] for x in failed], default=0):.1f} s (fast failure, no hang)")
    for status in sorted(crash.statuses, key=str):
        lat = [x[2] for x in crash.events if x[1] == status]
        sent = [x[0] - kill_t for x in crash.events if x[1] == status]
        print(f"   {status}: {len(lat)} answers, latency p50 {pct(lat, .5):.1f} s max {max(lat):.1f} s; sent from "
              f"{min(sent):+.1f} to {max(sent):+.1f} s around the kill")
    print(f"   first success sent after the kill: {recovery:.1f} s later; /healthz not ok for "
          f"{0.25 * len(down):.1f} s of samples")
    print(f"   answers that differ from the steady run for the same input: {wrong} of {len(common)} inputs "
          f"({flipped} of {sum(len(crash.answers[i]) for i in common) if common else 0} per-prompt answers; the two runs batch each input "
          f"with different neighbours)")
    serve.shutdown()
    ray.shutdown()
    return 0 if steady.lost == 0 and wrong == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
