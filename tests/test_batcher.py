"""The request merger behind the Serve app (plain asyncio, no Ray): batches form, isolate and refuse."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from deployments.batcher import Batcher, Job, Overloaded


class SlowModel:
    """Echoes each job's texts upper-cased after `seconds`; raises on texts containing 'poison'."""

    def __init__(self, seconds=0.05):
        self.seconds, self.passes, self.lock = seconds, [], threading.Lock()

    def __call__(self, jobs):
        with self.lock:
            self.passes.append(len(jobs))
        time.sleep(self.seconds)
        if any("poison" in t for j in jobs for t in j.texts):
            raise ValueError("poisoned input")
        return [[t.upper() for t in j.texts] for j in jobs]


def _run(coro):
    return asyncio.run(coro)


def test_waiting_requests_merge_into_one_pass_when_the_model_is_free():
    model = SlowModel(0.2)

    async def main():
        b = Batcher(model, ThreadPoolExecutor(1), max_batch_size=16)
        first = asyncio.ensure_future(b.submit(Job("t", ["a"], "majority")))
        await asyncio.sleep(0.05)  # the first pass is running: the next 12 arrive while it computes
        rest = [b.submit(Job("t", [f"x{i}"], "majority")) for i in range(12)]
        return await asyncio.gather(first, *rest), b

    results, b = _run(main())
    assert results == [["A"]] + [[f"X{i}"] for i in range(12)]
    assert model.passes == [1, 12]
    assert b.stats.to_dict()["mean_batch_requests"] == 6.5


def test_caps_split_a_queue_by_requests_and_by_inputs():
    model = SlowModel(0.1)

    async def main():
        b = Batcher(model, ThreadPoolExecutor(1), max_batch_size=4, max_batch_inputs=5)
        blocker = asyncio.ensure_future(b.submit(Job("t", ["a"], "majority")))
        await asyncio.sleep(0.02)
        jobs = [b.submit(Job("t", ["x"] * n, "majority")) for n in (1, 1, 1, 1, 1, 3, 3, 7)]
        await asyncio.gather(blocker, *jobs)

    _run(main())
    assert model.passes == [1, 4, 2, 1, 1]  # 4 requests; 1+3 inputs; 3; a 7-input request alone


def test_a_failing_pass_is_retried_per_request_and_only_the_culprit_fails():
    model = SlowModel(0.05)

    async def main():
        b = Batcher(model, ThreadPoolExecutor(1))
        blocker = asyncio.ensure_future(b.submit(Job("t", ["a"], "majority")))
        await asyncio.sleep(0.01)
        texts = ["ok1", "poison", "ok2", "ok3"]
        out = await asyncio.gather(*(b.submit(Job("t", [t], "majority")) for t in texts), return_exceptions=True)
        await blocker
        return out, b

    out, b = _run(main())
    assert out[0] == ["OK1"] and out[2] == ["OK2"] and out[3] == ["OK3"]
    assert isinstance(out[1], ValueError) and b.stats.isolated_retries == 1


def test_behind_the_queue_wait_bound_newcomers_are_refused_at_once_and_nothing_is_lost():
    model = SlowModel(1.0)

    async def main():
        b = Batcher(model, ThreadPoolExecutor(1), max_batch_size=1, max_queue_wait_s=0.5)
        first = asyncio.ensure_future(b.submit(Job("t", ["first"], "majority")))
        await asyncio.sleep(0.01)
        queued = asyncio.ensure_future(b.submit(Job("t", ["queued"], "majority")))
        await asyncio.sleep(0.3)
        early = asyncio.ensure_future(b.submit(Job("t", ["early"], "majority")))  # oldest waited 0.3 s: admitted
        await asyncio.sleep(0.3)
        with pytest.raises(Overloaded) as refused:  # oldest waited 0.6 s > 0.5 s: refused without queueing
            await b.submit(Job("t", ["late"], "majority"))
        refused_while_first_ran = not first.done()  # the refusal did not wait for the running pass
        out = await asyncio.gather(first, queued, early, return_exceptions=True)
        return out, refused_while_first_ran, refused.value, b

    out, refused_while_first_ran, refused, b = _run(main())
    assert refused_while_first_ran and refused.retry_after >= 1
    assert out[0] == ["FIRST"]
    assert all(isinstance(r, Overloaded) for r in out[1:])  # they waited past the bound when their turn came
    assert b.stats.refused_overload == 3 and model.passes == [1]


def test_steady_load_under_the_bound_is_never_refused():
    """A closed loop of 16 clients on a 0.1 s pass: waits stay ~0.2 s, far under a 1 s bound."""
    model = SlowModel(0.1)

    async def main():
        b = Batcher(model, ThreadPoolExecutor(1), max_batch_size=8, max_queue_wait_s=1.0)

        async def client(k):
            return [await b.submit(Job("t", [f"{k}-{i}"], "majority")) for i in range(6)]

        return await asyncio.gather(*(client(k) for k in range(16))), b

    out, b = _run(main())
    assert all(len(r) == 6 for r in out) and b.stats.refused_overload == 0


def test_a_caller_that_gives_up_is_dropped_from_the_queue():
    model = SlowModel(0.2)

    async def main():
        b = Batcher(model, ThreadPoolExecutor(1))
        blocker = asyncio.ensure_future(b.submit(Job("t", ["a"], "majority")))
        await asyncio.sleep(0.01)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(b.submit(Job("t", ["late"], "majority")), 0.05)
        kept = b.submit(Job("t", ["kept"], "majority"))
        return await asyncio.gather(blocker, kept)

    assert _run(main()) == [["A"], ["KEPT"]]
    assert model.passes == [1, 1]


# ---- closed by default (ServeConfig and the CLI that validates it) --------------------------------

@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.4", "example.org"])
def test_a_public_host_without_a_token_is_refused_with_the_fix(host, monkeypatch, capsys):
    from deployments.__main__ import main
    from deployments.config import TOKEN_ENV, ServeConfig

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert main(["--host", host]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: refusing to serve on") and TOKEN_ENV in err and "--insecure" in err and "\n" not in err
    ServeConfig(host=host, token="t").validate()
    ServeConfig(host=host, insecure=True).validate()
    monkeypatch.setenv(TOKEN_ENV, "t")
    ServeConfig(host=host).validate()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(host, monkeypatch):
    from deployments.config import TOKEN_ENV, ServeConfig

    monkeypatch.delenv(TOKEN_ENV, raising=False)
    assert not ServeConfig(host=host).validate().auth


def test_live_knobs_are_validated_before_any_applies():
    from deployments.config import ServeConfig

    with pytest.raises(ValueError, match="max_input_tokens"):
        ServeConfig(max_input_tokens=512, max_input_length=256).validate()
    with pytest.raises(ValueError, match="max_queue_wait_s"):
        ServeConfig(max_queue_wait_s=-1).validate()
