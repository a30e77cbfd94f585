"""The sweep job's one config dataclass: what to search, how to schedule it, where results go.

`SweepConfig.train` is what every trial trains with (its own flags: --model, --num-prompts,
--eval-every, --recipe, --optimizer, ...); the search space (space.py) sets each trial's task,
hyperparameters and seed on it with `dataclasses.replace`, so those fields have no `train` flag here.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tuning.config import TrainConfig
from tuning.fields import nested, opt, validate_nested
from tuning.prompts import INITS
from tuning.tasks import TASKS

from .space import HYPERPARAMETERS

# TrainConfig fields the sweep sets itself, so no flag of theirs: per task (--tasks), per trial (the search
# space's hyperparameters and seed), or for every trial (prompt tuning, in one process, results in --storage,
# no progress bars; on the GPU its --gpus-per-trial gives it).
SET_BY_SWEEP = ("task", *HYPERPARAMETERS, "seed", "mode", "workers", "output_dir", "progress", "device")


def _sweep_train() -> TrainConfig:
    """The sweep's default train config: TrainConfig's (the paper's §3), evaluated every 1,000 paper steps."""
    return TrainConfig(eval_every=1000, progress=False)


@dataclass
class SweepConfig:
    """`train`: the TrainConfig every trial starts from (the paper's §3 defaults, --eval-every in paper
    steps); the search space replaces its hyperparameters (seeds mode: `train`'s own values, step counts
    and batch size divided by --scale, then the pins below) and seed per trial. The other fields say what
    to search, how to schedule it and where results go."""

    tasks: str = opt("mrpc", "comma-separated; one Tune experiment per task, run one after another")
    train: TrainConfig = nested(
        _sweep_train, "what every trial trains with; the search space sets each trial's hyperparameters and seed",
        exclude=SET_BY_SWEEP, helps={
            "model": "frozen backbone shared by every trial: default name, hub id or local directory",
            "num_prompts": "K prompts packed into each trial (each is a candidate)",
            "recipe": '"paper": §3\'s Adafactor at lr 0.3 for every backbone; "auto": tuning/recipe.py',
            "eval_every": "in paper steps: divided by --scale like the other step counts",
            "train_examples": "first n training examples per trial (None: all)",
            "eval_examples": "first n dev examples per evaluation (None: all)",
        })
    search: str = opt("seeds", '"seeds": paper defaults x N seeds; "paper": sample Table 6')
    trials: int = opt(4, "trials per task (seeds mode: N seeds; paper mode: N samples)")
    top_n: int = opt(4, "prompts registered per task (best N candidates)")
    scale: int = opt(1, "divide every step count and batch size of the space (small boxes)")
    batch_sizes: str | None = opt(None, 'paper mode: override the batch-size choices, e.g. "4,8"')
    # Pins: fix one hyperparameter of the space (space.py `pinned`); None leaves it to the space.
    steps: int | None = opt(None, "seeds mode: training steps (None: paper's 30,000 / --scale)")
    batch_size: int | None = opt(None, "seeds mode: batch size (None: paper's 32 / --scale)")
    prompt_length: int | None = opt(None, "prompt length (None: paper's 100; paper mode: sampled)")
    init: str | None = opt(None, "prompt initialisation (None: paper's class_label; paper mode: sampled)")
    lr: float | None = opt(None, "seeds mode: learning rate; None: the recipe's (tuning/recipe.py)")
    warmup_steps: int | None = opt(None, "seeds mode: lr warmup steps (None: none)")
    decay_factor: float | None = opt(None, "seeds mode: multiply the lr by this every --steps-per-decay steps (None: no decay)")
    steps_per_decay: int | None = opt(None, "seeds mode: steps between lr decays (set with --decay-factor)")
    seed: int = opt(0, "seeds mode: first seed; also the search's random state")
    early_stop: bool = opt(True, "ASHA on the dev primary metric, time = training step")
    reduction_factor: int = opt(2, "ASHA reduction factor (keep 1/this of trials at each rung)")
    cpus_per_trial: float = opt(1.0, "logical CPUs each trial reserves (and its torch threads, rounded)")
    gpus_per_trial: float = opt(0.0, "GPUs each trial reserves (fractional to share one)")
    workers: int = opt(1, "Ray Train workers per trial (data-parallel, tuning/distributed.py), sharing the "
                          "trial's CPUs and GPUs; 1: the trial trains in its own process on the shared checkpoint")
    max_concurrent_trials: int = opt(0, "0: as many as the resources allow")
    max_failures: int = opt(1, "retries of a failed trial")
    shared_checkpoint: bool = opt(True, "off: pass the torch module via tune.with_parameters (a copy per trial)")
    storage: str = opt("runs/sweeps", "Tune results go to <storage>/<name>/<task>/")
    name: str = opt("sweep", "experiment folder name under --storage")
    registry: str = opt("registry", "best prompts are written to <registry>/<task>/ for serving")
    register: bool = opt(True, "register the best --top-n prompts per task (off: train and report only)")
    resume: bool = opt(False, "restore an interrupted experiment of the same --storage/--name")
    address: str | None = opt(None, "Ray cluster address; None: $RAY_ADDRESS, else start a local Ray")
    dashboard: bool = opt(True, "local Ray only: dashboard on 127.0.0.1")

    @property
    def task_list(self) -> list[str]:
        return [t.strip() for t in self.tasks.split(",") if t.strip()]

    @property
    def experiment_dir(self) -> Path:
        return Path(self.storage).expanduser().resolve() / self.name

    @property
    def registry_dir(self) -> Path:
        return Path(self.registry).expanduser().resolve()

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> "SweepConfig":
        unknown = [t for t in self.task_list if t not in TASKS]
        checks = [
            (bool(self.task_list), "--tasks needs at least one task name"),
            (not unknown, f"unknown task(s) {', '.join(unknown)}: choose from {', '.join(TASKS)}"),
            (self.search in ("seeds", "paper"), f"--search must be 'seeds' or 'paper', not {self.search!r}"),
            (self.trials >= 1 and self.top_n >= 1, "--trials and --top-n must be at least 1"),
            (self.scale >= 1, "--scale must be at least 1"),
            (all(v is None or v >= 1 for v in (self.steps, self.batch_size, self.prompt_length)),
             "--steps, --batch-size and --prompt-length must be at least 1 (omit them for the space's)"),
            ((self.decay_factor is None) == (self.steps_per_decay is None), "--decay-factor and --steps-per-decay go together"),
            (self.init is None or self.init in INITS, f"--init must be one of {', '.join(INITS)}"),
            (self.cpus_per_trial > 0 and self.gpus_per_trial >= 0, "--cpus-per-trial must be > 0, --gpus-per-trial >= 0"),
            (self.max_concurrent_trials >= 0 and self.max_failures >= 0, "--max-concurrent-trials and --max-failures must be >= 0"),
            (self.workers >= 1, "--workers must be at least 1"),
            (self.reduction_factor >= 2, "--reduction-factor must be at least 2"),
            ("/" not in self.name and self.name not in ("", ".", ".."), "--name must be a plain folder name"),
        ]
        if self.batch_sizes is not None:
            try:
                sizes = [int(s) for s in self.batch_sizes.split(",")]
                checks.append((all(s >= 1 for s in sizes), "--batch-sizes must be positive integers"))
            except ValueError:
                checks.append((False, f"--batch-sizes must be comma-separated integers, not {self.batch_sizes!r}"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        validate_nested(self)  # self.train.validate(): --num-prompts, --eval-every, --recipe, ...
        return self

    def resolved_data_dir(self) -> str:
        """Absolute, so trials find the data whatever their working directory or node environment."""
        from tuning.tasks import data_dir
        return str(data_dir(self.train.data_dir or os.environ.get("PROMPT_TUNING_DATA")))
