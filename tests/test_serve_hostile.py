"""The Serve app under hostile input, over real HTTP: no 5xx, short error messages, nothing lost.

One Serve with an open app (no token) and a locked one (bearer token), both with small limits so that
every limit can be crossed cheaply. Each hostile request is followed by a valid one.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import httpx
import pytest
from serving import random_registry, serve_apps

TOKEN = "hostile-token"
GOOD = {"task": "mrpc", "input": "sentence1: a cat sat. sentence2: a cat was sitting."}
LIMITS = dict(max_inputs=8, max_input_chars=300, max_input_tokens=120, max_request_tokens=400,
              max_body_bytes=64 * 1024)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_llama):
    return random_registry(tmp_path_factory.mktemp("hostile-registry"), tiny_llama)


@pytest.fixture(scope="module")
def server(ray_session, tiny_dirs, registry):
    from deployments.config import ServeConfig

    common = dict(model=str(tiny_dirs["llama"]), registry=str(registry), num_cpus=0.25, torch_threads=1,
                  dtype="float32", reload_interval_s=0, **LIMITS)
    with serve_apps({"/": ServeConfig(**common), "/locked": ServeConfig(**common, token=TOKEN)}) as base:
        yield base


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server, timeout=60) as client:
        yield client


def _raw(s: str) -> bytes:
    """JSON text whose \\uXXXX escapes reach the server as written (lone surrogates included)."""
    return s.encode()


BIG = "x" * (1 << 20)
DEEP = b"[" * 50_000
# (id, body, expected status); a dict is sent as JSON, bytes as they are
HOSTILE = [
    # not JSON, or JSON that Python accepts but the standard does not
    ("nan-task", _raw('{"task": NaN, "input": "a"}'), 400),
    ("infinity-input", _raw('{"task": "mrpc", "inputs": [Infinity]}'), 400),
    ("minus-infinity", _raw('{"task": "mrpc", "input": "a", "voting": -Infinity}'), 400),
    ("nan-extra", _raw('{"task": "mrpc", "input": "a", "x": NaN}'), 400),
    ("truncated", b'{"task": "mrpc", "inputs": [', 400),
    ("trailing-garbage", b'{"task": "mrpc", "input": "a"} x', 400),
    ("single-quotes", b"{'task': 'mrpc', 'input': 'a'}", 400),
    ("comment", b'{"task": "mrpc", /* hi */ "input": "a"}', 400),
    ("empty-body", b"", 400),
    ("whitespace-body", b"   \n ", 400),
    ("invalid-utf8", b'{"task": "mrpc", "input": "\xff\xfe"}', 400),
    ("utf16-body", json.dumps(GOOD).encode("utf-16"), 400),
    ("deep-arrays", DEEP, 400),
    ("deep-objects", b'{"a":' * 10_000, 400),
    ("huge-integer", b'{"task": "mrpc", "input": "a", "x": ' + b"9" * 5000 + b"}", 400),
    ("bare-string", b'"mrpc"', 422),
    ("bare-number", b"1", 422),
    ("null-body", b"null", 422),
    ("array-body", b'["mrpc", "a"]', 422),
    ("float-overflow-task", b'{"task": 1e999, "input": "a"}', 422),
    # the schema
    ("missing-task", {"input": "a"}, 422),
    ("null-task", {"task": None, "input": "a"}, 422),
    ("number-task", {"task": 3, "input": "a"}, 422),
    ("list-task", {"task": ["mrpc"], "input": "a"}, 422),
    ("object-task", {"task": {"name": "mrpc"}, "input": "a"}, 422),
    ("empty-task", {"task": "", "input": "a"}, 422),
    ("neither-input", {"task": "mrpc"}, 422),
    ("both-inputs", {"task": "mrpc", "input": "a", "inputs": ["b"]}, 422),
    ("null-input", {"task": "mrpc", "input": None}, 422),
    ("null-inputs", {"task": "mrpc", "inputs": None}, 422),
    ("null-input-beside-inputs", {"task": "mrpc", "input": None, "inputs": ["a"]}, 422),
    ("empty-inputs", {"task": "mrpc", "inputs": []}, 422),
    ("inputs-string", {"task": "mrpc", "inputs": "a"}, 422),
    ("inputs-nested", {"task": "mrpc", "inputs": [["a"]]}, 422),
    ("inputs-with-null", {"task": "mrpc", "inputs": ["a", None]}, 422),
    ("inputs-with-number", {"task": "mrpc", "inputs": ["a", 2]}, 422),
    ("input-number", {"task": "mrpc", "input": 5}, 422),
    ("input-bool", {"task": "mrpc", "input": True}, 422),
    ("input-object", {"task": "mrpc", "input": {"text": "a"}}, 422),
    ("empty-input", {"task": "mrpc", "input": ""}, 422),
    ("unknown-voting", {"task": "mrpc", "input": "a", "voting": "max"}, 422),
    ("null-voting", {"task": "mrpc", "input": "a", "voting": None}, 422),
    ("number-voting", {"task": "mrpc", "input": "a", "voting": 1}, 422),
    ("extra-field", {"task": "mrpc", "input": "a", "text": "b"}, 422),
    ("many-extra-fields", {"task": "mrpc", "input": "a", **{f"f{i}": i for i in range(200)}}, 422),
    ("huge-extra-field-name", {"task": "mrpc", "input": "a", "k" * 60_000: 1}, 422),
    # invalid Unicode: lone surrogates anywhere
    ("surrogate-input", _raw('{"task": "mrpc", "input": "\\ud800"}'), 422),
    ("surrogate-in-inputs", _raw('{"task": "mrpc", "inputs": ["a", "b\\udfffc"]}'), 422),
    ("surrogate-task", _raw('{"task": "\\ud800", "input": "a"}'), 422),
    ("surrogate-extra-key", _raw('{"task": "mrpc", "input": "a", "\\ud800": 1}'), 422),
    ("surrogate-extra-value", _raw('{"task": "mrpc", "input": "a", "x": "\\udbff"}'), 422),
    ("reversed-pair", _raw('{"task": "mrpc", "input": "\\udc00\\ud800"}'), 422),
    ("surrogate-voting", _raw('{"task": "mrpc", "input": "a", "voting": "\\ud800"}'), 422),
    # limits (the app's: 8 inputs, 300 characters and 120 tokens each, 400 tokens, 64 KiB)
    ("too-many-inputs", {"task": "mrpc", "inputs": ["a"] * 9}, 422),
    ("too-many-characters", {"task": "mrpc", "input": "a" * 301}, 422),
    ("too-many-tokens", {"task": "mrpc", "input": "é ß ∂ " * 40}, 422),
    ("request-tokens", {"task": "mrpc", "inputs": ["word " * 30 + str(i) for i in range(8)]}, 422),
    ("body-over-limit", {"task": "mrpc", "input": "a", "pad": "x" * 70_000}, 413),
    ("huge-body", {"task": "mrpc", "input": BIG}, 413),
    # tasks
    ("unknown-task", {"task": "squad", "input": "a"}, 404),
    ("huge-task-name", {"task": BIG, "input": "a"}, 413),
    ("long-task-name", {"task": "t" * 20_000, "input": "a"}, 404),
    ("task-with-control-chars", {"task": "mrpc\x00\n", "input": "a"}, 404),
    # legal but unusual: must be answered
    ("nul-in-input", {"task": "mrpc", "input": "a\x00b"}, 200),
    ("emoji-input", {"task": "mrpc", "input": "😀 " * 20}, 200),
    ("rtl-override", {"task": "mrpc", "input": "\u202eabc\u202c def"}, 200),
    ("combining-marks", {"task": "mrpc", "input": "e" + "\u0301" * 50}, 200),
    ("whitespace-input", {"task": "mrpc", "input": "   "}, 200),
    ("mean-probability", {"task": "mrpc", "inputs": ["a", "b"], "voting": "mean_probability"}, 200),
]


def _post(http, path, body, headers=None):
    if isinstance(body, bytes):
        return http.post(path, content=body, headers={"content-type": "application/json", **(headers or {})})
    return http.post(path, json=body, headers=headers)


def _assert_alive(http, path="/v1/predict", headers=None):
    ok = _post(http, path, GOOD, headers)
    assert ok.status_code == 200, ok.text
    assert ok.json()["predictions"][0]["prediction"] in ("equivalent", "not_equivalent")


def test_there_are_at_least_60_hostile_cases():
    assert len(HOSTILE) >= 60


@pytest.mark.parametrize("body,code", [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_request_gets_its_4xx_and_the_server_keeps_serving(http, body, code):
    r = _post(http, "/v1/predict", body)
    assert r.status_code == code, r.text[:500]
    if code != 200:
        detail = r.json()["detail"]
        assert isinstance(detail, str) and 0 < len(detail) < 400, detail  # quotes at most ~100 characters
    _assert_alive(http)


def test_auth_comes_before_the_body(http):
    """A locked app answers 401 to a request without the token whatever its body: nothing is parsed first."""
    for body in (b"x" * (200 * 1024), DEEP, _raw('{"task": NaN}'), GOOD):
        r = _post(http, "/locked/v1/predict", body)
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer", r.text[:200]
    for header in ("Bearer wrong", "Basic " + TOKEN, "Bearer", "", "Bearer  " + TOKEN + "x", "Bearer \xe9"):
        r = _post(http, "/locked/v1/predict", GOOD, {"Authorization": header.encode("latin-1")})
        assert r.status_code == 401, (header, r.text)
    _assert_alive(http, "/locked/v1/predict", {"Authorization": f"bearer {TOKEN}"})  # scheme is case-insensitive


def test_wrong_methods_and_paths_are_4xx(http):
    assert http.get("/v1/predict").status_code == 405
    assert http.put("/v1/predict", json=GOOD).status_code == 405
    assert http.get("/v1/nothing").status_code == 404
    _assert_alive(http)


def test_a_poisoned_batch_leaves_its_neighbours_intact(server, http):
    """Hostile and valid requests sent together: the valid ones get exactly their lone answers."""
    texts = [f"sentence1: the cat {i}. sentence2: a cat {i}." for i in range(8)]
    alone = [_post(http, "/v1/predict", {"task": "mrpc", "input": t}).json()["predictions"] for t in texts]
    hostile = [b for _, b, code in HOSTILE if code not in (200, 413)][:24]

    async def fire():
        async with httpx.AsyncClient(base_url=server, timeout=60, limits=httpx.Limits(max_connections=64)) as c:
            valid = [c.post("/v1/predict", json={"task": "mrpc", "input": t}) for t in texts]
            bad = [c.post("/v1/predict", content=b if isinstance(b, bytes) else json.dumps(b).encode(),
                          headers={"content-type": "application/json"}) for b in hostile]
            return await asyncio.gather(*(x for pair in zip(valid, bad) for x in pair), *bad[len(valid):])

    responses = asyncio.run(fire())
    valid = responses[0:16:2]
    assert [r.json()["predictions"] for r in valid] == alone
    assert all(400 <= r.status_code < 500 for r in responses[1:16:2] + responses[16:])


@pytest.mark.parametrize("locked", [False, True], ids=["open", "locked"])
def test_schemathesis_finds_no_server_error_or_schema_violation(server, locked, tmp_path):
    """Every operation of the live OpenAPI document, generated and fuzzed: 0 failures of any check."""
    prefix = "/locked" if locked else ""
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{server}{prefix}/openapi.json", "--url", server + prefix,
           "--checks", "all", "--max-examples", "25", "--generation-deterministic", "--request-timeout", "60"]
    if locked:
        cmd += ["-H", f"Authorization: Bearer {TOKEN}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=tmp_path)  # its cache stays there
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "No issues found" in run.stdout


def test_openapi_says_what_the_server_does(http):
    open_doc = http.get("/openapi.json").json()
    locked_doc = http.get("/locked/openapi.json").json()
    assert all("security" not in op for ops in open_doc["paths"].values() for op in ops.values())
    assert all(op["security"] == [{"HTTPBearer": []}] for path, ops in locked_doc["paths"].items()
               if path.startswith("/v1") for op in ops.values())
    request = open_doc["components"]["schemas"]["PredictRequest"]
    assert request["oneOf"] == [{"required": ["input"]}, {"required": ["inputs"]}]
    assert "anyOf" not in json.dumps(request["properties"])  # nothing is nullable


def test_every_port_of_the_single_node_setup_is_on_loopback(server):
    """What `ss -ltnp` shows for Ray's processes while serving: nothing on a routable address."""
    import ipaddress

    import psutil

    ray_pids = {p.pid for p in psutil.process_iter(["name", "cmdline"])
                if any(word in " ".join(p.info["cmdline"] or [p.info["name"] or ""]) for word in
                       ("ray::", "raylet", "gcs_server", "dashboard", "ray/_private", "default_worker"))}
    listening = [c for c in psutil.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN and c.pid in ray_pids]
    assert listening  # the proxy, the replica, raylet, GCS ...
    exposed = [(c.laddr, psutil.Process(c.pid).name()) for c in listening
               if not ipaddress.ip_address(c.laddr.ip.removeprefix("::ffff:")).is_loopback]
    assert exposed == []
