"""A training run's learning curve, kept on disk as it happens: JSON lines and TensorBoard events.

One record per training step (`step`, `loss`, `lr`, `seconds`), plus `dev` (a metrics dict per
prompt) at each evaluation, the same records `train()` returns in `TrainResult.history`.
"""

from __future__ import annotations

import json
from pathlib import Path


class HistoryWriter:
    """Appends each record to `<stem>.history.jsonl` and writes its scalars under `<stem>.tensorboard/`."""

    def __init__(self, stem: str | Path):
        from torch.utils.tensorboard import SummaryWriter

        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        self.path = stem.with_name(stem.name + ".history.jsonl")
        self.tensorboard_dir = stem.with_name(stem.name + ".tensorboard")
        self._file = open(self.path, "w")
        self._tb = SummaryWriter(str(self.tensorboard_dir))

    def __call__(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        step = record["step"]
        self._tb.add_scalar("train/loss", record["loss"], step)
        self._tb.add_scalar("train/lr", record["lr"], step)
        for k, metrics in enumerate(record.get("dev", [])):
            for name, value in metrics.items():
                self._tb.add_scalar(f"dev/prompt_{k}/{name}", value, step)

    def close(self) -> None:
        self._file.close()
        self._tb.close()

    def __enter__(self) -> "HistoryWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

