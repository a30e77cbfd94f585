"""The Serve HTTP endpoint over real HTTP on loopback, with the tiny random Llama.

One Serve instance for the module with two apps: the main one (no auth, short batch wait, fast reload)
and a guarded one under /guarded (bearer token, tiny queue, long batch wait) for auth and overload.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from serving import save_random_prompt, serve_apps

TOKEN = "s3cret-token"
MRPC = [f"sentence1: the cat sat on mat {i} sentence2: a cat was on the mat {i}" for i in range(6)]
RTE = [f"premise: the man turned on the faucet {i} hypothesis: water flowed {i}" for i in range(6)]


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_llama):
    root = tmp_path_factory.mktemp("registry")
    for t, task in enumerate(("mrpc", "rte")):
        for k in range(3):
            save_random_prompt(root, tiny_llama, task, f"{task}-{k}", seed=10 * t + k)
    return root


@pytest.fixture(scope="module")
def server(ray_session, tiny_dirs, registry):
    """Base URL of Serve on 127.0.0.1 with both apps running; everything is deleted afterwards."""
    from deployments.config import ServeConfig

    common = dict(model=str(tiny_dirs["llama"]), registry=str(registry), num_cpus=0.25, torch_threads=1,
                  dtype="float32", max_inputs=8, max_input_chars=300, max_input_tokens=200)
    with serve_apps({"/": ServeConfig(**common, max_batch_size=16, batch_wait_timeout_s=0.1, reload_interval_s=0.3),
                     "/guarded": ServeConfig(**common, token=TOKEN, max_batch_size=4, batch_wait_timeout_s=1.5,
                                             max_ongoing_requests=2, max_queued_requests=1,
                                             reload_interval_s=0)}) as base:
        yield base


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def engine(tiny_llama, registry):
    """The same backbone and prompts, run directly in this process (the reference answers)."""
    from ensemble import EnsembleEngine, PromptBank

    return EnsembleEngine(PromptBank(tiny_llama, registry))


def _same(served: list[dict], direct) -> None:
    assert [p["prediction"] for p in served] == [p.prediction for p in direct]
    assert [p["answers"] for p in served] == [p.answers for p in direct]
    assert [p["votes"] for p in served] == [p.votes for p in direct]
    assert [p["prompts"] for p in served] == [p.prompts for p in direct]
    assert [p["agreement"] for p in served] == pytest.approx([p.agreement for p in direct])


async def _fire(base: str, requests: list[tuple[str, dict]], headers=None) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=base, timeout=60, headers=headers,
                                 limits=httpx.Limits(max_connections=64)) as client:
        return await asyncio.gather(*(client.post(path, json=body) for path, body in requests))


def _stats(http) -> dict:
    r = http.get("/v1/stats")
    assert r.status_code == 200
    return r.json()


# ---- API ----------------------------------------------------------------------------------------

def test_health_and_tasks(http, tiny_llama):
    r = http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "tasks": 2, "problems": []}, r.text
    info = http.get("/v1/tasks").json()
    assert info["fingerprint"] == tiny_llama.fingerprint
    assert set(info["tasks"]) == {"mrpc", "rte"}
    mrpc = info["tasks"]["mrpc"]
    assert (mrpc["n_prompts"], mrpc["prompt_length"], mrpc["kind"]) == (3, 4, "classification")
    assert mrpc["labels"] == ["not_equivalent", "equivalent"]
    assert mrpc["prompts"] == ["mrpc-0", "mrpc-1", "mrpc-2"]
    assert info["refused"] == {}
    assert "/v1/predict" in http.get("/openapi.json").json()["paths"]


def test_predictions_equal_the_engine_run_directly(http, engine):
    r = http.post("/v1/predict", json={"task": "mrpc", "inputs": MRPC[:4]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["task"] == "mrpc" and body["backbone"] == engine.backbone.name
    _same(body["predictions"], engine.predict([("mrpc", t) for t in MRPC[:4]]))

    one = http.post("/v1/predict", json={"task": "rte", "input": RTE[0]}).json()["predictions"]
    _same(one, engine.predict([("rte", RTE[0])]))

    mean = http.post("/v1/predict", json={"task": "mrpc", "inputs": MRPC[:4], "voting": "mean_probability"})
    _same(mean.json()["predictions"], engine.predict([("mrpc", t) for t in MRPC[:4]], voting="mean_probability"))


def test_concurrent_requests_are_batched(server, http, engine):
    before = _stats(http)
    responses = asyncio.run(_fire(server, [("/v1/predict", {"task": "mrpc", "input": MRPC[i % 6]}) for i in range(16)]))
    assert [r.status_code for r in responses] == [200] * 16
    for i, r in enumerate(responses):
        _same(r.json()["predictions"], engine.predict([("mrpc", MRPC[i % 6])]))
    after = _stats(http)
    assert after["requests"] - before["requests"] == 16
    new_batches = {int(k): v - before["batch_requests"].get(k, 0) for k, v in after["batch_requests"].items()}
    assert sum(size * n for size, n in new_batches.items()) == 16
    assert max(size for size, n in new_batches.items() if n > 0) > 1, new_batches
    assert sum(new_batches.values()) < 16, new_batches  # merged: fewer engine passes than requests


def test_mixed_tasks_share_a_batch(server, http, engine):
    before = _stats(http)
    # different tasks (different labels and prompt names) and input counts: a mis-split shows
    requests = [("/v1/predict", {"task": task, "inputs": texts[i:i + n]})
                for i, n in ((0, 1), (1, 2), (3, 3)) for task, texts in (("mrpc", MRPC), ("rte", RTE))]
    responses = asyncio.run(_fire(server, requests))
    for (_, body), r in zip(requests, responses):
        assert r.status_code == 200, r.text
        assert r.json()["task"] == body["task"]
        _same(r.json()["predictions"], engine.predict([(body["task"], t) for t in body["inputs"]]))
    assert _stats(http)["mixed_batches"] > before["mixed_batches"]


# ---- hot reload ---------------------------------------------------------------------------------

def _wait_for(http, check, timeout=30.0) -> dict:
    """Poll /v1/tasks (no forced reload: the background task must pick changes up)."""
    deadline = time.monotonic() + timeout
    while True:
        info = http.get("/v1/tasks").json()
        if check(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def test_hot_reload_adds_removes_and_refuses(http, registry, tiny_llama):
    added = save_random_prompt(registry, tiny_llama, "rte", "rte-new", seed=99)
    info = _wait_for(http, lambda i: i["tasks"]["rte"]["n_prompts"] == 4)
    assert info["tasks"]["rte"]["n_prompts"] == 4 and "rte-new" in info["tasks"]["rte"]["prompts"]
    r = http.post("/v1/predict", json={"task": "rte", "input": RTE[1]})
    assert r.json()["predictions"][0]["prompts"] == ["rte-0", "rte-1", "rte-2", "rte-new"]

    cb = save_random_prompt(registry, tiny_llama, "cb", "cb-0", seed=5)
    info = _wait_for(http, lambda i: "cb" in i["tasks"])
    assert info["tasks"]["cb"]["n_prompts"] == 1

    added.unlink()
    cb.unlink()
    info = _wait_for(http, lambda i: i["tasks"]["rte"]["n_prompts"] == 3 and "cb" not in i["tasks"])
    assert info["tasks"]["rte"]["prompts"] == ["rte-0", "rte-1", "rte-2"] and "cb" not in info["tasks"]
    assert http.post("/v1/predict", json={"task": "cb", "input": "x"}).status_code == 404

    foreign = save_random_prompt(registry, tiny_llama, "mrpc", "mrpc-foreign", seed=7, fingerprint="0123456789abcdef")
    try:
        report = http.post("/v1/reload").json()  # forced, no waiting
        assert report["added"] == [] and "mrpc/mrpc-foreign.safetensors" in report["refused"]
        info = http.get("/v1/tasks").json()
        reason = info["refused"]["mrpc/mrpc-foreign.safetensors"]
        assert "0123456789abcdef" in reason and tiny_llama.fingerprint in reason
        assert info["tasks"]["mrpc"]["n_prompts"] == 3
    finally:
        foreign.unlink()
    assert http.post("/v1/reload").json()["refused"] == {}


# ---- bad input ----------------------------------------------------------------------------------

BAD = [
    ("malformed json", b'{"task": "mrpc", "inputs": [', 400, "JSON"),
    ("not an object", b'["mrpc"]', 422, ""),
    ("missing task", {"inputs": ["a"]}, 422, "task"),
    ("missing inputs", {"task": "mrpc"}, 422, "exactly one of"),
    ("both input and inputs", {"task": "mrpc", "input": "a", "inputs": ["b"]}, 422, "exactly one of"),
    ("inputs not a list", {"task": "mrpc", "inputs": "a"}, 422, "inputs"),
    ("number as input", {"task": "mrpc", "inputs": [1, 2]}, 422, "string"),
    ("task not a string", {"task": 3, "input": "a"}, 422, "task"),
    ("unknown field", {"task": "mrpc", "input": "a", "text": "b"}, 422, "text"),
    ("unknown voting", {"task": "mrpc", "input": "a", "voting": "max"}, 422, "voting"),
    ("empty inputs", {"task": "mrpc", "inputs": []}, 422, "inputs"),
    ("empty string", {"task": "mrpc", "input": ""}, 422, "input"),
    ("too many inputs", {"task": "mrpc", "inputs": ["a"] * 9}, 422, "limit is 8"),
    ("too long input", {"task": "mrpc", "input": "a" * 301}, 422, "limit is 300"),
    ("unknown task", {"task": "squad", "input": "a"}, 404, "loaded tasks: mrpc, rte"),
]


@pytest.mark.parametrize("body,code,detail", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_a_4xx_and_the_server_keeps_serving(http, body, code, detail):
    if isinstance(body, bytes):
        r = http.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    else:
        r = http.post("/v1/predict", json=body)
    assert r.status_code == code, r.text
    assert detail in json.dumps(r.json()["detail"])
    ok = http.post("/v1/predict", json={"task": "mrpc", "input": MRPC[0]})
    assert ok.status_code == 200 and ok.json()["predictions"][0]["prediction"] in ("equivalent", "not_equivalent")


# ---- auth and overload (the guarded app) ----------------------------------------------------------

def test_bearer_token_guards_v1_but_not_healthz(http):
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert http.get("/guarded/healthz").status_code == 200
    for path in ("/guarded/v1/tasks", "/guarded/v1/stats"):
        assert http.get(path).status_code == 401
        assert http.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert http.get(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        assert http.get(path, headers=good).status_code == 200
    assert http.post("/guarded/v1/reload").status_code == 401
    r = http.post("/guarded/v1/predict", json={"task": "mrpc", "input": MRPC[0]})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer" and "bearer token" in r.json()["detail"]
    assert http.post("/guarded/v1/predict", json={"task": "mrpc", "input": MRPC[0]}, headers=good).status_code == 200


def test_overload_is_a_503_not_a_long_queue(server, http):
    """2 requests in the replica (held 1.5 s by the batch wait) + 1 queued at the proxy; the rest: 503."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    responses = asyncio.run(_fire(server, [("/guarded/v1/predict", {"task": "mrpc", "input": MRPC[i % 6]})
                                           for i in range(12)], headers=headers))
    codes = sorted(r.status_code for r in responses)
    assert set(codes) == {200, 503}, codes
    ok = http.post("/guarded/v1/predict", json={"task": "mrpc", "input": MRPC[0]}, headers=headers)
    assert ok.status_code == 200
