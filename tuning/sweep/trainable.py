"""The Tune trainable: a thin layer over `tuning.train.Trainer` that reports and checkpoints each evaluation.

Each evaluation reports `tuning.checkpoint.evaluation_report` (per packed prompt, and `score`, what
ASHA compares at each rung). The checkpoint holds the best prompt of each k as a prompt artifact, so registration never retrains,
and the trainer's whole state, so a retried or resumed trial continues from its last evaluation.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from tuning.checkpoint import evaluation_report, read_state, read_trainer_state, write_checkpoint
from tuning.config import TrainConfig
from tuning.precision import resolve_dtype
from tuning.tasks import get_task

from . import space

_backbone_cache: dict = {}  # per worker process: reused actors rebuild the backbone once


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


@dataclass(frozen=True)
class FaultHooks:
    """Fault injection for the retry/resume tests (`run_sweep(config, test_hooks={...})`): at its first
    evaluation at or after `fault_step`, a trial fails once if `fault_file` exists (the file is removed),
    by an exception or, with `fault_kill`, by SIGKILL of the trial's process."""

    fault_file: str | None = None
    fault_step: int = 0
    fault_kill: bool = False

    def maybe_fail(self, step: int) -> None:
        if not (self.fault_file and step >= self.fault_step):
            return
        try:
            os.unlink(self.fault_file)  # atomic claim: of trials racing here, exactly one fails
        except FileNotFoundError:
            return
        if self.fault_kill:
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"injected fault ({self.fault_file})")


def trial_train_config(config: dict) -> TrainConfig:
    """A trial's TrainConfig: the sweep's (under "train") with the trial's hyperparameters and seed."""
    return replace(TrainConfig.from_dict(config["train"]), **space.overrides(config)).validate()


def train_prompts(config: dict, shared=None, module=None, threads: int = 1, hooks: FaultHooks | None = None) -> None:
    """One trial: K packed prompts of one task with one set of hyperparameters.

    `config` is the trial's resolved search space: its hyperparameters and seed (space.py) and, under
    "train", the sweep's train config for this task; `shared`/`module` (the frozen backbone), `threads`
    and `hooks` come through `tune.with_parameters`.
    """
    from ray import tune

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    torch.set_num_threads(max(1, int(threads)))
    train_config = trial_train_config(config)
    task = get_task(train_config.task)
    device = _device()
    dtype = resolve_dtype(train_config.dtype, device, train_config.mode)
    backbone = _backbone(shared, module, device, getattr(torch, dtype))

    from tuning.train import Trainer  # the plain-PyTorch math; nothing below knows about Ray
    trainer = Trainer(train_config, backbone=backbone)
    train_config = trainer.config  # with the recipe's lr, so checkpoints record what ran
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:  # a retried or resumed trial: continue from its last evaluation
        with checkpoint.as_directory() as d:
            state = read_state(d)
            if state.get("finished"):
                tune.report(state["metrics"], checkpoint=checkpoint)
                return
            trainer.load_state_dict(read_trainer_state(d))

    def on_eval(step: int, metrics: list[dict], best_prompts: list[torch.Tensor], best: list[dict]) -> None:
        if hooks is not None:
            hooks.maybe_fail(step)
        final = step == train_config.steps
        report = evaluation_report(step, metrics, best, task.primary_metric, final)
        directory = tempfile.mkdtemp(prefix="prompt-ckpt-")
        try:
            write_checkpoint(directory, trainer, report, final)
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))
        finally:
            shutil.rmtree(directory, ignore_errors=True)

    trainer.fit(on_eval=on_eval)


def train_prompts_on_workers(config: dict, experiment_dir: str, workers: int = 2, cpus_per_worker: float = 1.0,
                             gpus_per_worker: float = 0.0) -> None:
    """One trial trained data-parallel by a Ray Train group of `workers` (the sweep's --workers).

    This driver holds almost no resources (job.DRIVER_CPU); the group's workers hold the trial's. Each
    evaluation reaches Tune through TuneReportCallback, with the group's checkpoint path (registration
    reads prompts from it). The group is stored as `<experiment>/<task>/ray-train/<trial id>`, so a
    retried or resumed trial's group continues from its last checkpoint.
    """
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from tuning.distributed import train_on_workers

    train_config = replace(trial_train_config(config), workers=workers).validate()
    train_on_workers(train_config, cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
                     storage=Path(experiment_dir) / train_config.task / "ray-train",
                     name=tune.get_context().get_trial_id(), callbacks=(TuneReportCallback(),))
