"""Serve in bf16 only where it answers like fp32: a start-up check on the registry's own task examples.

bf16 runs the engine ~2× faster on CPUs with AVX512-BF16/AMX, but a prompt sitting near a decision
boundary can flip. `choose_backbone` loads the fp32 checkpoint, answers a calibration set (the first
dev examples of every task the registry serves) with both precisions and keeps bf16 only if at most
`max_disagreement` of the per-prompt answers differ; otherwise it serves fp32 and says why. The verdict
is cached under the prompt files' content, so a restarted replica does not pay for it again.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import torch

from tuning.backbone import Backbone, cache_root, load_backbone
from tuning.precision import resolve_dtype
from tuning.registry import PromptRegistry
from tuning.tasks import DatasetUnavailable

from .bank import PromptBank
from .engine import EnsembleEngine

logger = logging.getLogger(__name__)


def calibration_items(bank: PromptBank, per_task: int, data_dir=None) -> tuple[list[tuple[str, str]], list[str]]:
    """(task, input) pairs from each served task's dev split, and the tasks that had none to offer."""
    items, missing = [], []
    for name, tp in sorted(bank.tasks.items()):
        try:
            rows = tp.task.load("validation", data_dir, limit=per_task)
        except (DatasetUnavailable, OSError, ValueError) as e:
            missing.append(f"{name}: {str(e).splitlines()[0][:120]}")
            continue
        items += [(name, ex.input_text) for ex in rows]
    return items, missing


def answer_disagreement(a: EnsembleEngine, b: EnsembleEngine, items, chunk: int = 8) -> float:
    """Share of (example, prompt) answers that differ between two engines over the same prompts."""
    differ = total = 0
    for start in range(0, len(items), chunk):
        part = items[start:start + chunk]
        for pa, pb in zip(a.predict(part), b.predict(part)):
            differ += sum(x != y for x, y in zip(pa.answers, pb.answers))
            total += len(pa.answers)
    return differ / max(total, 1)


def choose_backbone(model: str, registry, dtype: str = "auto", examples: int = 64, max_disagreement: float = 0.01,
                    data_dir=None, device: str = "cpu", **engine_kwargs) -> tuple[Backbone, dict]:
    """The backbone to serve and a report of how its precision was chosen."""
    wanted = resolve_dtype(dtype, device)  # "auto": bf16 where the hardware has it (tuning/precision.py)
    fp32 = load_backbone(model, dtype=torch.float32, device=device)
    if wanted == "float32":
        return fp32, {"dtype": "float32", "requested": dtype, "guard": "not needed"}
    low = dataclasses.replace(fp32, model=copy.deepcopy(fp32.model).to(getattr(torch, wanted)))
    report = {"dtype": wanted, "requested": dtype, "guard": "off", "examples": 0, "disagreement": None}
    if not examples:
        return low, report
    key = _verdict_key(fp32, registry, wanted, examples)
    cached = _cached_verdicts().get(key)
    if cached:  # a restart with the same backbone and prompt files: the answer is known
        logger.info("bf16 guard: cached verdict %s (%s of answers differ)", cached["guard"], cached["disagreement"])
        return (low if cached["dtype"] == wanted else fp32), {**cached, "cached": True}
    start = time.perf_counter()
    bank32 = PromptBank(fp32, registry)
    items, missing = calibration_items(bank32, examples, data_dir)
    report["missing"] = missing
    if not items:
        logger.warning("bf16 guard: no calibration examples (%s); serving %s UNCHECKED against fp32",
                       "; ".join(missing) or "no tasks in the registry", wanted)
        report["guard"] = "unchecked: no examples"
        return low, report
    share = answer_disagreement(EnsembleEngine(PromptBank(low, registry), **engine_kwargs),
                                EnsembleEngine(bank32, **engine_kwargs), items)
    report.update(examples=len(items), disagreement=round(share, 4), seconds=round(time.perf_counter() - start, 1))
    if share > max_disagreement:
        logger.error("bf16 guard: %.1f%% of answers differ from fp32 on %d examples (limit %.1f%%): serving float32",
                     100 * share, len(items), 100 * max_disagreement)
        report.update(dtype="float32", guard="failed: serving float32")
        _store_verdict(key, report)
        return fp32, report
    logger.info("bf16 guard: %.2f%% of answers differ from fp32 on %d examples: serving %s", 100 * share, len(items), wanted)
    report["guard"] = "passed"
    _store_verdict(key, report)
    return low, report


# ---- verdicts, cached by content: a replica restarted on the same prompts skips the comparison ----

def _verdict_key(backbone: Backbone, registry, dtype: str, examples: int) -> str:
    digest = hashlib.sha256(f"{backbone.fingerprint}|{dtype}|{examples}".encode())
    prompts = PromptRegistry(registry)
    try:
        paths = prompts.files()
    except OSError:  # an unreadable registry: the bank will say so; the key is that of no prompts
        paths = []
    for path in paths:
        try:
            digest.update(prompts.key(path).encode() + hashlib.sha256(path.read_bytes()).digest())
        except OSError:
            pass
    return digest.hexdigest()[:32]


def _verdicts_path() -> Path:
    return cache_root() / "bf16-guard.json"


def _cached_verdicts() -> dict:
    try:
        return json.loads(_verdicts_path().read_text())
    except (OSError, ValueError):
        return {}


def _store_verdict(key: str, report: dict) -> None:
    verdicts = {**_cached_verdicts(), key: report}
    path = _verdicts_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(verdicts))
        os.replace(tmp, path)
    except OSError as e:  # a read-only cache only costs the next start-up the comparison
        logger.warning("bf16 guard: could not cache the verdict (%s)", e)
