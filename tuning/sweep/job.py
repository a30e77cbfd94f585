"""The sweep job: one Tune experiment per task over one shared frozen checkpoint, then registration.

Layout: `<storage>/<name>/<task>/<trial>/` (Tune's results, checkpoints, TensorBoard events),
`<storage>/<name>/report.html` (the static dashboard), `<registry>/<task>/*.safetensors` (served).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path


from tuning import ray_env
from tuning.backbone import load_backbone
from tuning.config import TrainConfig
from tuning.tasks import get_task

from . import space
from .config import SweepConfig
from .registry import candidates_from_results, register, select
from .trainable import FaultHooks, train_prompts, train_prompts_on_workers


@dataclass
class SweepOutcome:
    experiment_dir: Path
    registered: dict[str, list[Path]] = field(default_factory=dict)
    results: dict = field(default_factory=dict)        # task -> ResultGrid
    report: Path | None = None


def base_train_config(config: SweepConfig, task: str) -> TrainConfig:
    """The sweep's train config for `task`'s trials; each trial replaces its hyperparameters and seed
    (space.py `overrides`)."""
    return replace(config.train, task=task, data_dir=config.resolved_data_dir(), eval_every=space.eval_every(config),
                   progress=False)


def trial_threads(config: SweepConfig) -> int:
    """Torch threads of each trial: its logical CPUs, rounded (at least 1)."""
    return max(1, round(config.cpus_per_trial))


def _check_data(config: SweepConfig) -> None:
    """Fail in the driver, with the loader's one-line message, before any trial starts."""
    for task in config.task_list:
        t = get_task(task)
        t.load("train", config.resolved_data_dir(), limit=1)
        t.load("validation", config.resolved_data_dir(), limit=1)


def _tuner(config: SweepConfig, task: str, trainable):
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    path = config.experiment_dir / task
    if config.resume and tune.Tuner.can_restore(str(path)):
        print(f"resuming {path}")
        return tune.Tuner.restore(str(path), trainable=trainable, resume_unfinished=True, resume_errored=True)
    every = space.eval_every(config)
    scheduler = (ASHAScheduler(time_attr="step", max_t=space.max_steps(config), grace_period=every,
                               reduction_factor=config.reduction_factor)
                 if config.early_stop else FIFOScheduler())
    # Each trial's config: its hyperparameters and seed, and the train config they replace fields of
    # (kept in the trial's params.json, so the experiment records what every trial started from).
    param_space = {**space.param_space(config), "train": base_train_config(config, task).to_dict()}
    return tune.Tuner(
        trainable,
        param_space=param_space,
        tune_config=tune.TuneConfig(
            metric="score", mode="max", scheduler=scheduler, num_samples=space.num_samples(config),
            search_alg=BasicVariantGenerator(random_state=config.seed),
            max_concurrent_trials=config.max_concurrent_trials or None, reuse_actors=True),
        run_config=tune.RunConfig(
            name=task, storage_path=str(config.experiment_dir),
            failure_config=tune.FailureConfig(max_failures=config.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1, checkpoint_score_attribute="best_score",
                                                    checkpoint_score_order="max"),
            verbose=1))


def init_ray(config: SweepConfig):
    """Connect to `--address` / $RAY_ADDRESS, else start a local Ray with its dashboard on loopback."""
    ray_env.configure()  # before Ray is imported
    import ray

    if ray.is_initialized():
        return None
    address = config.address or os.environ.get("RAY_ADDRESS")
    if address:
        context = ray.init(address=address)
    else:
        # "local": a new instance, never a stale `ray start` cluster recorded in /tmp/ray (that hangs).
        context = ray.init(address="local", include_dashboard=config.dashboard, dashboard_host="127.0.0.1")
    url = getattr(context, "dashboard_url", None)
    if url:
        print(f"Ray dashboard: http://{url}")
    return context


DRIVER_CPU = 0.01  # what a --workers trial's driver reserves: it only waits on its group (Tune refuses 0)


def _trainable(config: SweepConfig, test_hooks: dict | None):
    """Each trial: `train_prompts` in the trial's process on the shared frozen checkpoint, or with
    --workers W a driver that holds almost nothing and starts a Ray Train group of W workers sharing the
    trial's CPUs and GPUs. What a trial runs with but is no hyperparameter is passed beside its config
    (tune.with_parameters), not in it."""
    from ray import tune

    if config.workers > 1:
        trainable = tune.with_parameters(train_prompts_on_workers, experiment_dir=str(config.experiment_dir),
                                         workers=config.workers,
                                         cpus_per_worker=config.cpus_per_trial / config.workers,
                                         gpus_per_worker=config.gpus_per_trial / config.workers)
        return tune.with_resources(trainable, {"cpu": DRIVER_CPU})
    extra = {"threads": trial_threads(config), **({"hooks": FaultHooks(**test_hooks)} if test_hooks else {})}
    backbone = load_backbone(config.train.model)
    if config.shared_checkpoint:
        from .shared_weights import share
        trainable = tune.with_parameters(train_prompts, shared=share(backbone), **extra)
    else:
        trainable = tune.with_parameters(train_prompts, module=backbone, **extra)
    return tune.with_resources(trainable, {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial})


def run_sweep(config: SweepConfig, test_hooks: dict | None = None) -> SweepOutcome:
    """Train, register and report every task of `config` (Ray must be initialised, or is started here).

    `test_hooks`: fault injection for the retry/resume tests, the fields of `trainable.FaultHooks`
    (`{"fault_file": ..., "fault_step": ..., "fault_kill": ...}`)."""
    from .report import write_report

    config.validate()
    if uneven := [b for b in space.batch_sizes(config) if b % config.workers]:
        raise ValueError(f"--workers {config.workers} must divide every trial's batch size, not {uneven}: "
                         "set --batch-size (or --batch-sizes) to multiples of it")
    _check_data(config)
    init_ray(config)
    config.experiment_dir.mkdir(parents=True, exist_ok=True)
    trainable = _trainable(config, test_hooks)
    outcome = SweepOutcome(config.experiment_dir)
    for task in config.task_list:
        grid = _tuner(config, task, trainable).fit()
        outcome.results[task] = grid
        errors = [r.error for r in grid if r.error is not None]
        if errors:
            print(f"{task}: {len(errors)} trial(s) failed; first error: {str(errors[0]).splitlines()[0]}")
        if config.register:
            chosen = select(candidates_from_results(grid), config.top_n)
            if chosen:
                outcome.registered[task] = register(task, chosen, config.registry_dir, config.experiment_dir / task)
                for c, p in zip(chosen, outcome.registered[task]):
                    print(f"{task}: registered {p} (dev {get_task(task).primary_metric}={c.score:.4f})")
            else:
                print(f"{task}: no trial left a checkpoint; registry left unchanged")
    outcome.report = write_report(config.experiment_dir)
    print(f"report: {outcome.report}")
    print(f"TensorBoard: tensorboard --logdir {config.experiment_dir} --host 127.0.0.1")
    return outcome
