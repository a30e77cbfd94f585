"""A registry that cannot take the service down, through the running server over HTTP.

Every kind of bad file is refused with a reason in /v1/tasks while the healthy task keeps answering;
a vanished registry keeps the last good prompts and turns /healthz degraded; a file whose content
changes under the same mtime is re-read; concurrent registrations of one task never leave it empty.
"""

from __future__ import annotations

import json
import os
import threading

import httpx
import pytest
import torch
from safetensors.torch import save_file
from serving import random_registry, save_random_prompt, serve_apps

GOOD = {"task": "mrpc", "input": "sentence1: a cat sat. sentence2: a cat was sitting."}


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_llama):
    return random_registry(tmp_path_factory.mktemp("fault-registry"), tiny_llama, n=2)


@pytest.fixture(scope="module")
def http(ray_session, tiny_dirs, registry):
    from deployments.config import ServeConfig

    config = ServeConfig(model=str(tiny_dirs["llama"]), registry=str(registry), num_cpus=0.25, torch_threads=1,
                         dtype="float32", reload_interval_s=0)
    with serve_apps({"/": config}) as base, httpx.Client(base_url=base, timeout=60) as client:
        yield client


def _meta(backbone, prompt, **overrides) -> dict:
    """Valid metadata for `prompt` (any shape: the digest is of its bytes)."""
    from tuning.artifact import PromptArtifact, _digest

    meta = PromptArtifact(prompt=torch.zeros(4, backbone.embed_dim), task="mrpc", backbone=backbone.name,
                          fingerprint=backbone.fingerprint).meta()
    meta.update(sha256=_digest(prompt), **overrides)
    return meta


def _write(path, tensors: dict, metadata: dict | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata)


def _bad_files(backbone):
    """(name, writer(path), words the refusal reason must contain)."""
    d = backbone.embed_dim
    ok = torch.randn(4, d)

    def tensor_file(t, meta_prompt=None):
        return lambda p: _write(p, {"prompt": t}, {"prompt_tuning": json.dumps(_meta(backbone, meta_prompt if meta_prompt is not None else t))})

    nan = ok.clone()
    nan[1, 2] = float("nan")
    inf = ok.clone()
    inf[0, 0] = float("inf")
    return [
        ("meta-not-object", lambda p: _write(p, {"prompt": ok}, {"prompt_tuning": json.dumps([1, 2])}), "not an object"),
        ("meta-not-json", lambda p: _write(p, {"prompt": ok}, {"prompt_tuning": "{nope"}), "not a readable"),
        ("meta-missing", lambda p: _write(p, {"prompt": ok}, None), "not a readable"),
        ("meta-lacks-task", lambda p: _write(p, {"prompt": ok}, {"prompt_tuning": json.dumps(
            {k: v for k, v in _meta(backbone, ok).items() if k != "task"})}), "lacks 'task'"),
        ("meta-wrong-type", lambda p: _write(p, {"prompt": ok}, {"prompt_tuning": json.dumps(
            _meta(backbone, ok, task=7))}), "should be str"),
        ("no-prompt-tensor", lambda p: _write(p, {"other": ok}, {"prompt_tuning": json.dumps(_meta(backbone, ok))}),
         "no 'prompt' tensor"),
        ("rank-1", tensor_file(torch.randn(d)), "1-D"),
        ("rank-3", tensor_file(torch.randn(2, 4, d)), "3-D"),
        ("integer-tensor", tensor_file(torch.ones(4, d, dtype=torch.int32), ok), "not a [length, dim] float"),
        ("nan-values", tensor_file(nan), "NaN or infinite"),
        ("inf-values", tensor_file(inf), "NaN or infinite"),
        ("wrong-dim", tensor_file(torch.randn(4, d + 1)), "dim"),
        ("digest-mismatch", tensor_file(ok, ok + 1), "digest"),
        ("garbage", lambda p: p.write_bytes(b"\x00garbage" * 10), "not a readable"),
        ("empty", lambda p: p.write_bytes(b""), "not a readable"),
        ("truncated", lambda p: (tensor_file(ok)(p), p.write_bytes(p.read_bytes()[:200])), "not a readable"),
        ("unknown-task", lambda p: _write(p, {"prompt": ok}, {"prompt_tuning": json.dumps(
            _meta(backbone, ok, task="nonsense"))}), "unknown task"),
        ("fifo", lambda p: os.mkfifo(p), "not a regular file"),
        ("dangling-symlink", lambda p: p.symlink_to(p.parent / "nowhere.safetensors"), "dangling symlink"),
        ("directory", lambda p: p.mkdir(), "not a regular file"),
    ]


