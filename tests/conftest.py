"""Shared fixtures: tiny random T5/Llama checkpoints on disk, the shared data, one Ray session."""

from __future__ import annotations

import os
from pathlib import Path

# Before anything imports Ray or the hub clients (see docs/ray.md).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROMPT_TUNING_DATA", str(ROOT.parent / "shared" / "data"))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(os.environ["PROMPT_TUNING_DATA"])


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory) -> dict[str, Path]:
    """Paths of a tiny random Llama and T5 checkpoint, built once per session."""
    from tiny import build_tiny

    root = tmp_path_factory.mktemp("tiny-models")
    return {kind: build_tiny(kind, root / kind) for kind in ("llama", "t5")}


@pytest.fixture(scope="session")
def tiny_llama(tiny_dirs):
    from tuning.backbone import load_backbone

    return load_backbone(str(tiny_dirs["llama"]))


@pytest.fixture(scope="session")
def tiny_t5(tiny_dirs):
    from tuning.backbone import load_backbone

    return load_backbone(str(tiny_dirs["t5"]))


@pytest.fixture(params=["llama", "t5"])
def tiny(request, tiny_dirs):
    """A fresh tiny backbone of each family (fresh: some tests train or mutate it)."""
    from tuning.backbone import load_backbone

    return load_backbone(str(tiny_dirs[request.param]))


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for the whole session (init + shutdown costs 8-14 s: share it)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             object_store_memory=512 * 1024 * 1024, ignore_reinit_error=True)
    yield ray
    try:
        from ray import serve
        serve.shutdown()
    except Exception:
        pass
    ray.shutdown()
