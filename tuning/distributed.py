"""Data-parallel training on Ray Train: W workers run `Trainer.step()` on shares of each global batch.

Ray Train's `TorchTrainer` starts the workers and their process group (gloo on CPU, NCCL on GPUs);
the `Trainer` sums gradients across it (tuning/train.py), so W workers take the step one process would
take on the same global batch. Every evaluation goes through `ray.train.report`, with rank 0's
checkpoint (tuning/checkpoint.py); a failed worker restarts the group from the last checkpoint.
This is the path for a backbone that outgrows one process; the math below it knows nothing of Ray.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from . import ray_env
from .artifact import PromptArtifact
from .checkpoint import evaluation_report, load_checkpoint_prompts, read_state, read_trainer_state, write_checkpoint
from .config import TrainConfig


@dataclass
class DistributedResult:
    artifacts: list[PromptArtifact]   # the best prompt of each packed run (empty for model tuning)
    best_metrics: list[dict]
    history: list[dict]
    trainer_state: dict               # the last checkpoint's `Trainer.state_dict()` (model tuning: its weights)


def _worker_loop(loop_config: dict) -> None:
    import ray.train

    from .train import Trainer, backbone_for

    torch.set_num_threads(loop_config["threads"])
    config = TrainConfig.from_dict(loop_config["train"])
    trainer = Trainer(config, backbone=backbone_for(config, ray.train.torch.get_device()))
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:  # a restarted group continues from the last evaluation
        with checkpoint.as_directory() as d:
            trainer.load_state_dict(read_trainer_state(d))
    rank = ray.train.get_context().get_world_rank()

    def on_eval(step: int, metrics: list[dict], best_prompts, best: list[dict]) -> None:
        final = step == trainer.config.steps
        report = evaluation_report(step, metrics, best, trainer.task.primary_metric, final)
        if rank != 0:  # every worker reports (a collective); rank 0's copy of the state is the checkpoint
            ray.train.report(report)
            return
        print(f"step {step}: score={report['score']:.4f} best_score={report['best_score']:.4f}", flush=True)
        with tempfile.TemporaryDirectory(prefix="prompt-ckpt-") as d:
            write_checkpoint(d, trainer, report, final)
            ray.train.report(report, checkpoint=ray.train.Checkpoint.from_directory(d))

    trainer.fit(on_eval=on_eval)


def train_on_workers(config: TrainConfig, cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                     max_failures: int = 0, storage: str | Path | None = None,
                     name: str | None = None, callbacks: tuple = ()) -> DistributedResult:
    """Train `config` with `config.workers` Ray Train workers (on GPUs when `gpus_per_worker` > 0); Ray is started locally unless it runs already
    (a Tune trial, $RAY_ADDRESS). A run started again with the same `storage` and `name` resumes from its
    last checkpoint (what a retried sweep trial does); `callbacks` are Ray Train's (the sweep's TuneReportCallback)."""
    config.validate()
    ray_env.configure()  # before Ray is imported
    import ray
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    if not ray.is_initialized():
        ray.init(address=os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False)
    storage = Path(storage or Path(config.output_dir) / config.task / "ray-train").expanduser().resolve()
    loop_config = {"train": dataclasses.replace(config, progress=False).to_dict(),
                   "threads": max(1, round(cpus_per_worker))}
    use_gpu = gpus_per_worker > 0
    resources = {"CPU": cpus_per_worker, **({"GPU": gpus_per_worker} if use_gpu else {})}
    trainer = TorchTrainer(
        _worker_loop, train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=config.workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=RunConfig(name=name or f"{config.task}-{config.mode}-s{config.seed}", storage_path=str(storage),
                             failure_config=FailureConfig(max_failures=max_failures), callbacks=list(callbacks)))
    result = trainer.fit()
    with result.checkpoint.as_directory() as d:
        state = read_trainer_state(d)
        artifacts = load_checkpoint_prompts(d) if config.mode == "prompt" else []
        best = read_state(d)["best"]
    return DistributedResult(artifacts, best, state["history"], state)
