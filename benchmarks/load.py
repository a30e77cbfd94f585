"""A low-overhead HTTP load client for the benchmarks: raw asyncio HTTP/1.1 on keep-alive connections.

httpx's parsing would compete with the server for a 2-core machine's CPU; this client costs well
under a second of CPU per thousand requests, and `closed_loop` reports its own CPU seconds.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)      # HTTP status, or "error" when no answer came
    answers: dict[int, list[str]] = field(default_factory=dict)  # input index -> per-prompt answers (200s)
    events: list[tuple[float, int | str, float]] = field(default_factory=list)  # (sent at, status, latency)
    wall: float = 0.0
    client_cpu: float = 0.0

    @property
    def lost(self) -> int:
        """Requests without an answer by policy: no response, or a 5xx other than 503."""
        return sum(n for s, n in self.statuses.items() if s == "error" or (s >= 500 and s != 503))


async def post(reader, writer, path: str, body: bytes) -> tuple[int, bytes, bool]:
    """(status, body, whether the server keeps the connection open)."""
    writer.write(f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    length, keep = 0, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            keep = False
    return status, await reader.readexactly(length), keep


async def closed_loop(port: int, path: str, task: str, texts: list[str], concurrency: int, n: int,
                      timeout: float = 300.0) -> LoadResult:
    """C connections, each sending its next single-input request when the last one answered."""
    out, next_i, t0 = LoadResult(), 0, time.perf_counter()

    async def worker():
        nonlocal next_i
        conn = None
        while next_i < n:
            i, next_i = next_i, next_i + 1
            body = json.dumps({"task": task, "input": texts[i % len(texts)]}).encode()
            t = time.perf_counter()
            status, data, keep = "error", b"", False
            for attempt in range(2):  # a kept-alive connection the server has just closed: reconnect once
                fresh = conn is None
                try:
                    conn = conn or await asyncio.open_connection("127.0.0.1", port)
                    status, data, keep = await asyncio.wait_for(post(*conn, path, body), timeout)
                    break
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    conn[1].close() if conn else None
                    conn = None
                    if fresh:
                        break
                except asyncio.TimeoutError:  # the answer may still come: this connection is unusable
                    conn[1].close()
                    conn = None
                    break
            if not keep and conn:
                conn[1].close()
                conn = None
            latency = time.perf_counter() - t
            out.latencies.append(latency)
            out.statuses[status] += 1
            out.events.append((t - t0, status, latency))
            if status == 200:
                out.answers[i % len(texts)] = json.loads(data)["predictions"][0]["answers"]
        if conn:
            conn[1].close()

    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    out.wall, out.client_cpu = time.perf_counter() - t0, time.process_time() - cpu
    return out


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")
