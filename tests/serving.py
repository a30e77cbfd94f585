"""Helpers for the tests that run the Serve app over real HTTP (not a test module)."""

from __future__ import annotations

import socket
import time
from contextlib import contextmanager

import httpx
import torch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def save_random_prompt(registry, backbone, task, name, seed, length=4, fingerprint=None):
    from tuning.artifact import PromptArtifact, save_prompt
    from tuning.registry import PromptRegistry
    from tuning.tasks import get_task

    g = torch.Generator().manual_seed(seed)
    prompt = torch.randn(length, backbone.embed_dim, generator=g)
    artifact = PromptArtifact(prompt=prompt, task=task, backbone=backbone.name,
                              fingerprint=fingerprint or backbone.fingerprint, init="random",
                              verbalizers=get_task(task).verbalizers)
    return save_prompt(artifact, PromptRegistry(registry).path_for(task, name))


def random_registry(root, backbone, task="mrpc", n=3):
    """A registry of n random prompts for one task, named <task>-0..n-1 (seeds 0..n-1)."""
    for k in range(n):
        save_random_prompt(root, backbone, task, f"{task}-{k}", seed=k)
    return root


def wait_ready(base: str, paths, timeout: float = 60.0) -> None:
    """The apps are RUNNING when serve.run returns, but the proxy may learn their routes a moment later."""
    deadline = time.monotonic() + timeout
    for path in paths:
        while True:
            try:
                if httpx.get(base + path, timeout=10).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{base}{path} did not answer 200 within {timeout:.0f} s")
            time.sleep(0.2)


@contextmanager
def serve_apps(apps: dict):
    """Run {route_prefix: ServeConfig} on one local Serve; yields the base URL; deletes everything after."""
    from ray import serve

    from deployments.app import build

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    names = {prefix: "app" + prefix.replace("/", "-") for prefix in apps}
    serve.run_many([serve.RunTarget(build(config), name=names[prefix], route_prefix=prefix)
                    for prefix, config in apps.items()])
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, [prefix.rstrip("/") + "/healthz" for prefix in apps])
        yield base
    finally:
        for name in names.values():
            serve.delete(name)
        serve.shutdown()  # the next module may start Serve with its own HTTP options