def _tasks(http) -> dict:
    r = http.get("/v1/tasks")
    assert r.status_code == 200
    return r.json()


def _answers(http) -> None:
    r = http.post("/v1/predict", json=GOOD)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"][0]["prompts"] == ["mrpc-0", "mrpc-1"]


def test_every_bad_file_is_refused_with_a_reason_and_the_task_keeps_serving(http, registry, tiny_llama):
    cases = _bad_files(tiny_llama)
    for name, write, _ in cases:
        write(registry / "mrpc" / f"bad-{name}.safetensors")
    try:
        r = http.post("/v1/reload")
        assert r.status_code == 200, r.text
        refused = r.json()["refused"]
        for name, _, reason in cases:
            key = f"mrpc/bad-{name}.safetensors"
            assert key in refused, (name, sorted(refused))
            assert reason in refused[key], (name, refused[key])
        info = _tasks(http)
        assert info["tasks"]["mrpc"]["prompts"] == ["mrpc-0", "mrpc-1"] and len(info["refused"]) == len(cases)
        assert http.get("/healthz").json()["status"] == "ok"
        _answers(http)
    finally:
        for name, _, _ in cases:
            path = registry / "mrpc" / f"bad-{name}.safetensors"
            path.rmdir() if path.is_dir() and not path.is_symlink() else path.unlink(missing_ok=True)
    assert http.post("/v1/reload").json()["refused"] == {}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_refused(http, registry, tiny_llama):
    path = save_random_prompt(registry, tiny_llama, "mrpc", "locked", seed=9)
    path.chmod(0)
    try:
        assert "mrpc/locked.safetensors" in http.post("/v1/reload").json()["refused"]
        _answers(http)
    finally:
        path.unlink()


def test_vanished_registry_keeps_the_last_good_prompts_and_reports_degraded(http, registry):
    moved = registry.with_name(registry.name + "-moved")
    registry.rename(moved)
    try:
        assert http.post("/v1/reload").status_code == 200
        health = http.get("/healthz").json()
        assert health["status"] == "degraded" and "cannot be read" in health["problems"][0], health
        _answers(http)
    finally:
        moved.rename(registry)
    http.post("/v1/reload")
    assert http.get("/healthz").json() == {"status": "ok", "tasks": 1, "problems": []}


def test_a_change_of_content_under_the_same_mtime_is_reloaded(http, registry, tiny_llama):
    path = registry / "mrpc" / "mrpc-1.safetensors"
    original, stat = path.read_bytes(), path.stat()
    before = http.post("/v1/predict", json={**GOOD, "voting": "mean_probability"}).json()
    version = _tasks(http)["version"]
    try:
        save_random_prompt(registry, tiny_llama, "mrpc", "mrpc-1", seed=1234)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        http.post("/v1/reload")
        assert _tasks(http)["version"] > version
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    http.post("/v1/reload")
    assert http.post("/v1/predict", json={**GOOD, "voting": "mean_probability"}).json() == before


def test_concurrent_registrations_never_leave_a_task_empty(tmp_path, tiny_llama):
    """Two sweeps registering the same task at once: afterwards the task holds one sweep's prompts, whole."""
    from tuning.artifact import PromptArtifact
    from tuning.sweep.registry import Candidate, register

    def candidates(trial):
        return [Candidate(trial, k, PromptArtifact(prompt=torch.randn(4, tiny_llama.embed_dim), task="mrpc",
                                                   backbone=tiny_llama.name, fingerprint=tiny_llama.fingerprint))
                for k in range(3)]

    for _ in range(10):
        runs = [threading.Thread(target=register, args=("mrpc", candidates(t), tmp_path)) for t in ("a", "b")]
        for t in runs:
            t.start()
        for t in runs:
            t.join()
        names = sorted(p.name for p in (tmp_path / "mrpc").glob("*.safetensors"))
        assert names in ([f"mrpc-a-k{k}.safetensors" for k in range(3)], [f"mrpc-b-k{k}.safetensors" for k in range(3)]), names
