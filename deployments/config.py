"""One dataclass for the serving job: what to load, how to batch, what to accept."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

TOKEN_ENV = "PROMPT_SERVE_TOKEN"
VOTINGS = ("majority", "mean_probability")

# Knobs a running replica takes through Serve's `user_config` (changed by `serve deploy` without a restart).
DYNAMIC = ("max_batch_size", "batch_wait_timeout_s", "reload_interval_s", "max_inputs", "max_input_chars")


@dataclass
class ServeConfig:
    model: str = "smollm2-135m"          # backbone: the default name, a hub id or a local directory
    registry: str = "registry"           # <registry>/<task>/<name>.safetensors, written by the Tune job
    host: str = "127.0.0.1"              # keep loopback unless a proxy with TLS sits in front
    port: int = 8000
    app_name: str = "prompt-ensemble"
    route_prefix: str = "/"
    num_replicas: int = 1
    num_cpus: float = 1.0                # logical CPUs per replica; fractional on small boxes
    torch_threads: int = 0               # 0: leave torch's default (Ray sets OMP_NUM_THREADS per actor)
    dtype: str = "float32"
    # dynamic batching (serve.batch): requests, not examples; each batch is one engine.predict call
    max_batch_size: int = 16
    batch_wait_timeout_s: float = 0.01
    max_ongoing_requests: int = 0        # per replica; 0: 2 × max_batch_size (one batch running, one filling)
    max_queued_requests: int = 64        # waiting at the proxy; beyond it requests get 503 (-1: unbounded)
    # prompt registry
    reload_interval_s: float = 2.0       # background rescan; 0 disables it (POST /v1/reload still works)
    # input limits
    max_inputs: int = 64                 # inputs per request
    max_input_chars: int = 4000          # characters per input
    voting: str = "majority"             # default when a request names none
    # engine
    shared_prefix: bool = True
    max_rows: int = 32
    max_input_length: int = 256
    max_new_tokens: int = 32
    token: str = ""                      # bearer token for /v1; empty: $PROMPT_SERVE_TOKEN, else no auth

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
        need(self.max_inputs >= 1 and self.max_input_chars >= 1, "max_inputs and max_input_chars must be >= 1")
        need(self.voting in VOTINGS, f"voting must be one of {', '.join(VOTINGS)}, not {self.voting!r}")
        need(self.num_replicas >= 1 and self.num_cpus > 0, "num_replicas must be >= 1 and num_cpus > 0")
        need(self.dtype in ("float32", "bfloat16", "float16"), f"dtype must be float32, bfloat16 or float16, not {self.dtype!r}")
        need(1 <= self.port <= 65535, f"port must be in 1..65535, not {self.port}")
        return self

    @property
    def ongoing(self) -> int:
        return self.max_ongoing_requests or 2 * self.max_batch_size

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
    if isinstance(value, str) and kind is not str:
        if kind is bool:
            return value.lower() in ("1", "true", "yes", "on")
        return kind(value)
    return value
