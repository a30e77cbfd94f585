"""Pieces every job shares: a job's train config -> one run's TrainConfig, cached dataset loads, availability checks."""

from __future__ import annotations

import functools
from dataclasses import replace

from tuning.config import TrainConfig
from tuning.tasks import DatasetUnavailable, get_task
from tuning.train import TrainResult, train


def train_config(job, task: str, mode: str = "prompt", seed: int = 0, **overrides) -> TrainConfig:
    """One training run of `job`: its `train` config with the run's task, mode and seed, evaluated every
    --eval-every steps (None: once, at the last step) on --select-examples (None: --eval-examples) dev
    examples. Model tuning takes the job's --model-lr (paper lrs: 0.3 prompt, 1e-3 model, §3)."""
    run = dict(task=task, mode=mode, seed=seed, eval_every=job.eval_every or job.train.steps,
               eval_examples=job.select_examples or job.eval_examples)
    if mode != "prompt":
        run["lr"] = getattr(job, "model_lr", 1e-3)
    return replace(job.train, **{**run, **overrides}).validate()


def describe_lr(job) -> str:
    """The prompt learning rate as a table note shows it."""
    return f"lr {job.train.lr}" if job.train.lr is not None else f"{job.train.recipe} recipe lr"


@functools.lru_cache(maxsize=32)
def _load(task: str, split: str, data_dir, limit) -> tuple:
    return tuple(get_task(task).load(split, data_dir, limit=limit))


def examples(task: str, split: str, data_dir=None, limit: int | None = None) -> list:
    """A split's first `limit` examples, parsed once per process (SQuAD's train JSON takes seconds)."""
    return list(_load(task, split, data_dir, limit))


def unavailable(task: str, split: str, data_dir, limit: int | None = None) -> str | None:
    """None when the split can be read, else DatasetUnavailable's one-line message."""
    try:
        examples(task, split, data_dir, limit)
    except DatasetUnavailable as e:
        return str(e)
    return None


def run_training(spec: dict) -> tuple[TrainConfig, TrainResult]:
    """The spec's training run, on cached examples; Ray tasks run without progress bars."""
    config = TrainConfig.from_dict({**spec["train"], "progress": spec.get("progress", spec["train"]["progress"])})
    result = train(config, train_examples=examples(config.task, "train", config.data_dir, config.train_examples),
                   dev_examples=examples(config.task, "validation", config.data_dir, config.eval_examples))
    return config, result


def skip(message: str) -> None:
    print(f"skipped: {message}", flush=True)
