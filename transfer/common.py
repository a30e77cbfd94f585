"""Pieces every job shares: a job budget -> TrainConfig, cached dataset loads, availability checks."""

from __future__ import annotations

import functools

from tuning.config import TrainConfig
from tuning.tasks import DatasetUnavailable, get_task
from tuning.train import TrainResult, train


def train_config(job, task: str, mode: str = "prompt", seed: int = 0, **overrides) -> TrainConfig:
    """The job's budget as one training run's config (paper lrs: 0.3 prompt, 1e-3 model, §3)."""
    lr = job.prompt_lr if mode == "prompt" else getattr(job, "model_lr", 1e-3)
    values = dict(task=task, model=job.model, data_dir=job.data_dir, mode=mode, prompt_length=job.prompt_length,
                  init=job.init, recipe=job.recipe, lr=lr, dtype=job.dtype, steps=job.steps, batch_size=job.batch_size, grad_accum=job.grad_accum,
                  eval_every=job.eval_every or job.steps, train_examples=job.train_examples,
                  eval_examples=job.select_examples or job.eval_examples, eval_batch_size=job.eval_batch_size,
                  max_input_length=job.max_input_length, seed=seed, progress=job.progress)
    values.update(overrides)
    return TrainConfig(**values).validate()


def describe_lr(job) -> str:
    """The prompt learning rate as a table note shows it."""
    return f"lr {job.prompt_lr}" if job.prompt_lr is not None else f"{job.recipe} recipe lr"


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
