"""Remembered micro-batch sizes: measured once per (backbone, dtype, device, threads), reused after."""

from __future__ import annotations

import json
import os
import tempfile

import torch

from tuning.backbone import Backbone, cache_root


def _key(backbone: Backbone) -> str:
    return f"{backbone.fingerprint}/{backbone.dtype}/{backbone.device}/{torch.get_num_threads()}threads"


def _path():
    return cache_root() / "calibration.json"


def lookup(backbone: Backbone) -> int | None:
    try:
        return json.loads(_path().read_text()).get(_key(backbone))
    except (OSError, ValueError):
        return None


def store(backbone: Backbone, max_rows: int) -> None:
    path = _path()
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        table = {}
    table[_key(backbone)] = max_rows
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(table, f, indent=1)
    os.replace(tmp, path)
