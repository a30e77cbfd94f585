"""The sweep job's one config dataclass: what to search, how to schedule it, where results go."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tuning.backbone import DEFAULT_MODEL
from tuning.prompts import INITS
from tuning.tasks import TASKS


@dataclass
class SweepConfig:
    tasks: str = "mrpc"                  # comma-separated; one Tune experiment per task, run one after another
    model: str = DEFAULT_MODEL
    data_dir: str | None = None
    search: str = "seeds"                # "seeds": paper defaults x N seeds; "paper": sample Table 6
    trials: int = 4                      # trials per task (seeds mode: N seeds; paper mode: N samples)
    top_n: int = 4                       # prompts registered per task (best N candidates)
    num_prompts: int = 1                 # K prompts packed into each trial (each is a candidate)
    scale: int = 1                       # divide every step count and batch size of the space (small boxes)
    batch_sizes: str | None = None       # override the batch-size choices, e.g. "4,8"
    # Seeds mode runs the paper's defaults (§3); these override them (None: paper value / scale).
    steps: int | None = None
    batch_size: int | None = None
    prompt_length: int | None = None
    init: str | None = None
    lr: float | None = None              # None: the recipe's (tuning/recipe.py)
    recipe: str = "auto"                 # "paper": §3's Adafactor at lr 0.3 for every backbone
    dtype: str = "auto"                  # "auto": bf16 prompts on bf16 hardware (tuning/precision.py)
    eval_every: int = 1000               # in paper steps: divided by --scale like the other step counts
    train_examples: int | None = None
    eval_examples: int | None = None
    eval_batch_size: int = 32
    max_input_length: int = 256
    seed: int = 0
    early_stop: bool = True              # ASHA on the dev primary metric, time = training step
    reduction_factor: int = 2
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent_trials: int = 0       # 0: as many as the resources allow
    max_failures: int = 1                # retries of a failed trial
    shared_checkpoint: bool = True       # False: pass the torch module via tune.with_parameters (a copy per trial)
    storage: str = "runs/sweeps"
    name: str = "sweep"
    registry: str = "registry"
    register: bool = True
    resume: bool = False
    address: str | None = None           # Ray cluster address; None: $RAY_ADDRESS, else start a local Ray
    dashboard: bool = True               # local Ray only: dashboard on 127.0.0.1

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
            (self.trials >= 1 and self.top_n >= 1 and self.num_prompts >= 1,
             "--trials, --top-n and --num-prompts must be at least 1"),
            (self.scale >= 1, "--scale must be at least 1"),
            (self.init is None or self.init in INITS, f"--init must be one of {', '.join(INITS)}"),
            (self.cpus_per_trial > 0 and self.gpus_per_trial >= 0, "--cpus-per-trial must be > 0, --gpus-per-trial >= 0"),
            (self.max_concurrent_trials >= 0 and self.max_failures >= 0, "--max-concurrent-trials and --max-failures must be >= 0"),
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
        return self

    def resolved_data_dir(self) -> str:
        """Absolute, so trials find the data whatever their working directory or node environment."""
        from tuning.tasks import data_dir
        return str(data_dir(self.data_dir or os.environ.get("PROMPT_TUNING_DATA")))
