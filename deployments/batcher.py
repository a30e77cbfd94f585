"""Merge waiting requests into one engine pass, taken when the model thread becomes free.

Why not `@serve.batch`: Ray 2.60's `_process_batches` cuts a batch as soon as `batch_wait_timeout_s`
elapses and only then waits for the running batch to finish (`max_concurrent_batches`), so under load
batches of 1-2 requests queue up behind each other instead of growing while the model computes
(measured: 1.8 requests per batch with 32 always waiting). Here the single consumer takes *everything*
queued (up to the caps) at the moment the previous pass ends, so batch size follows load by itself
and an idle server adds no wait at all.

Policy, all plain asyncio (no Ray): while the oldest queued request has waited longer than
`max_queue_wait_s`, newcomers are refused at once (`Overloaded`, answered 503 + Retry-After) instead
of joining a queue they would wait in even longer, and a request that nevertheless waited that long
is refused when its turn comes. The bound is on measured waits, not on a cost estimate: an estimate
that refuses makes passes smaller, which raises the estimate (a feedback loop seen in
`bench_faults.py`: 979 of 1,000 requests refused). A batch whose pass raises is re-run one request at
a time so that only the culprit fails (batch isolation).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Callable, Sequence


class Overloaded(Exception):
    """The request would wait longer than the queue-wait bound: answer 503 with Retry-After."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = max(1, math.ceil(retry_after))


@dataclass
class Job:
    """One request: its task, its inputs and how to vote; `size` is what it costs in engine inputs."""
    task: str
    texts: list[str]
    voting: str
    future: asyncio.Future | None = None
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def size(self) -> int:
        return len(self.texts)


@dataclass
class BatchStats:
    requests: dict[int, int] = field(default_factory=dict)   # requests per pass -> passes
    inputs: dict[int, int] = field(default_factory=dict)     # inputs per pass -> passes
    isolated_retries: int = 0
    refused_overload: int = 0
    seconds: float = 0.0                                      # time the model thread spent in passes

    def record(self, jobs: Sequence[Job], seconds: float) -> None:
        n = sum(j.size for j in jobs)
        self.requests[len(jobs)] = self.requests.get(len(jobs), 0) + 1
        self.inputs[n] = self.inputs.get(n, 0) + 1
        self.seconds += seconds

    def to_dict(self) -> dict:
        passes = sum(self.requests.values())
        return {"batches": passes,
                "mean_batch_requests": sum(k * v for k, v in self.requests.items()) / passes if passes else 0.0,
                "max_batch_requests": max(self.requests, default=0),
                "batch_requests": {str(k): v for k, v in sorted(self.requests.items())},
                "batch_examples": {str(k): v for k, v in sorted(self.inputs.items())},
                "isolated_retries": self.isolated_retries, "refused_overload": self.refused_overload,
                "pass_seconds": round(self.seconds, 1)}


class Batcher:
    """`await submit(job)` returns `run([job])[0]`, computed in a pass shared with whatever else waited.

    `run(jobs)` executes on `executor` (one model thread) and returns one result per job; a result
    that is an exception is raised to that job's caller only.
    """

    def __init__(self, run: Callable[[list[Job]], list], executor: Executor, max_batch_size: int = 16,
                 max_batch_inputs: int = 64, max_queue_wait_s: float = 10.0, batch_wait_timeout_s: float = 0.0):
        self.run, self.executor = run, executor
        self.max_batch_size, self.max_batch_inputs = max_batch_size, max_batch_inputs
        self.max_queue_wait_s, self.batch_wait_timeout_s = max_queue_wait_s, batch_wait_timeout_s
        self.stats = BatchStats()
        self._queue: deque[Job] = deque()
        self._wake = asyncio.Event()
        self._busy_since: float | None = None
        self._consumer: asyncio.Task | None = None

    def busy_for(self) -> float:
        """Seconds the model thread has spent in the current pass (0 when idle)."""
        return time.monotonic() - self._busy_since if self._busy_since is not None else 0.0

    def oldest_wait(self) -> float:
        """Seconds the oldest request still queued has waited (0 when none waits)."""
        while self._queue and self._queue[0].future.done():
            self._queue.popleft()
        return time.monotonic() - self._queue[0].queued_at if self._queue else 0.0

    async def submit(self, job: Job):
        waited = self.oldest_wait()
        if self.max_queue_wait_s and waited > self.max_queue_wait_s:  # behind: a newcomer would wait longer still
            self.stats.refused_overload += 1
            raise Overloaded(f"overloaded: the oldest queued request has waited {waited:.0f} s, over the "
                             f"{self.max_queue_wait_s:g} s bound; retry later", retry_after=self.busy_for() or 1)
        self._start()
        job.future = asyncio.get_running_loop().create_future()
        self._queue.append(job)
        self._wake.set()
        try:
            return await job.future
        finally:
            if not job.future.done():  # the caller gave up (deadline, disconnect): drop it from the queue
                job.future.cancel()

    def _start(self) -> None:
        if self._consumer is None or self._consumer.done():
            self._consumer = asyncio.get_running_loop().create_task(self._consume())

    def _take(self) -> list[Job]:
        """Everything queued that fits one pass; cancelled jobs are dropped, late ones refused."""
        jobs, inputs, now = [], 0, time.monotonic()
        while self._queue and len(jobs) < self.max_batch_size:
            job = self._queue[0]
            if job.future.done():
                self._queue.popleft()
                continue
            if jobs and inputs + job.size > self.max_batch_inputs:
                break
            self._queue.popleft()
            waited = now - job.queued_at
            if self.max_queue_wait_s and waited > self.max_queue_wait_s:
                self.stats.refused_overload += 1
                job.future.set_exception(Overloaded(f"overloaded: waited {waited:.1f} s in the queue, over the "
                                                    f"{self.max_queue_wait_s:g} s bound; retry later",
                                                    retry_after=self.max_queue_wait_s))
                continue
            jobs.append(job)
            inputs += job.size
        return jobs

    async def _consume(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                if self.batch_wait_timeout_s:  # idle server: optionally let a burst gather
                    await asyncio.sleep(self.batch_wait_timeout_s)
            jobs = self._take()
            if not jobs:
                continue
            self._busy_since = time.monotonic()
            start = time.perf_counter()
            try:
                results = await loop.run_in_executor(self.executor, self._run_isolated, jobs)
            except BaseException as e:  # the executor itself failed: every caller learns it
                results = [e] * len(jobs)
            self.stats.record(jobs, time.perf_counter() - start)
            self._busy_since = None
            for job, result in zip(jobs, results):
                if job.future.done():
                    continue
                if isinstance(result, BaseException):
                    job.future.set_exception(result)
                else:
                    job.future.set_result(result)

    def _run_isolated(self, jobs: list[Job]) -> list:
        """On the model thread: one pass; if it raises, each job alone, so only the culprit fails."""
        try:
            return self.run(jobs)
        except Exception as e:
            if len(jobs) == 1:
                return [e]
        self.stats.isolated_retries += 1
        out = []
        for job in jobs:
            try:
                out += self.run([job])
            except Exception as e:
                out.append(e)
        return out
