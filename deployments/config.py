"""One dataclass for the serving job: what to load, how to batch, what to accept."""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from ensemble.vote import VOTINGS
from tuning.backbone import DEFAULT_MODEL
from tuning.fields import opt

TOKEN_ENV = "PROMPT_SERVE_TOKEN"
DTYPES = ("auto", "float32", "bfloat16", "float16")

# Knobs a running replica takes through Serve's `user_config` (changed by `serve deploy` without a restart).
DYNAMIC = ("max_batch_size", "max_batch_inputs", "batch_wait_timeout_s", "max_queue_wait_s", "request_timeout_s",
           "reload_interval_s", "max_body_bytes", "max_inputs", "max_input_chars", "max_input_tokens",
           "max_request_tokens")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class ServeConfig:
    model: str = opt(DEFAULT_MODEL, "backbone: the default name, a hub id or a local directory")
    registry: str = opt("registry", "<registry>/<task>/<name>.safetensors, written by the Tune job")
    host: str = opt("127.0.0.1", "keep loopback unless a proxy with TLS sits in front")
    port: int = opt(8000, "HTTP port of Serve's proxy")
    app_name: str = opt("prompt-ensemble", "Serve application name")
    route_prefix: str = opt("/", "URL prefix the API is served under")
    num_replicas: int = opt(1, "replicas, each with its own copy of the backbone")
    num_cpus: float = opt(1.0, "logical CPUs per replica; fractional on small boxes")
    torch_threads: int = opt(0, "0: all the node's cores (Ray would give a 1-CPU actor 1 thread)")
    dtype: str = opt("auto", "auto: bfloat16 where the CPU/GPU computes it natively, behind the guard")
    bf16_guard_examples: int = opt(64, "per task: dev examples answered in bf16 and fp32 at start-up (0: no guard)")
    bf16_guard_max_disagreement: float = opt(0.01, "more answers differing than this: serve fp32 instead")
    data_dir: str | None = opt(None, "where the guard reads dev examples (None: $PROMPT_TUNING_DATA / ../shared/data)")
    # batching: whenever the model thread is free, every waiting request (up to the caps) joins one pass
    max_batch_size: int = opt(16, "requests per engine pass")
    max_batch_inputs: int = opt(64, "inputs per engine pass (a larger single request runs alone)")
    batch_wait_timeout_s: float = opt(0.0, "extra wait for a burst when the server was idle (adds latency)")
    max_queue_wait_s: float = opt(10.0, "a request expected to wait longer gets 503 + Retry-After (0: no bound)")
    request_timeout_s: float = opt(60.0, "a request not answered by then gets 504")
    max_ongoing_requests: int = opt(0, "per replica; 0: 4 × max_batch_size")
    max_queued_requests: int = opt(64, "waiting at the proxy; beyond it requests get 503 (-1: unbounded)")
    # prompt registry
    reload_interval_s: float = opt(2.0, "background rescan; 0 disables it (POST /v1/reload still works)")
    # input limits, checked in this order before a request may join a batch
    max_body_bytes: int = opt(2 << 20, "bigger bodies get 413 before they are parsed")
    max_inputs: int = opt(64, "inputs per request")
    max_input_chars: int = opt(4000, "characters per input")
    max_input_tokens: int = opt(256, "tokens per input (<= max_input_length: nothing is silently cut)")
    max_request_tokens: int = opt(4096, "tokens per request")
    voting: str = opt("majority", "default when a request names none (majority or mean_probability)")
    # engine
    shared_prefix: bool = opt(True, "causal LMs: compute each prompt's keys/values once, reuse them every pass")
    max_rows: int = opt(32, "(prompt, input) rows per engine forward pass; larger batches are split")
    max_input_length: int = opt(256, "input tokens the engine keeps per input")
    max_new_tokens: int = opt(32, "longest generated answer, in tokens")
    token: str = opt("", "bearer token for /v1; empty: $PROMPT_SERVE_TOKEN, else no auth")
    insecure: bool = opt(False, "allow a non-loopback host without a token")

    def validate(self) -> "ServeConfig":
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise ValueError(msg)
        need(self.max_batch_size >= 1, f"max_batch_size must be >= 1, not {self.max_batch_size}")
        need(self.batch_wait_timeout_s >= 0, "batch_wait_timeout_s must be >= 0")
        need(self.max_ongoing_requests >= 0, "max_ongoing_requests must be >= 0 (0: 2 × max_batch_size)")
        need(self.max_queued_requests >= -1, "max_queued_requests must be >= 1, or -1 for unbounded")
        need(self.max_queued_requests != 0, "max_queued_requests 0 would refuse every request; use -1 for unbounded")
        need(self.reload_interval_s >= 0, "reload_interval_s must be >= 0 (0 disables the background reload)")
        need(min(self.max_inputs, self.max_input_chars, self.max_input_tokens, self.max_request_tokens,
                 self.max_body_bytes, self.max_batch_inputs) >= 1,
             "max_inputs, max_input_chars, max_input_tokens, max_request_tokens, max_body_bytes and "
             "max_batch_inputs must be >= 1")
        need(self.max_input_tokens <= self.max_input_length,
             f"max_input_tokens ({self.max_input_tokens}) must be <= max_input_length ({self.max_input_length}), "
             f"or inputs would be cut silently")
        need(self.max_queue_wait_s >= 0 and self.request_timeout_s > 0,
             "max_queue_wait_s must be >= 0 (0: no bound) and request_timeout_s > 0")
        need(self.bf16_guard_examples >= 0 and 0 <= self.bf16_guard_max_disagreement <= 1,
             "bf16_guard_examples must be >= 0 and bf16_guard_max_disagreement in [0, 1]")
        need(self.voting in VOTINGS, f"voting must be one of {', '.join(VOTINGS)}, not {self.voting!r}")
        need(self.num_replicas >= 1 and self.num_cpus > 0, "num_replicas must be >= 1 and num_cpus > 0")
        need(self.dtype in DTYPES, f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        need(1 <= self.port <= 65535, f"port must be in 1..65535, not {self.port}")
        need(is_loopback(self.host) or bool(self.token or os.environ.get(TOKEN_ENV)) or self.insecure,
             f"refusing to serve on {self.host} without a token: anyone who reaches it could use and reload the "
             f"service. Set ${TOKEN_ENV} (or --token), keep --host 127.0.0.1, or pass --insecure")
        return self

    @property
    def auth(self) -> bool:
        return bool(self.token or os.environ.get(TOKEN_ENV))

    @property
    def ongoing(self) -> int:
        return self.max_ongoing_requests or 4 * self.max_batch_size

    def resolved(self) -> "ServeConfig":
        """Absolute paths (replicas may run elsewhere than the caller's cwd) and the token from the env."""
        model = self.model
        if Path(model).expanduser().exists():
            model = str(Path(model).expanduser().resolve())
        return dataclasses.replace(self, model=model, registry=str(Path(self.registry).expanduser().resolve()),
                                   token=self.token or os.environ.get(TOKEN_ENV, ""))

    def user_config(self) -> dict:
        return {k: getattr(self, k) for k in DYNAMIC}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ServeConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown serve option(s) {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        types = {f.name: type(f.default) for f in dataclasses.fields(cls)}
        # Serve CLI args (`serve run ... key=value`) arrive as strings
        return cls(**{k: _coerce(v, types[k]) for k, v in d.items()})


def _coerce(value, kind):
    if isinstance(value, str) and kind not in (str, type(None)):
        if kind is bool:
            return value.lower() in ("1", "true", "yes", "on")
        return kind(value)
    return value
