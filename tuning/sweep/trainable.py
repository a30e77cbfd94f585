"""The Tune trainable: a thin layer over `tuning.train.train` that reports and checkpoints each evaluation.

Each evaluation reports, per packed prompt k, `prompt_k/<metric>` (current dev metrics) and
`prompt_k/best_score` (best primary metric so far), plus `score` (best current primary metric across
the K prompts: what ASHA compares at each rung) and `best_score` (best so far across them). The
checkpoint holds the best prompt of each k as a prompt artifact, so registration never retrains.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from tuning.artifact import PromptArtifact, load_prompt, save_prompt
from tuning.config import TrainConfig
from tuning.precision import resolve_dtype
from tuning.recipe import resolve
from tuning.tasks import get_task

from .space import train_overrides

STATE_FILE = "state.json"
_backbone_cache: dict = {}  # per worker process: reused actors rebuild the backbone once


def prompt_file(k: int) -> str:
    return f"prompt_{k}.safetensors"


def _device() -> str:
    import ray
    return "cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu"


def _backbone(shared, module, device: str, dtype: torch.dtype):
    if module is not None:  # the baseline the benchmark compares against: a private copy per trial
        module.model.to(device=device, dtype=dtype)  # this trial's own unpickled copy: move it in place
        return module
    from .shared_weights import rebuild
    key = (shared.fingerprint, device, dtype)
    if key not in _backbone_cache:
        _backbone_cache.clear()
        _backbone_cache[key] = rebuild(shared, device=device, dtype=dtype)
    return _backbone_cache[key]


def _maybe_fail(path: str | None) -> None:
    """Fault injection for the retry/resume tests: fail once if this file exists (it is removed)."""
    if path and os.path.exists(path):
        os.unlink(path)
        raise RuntimeError(f"injected fault ({path})")


def train_prompts(config: dict, shared=None, module=None) -> None:
    """One trial: K packed prompts of one task with one set of hyperparameters."""
    from ray import tune

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    base = dict(config["base"])
    threads = base.pop("threads", 1)
    torch.set_num_threads(max(1, int(threads)))
    train_config = TrainConfig.from_dict({**base, **train_overrides(config), "progress": False}).validate()
    task = get_task(train_config.task)
    device = _device()
    dtype = resolve_dtype(train_config.dtype, device, train_config.mode)
    backbone = _backbone(shared, module, device, getattr(torch, dtype))
    train_config = resolve(train_config, backbone)  # the recipe's lr, so checkpoints record what ran

    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        # train() cannot start from a saved prompt and step yet, so a restarted trial retrains from
        # step 0 (same seed, same batches); a trial that had finished just reports its result again.
        with checkpoint.as_directory() as d:
            state = json.loads((Path(d) / STATE_FILE).read_text())
            if state.get("finished"):
                tune.report(state["metrics"], checkpoint=checkpoint)
                return

    def on_eval(step: int, metrics: list[dict], best_prompts: list[torch.Tensor], best: list[dict]) -> None:
        _maybe_fail(config.get("fault_file") if step >= config.get("fault_step", 0) else None)
        primary, final = task.primary_metric, step == train_config.steps
        report = {"step": step, "score": max(m[primary] for m in metrics),
                  "best_score": max(b[primary] for b in best), "finished": final}
        for k, (m, b) in enumerate(zip(metrics, best)):
            report.update({f"prompt_{k}/{name}": value for name, value in m.items()})
            report[f"prompt_{k}/best_score"] = b[primary]
            report[f"prompt_{k}/best_step"] = b["step"]
        directory = tempfile.mkdtemp(prefix="prompt-ckpt-")
        try:
            for k, prompt in enumerate(best_prompts):
                save_prompt(PromptArtifact(prompt=prompt, task=task.name, backbone=backbone.name,
                                           fingerprint=backbone.fingerprint, init=train_config.init,
                                           verbalizers=task.verbalizers, metrics=best[k],
                                           config={**train_config.to_dict(), "seed": train_config.seed + k}),
                            Path(directory) / prompt_file(k))
            (Path(directory) / STATE_FILE).write_text(json.dumps(
                {"step": step, "best": best, "finished": final, "metrics": report}))
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    from tuning.train import train  # the plain-PyTorch math; nothing below knows about Ray
    train(train_config, backbone=backbone, on_eval=on_eval)


def load_checkpoint_prompts(directory: str | Path) -> list:
    """The K prompt artifacts a trial checkpoint holds."""
    directory = Path(directory)
    return [load_prompt(p) for p in sorted(directory.glob("prompt_*.safetensors"), key=lambda p: int(p.stem.split("_")[1]))]
