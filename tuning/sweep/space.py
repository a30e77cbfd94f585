"""Search spaces over `TrainConfig` fields: the paper's Table 6 (Appendix A) and the fixed paper
defaults over N seeds (§3).

A space maps TrainConfig field names to a value or a Tune domain. Each trial trains
`dataclasses.replace(<the sweep's train config>, **overrides(<its resolved space>))`; no other form of
a hyperparameter exists between the command line and the optimiser. Adding a hyperparameter to the
search is one entry in `TABLE_6` (plus `SCALED` when it counts steps): the paper space samples it,
seeds mode keeps the sweep's train config value, the sweep's `train` flags leave it out (the space sets
it per trial), the trial's `overrides` pass it on and the report plots it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tuning.prompts import INITS

if TYPE_CHECKING:
    from .config import SweepConfig

# Table 6, keyed by TrainConfig field. The table's "off" is written as the field's own off value:
# no warmup (0 steps), no lr decay (None; the decay needs both halves, see `overrides`).
TABLE_6 = {
    "lr": (1e-3, 0.5),                           # log-uniform between these (LOG_UNIFORM)
    "batch_size": (32, 64, 126, 256, 512),
    "steps": (10000, 20000, 30000),
    "warmup_steps": (0, 2000, 3000),
    "decay_factor": (None, 0.1, 0.5),
    "steps_per_decay": (None, 4000, 6000, 8000),
    "scale_parameter": (True, False),
    "prompt_length": (1, 5, 20, 100, 150),       # §3.2, Figure 3(a)
    "init": INITS,
}
LOG_UNIFORM = ("lr",)                                               # the others: one of their values
SCALED = ("batch_size", "steps", "warmup_steps", "steps_per_decay")  # step counts and batch sizes: / --scale
HYPERPARAMETERS = tuple(TABLE_6)  # the TrainConfig fields a trial's space sets (with "seed"); the report plots them


def scaled(value, scale: int):
    """A step count or batch size divided by --scale (never below 1); off (0 or None) stays off."""
    return value if not value else max(1, int(value) // scale)


def batch_size_choices(config: SweepConfig) -> list[int]:
    if config.batch_sizes:
        return [int(s) for s in config.batch_sizes.split(",")]
    return sorted({scaled(b, config.scale) for b in TABLE_6["batch_size"]})


def pinned(config: SweepConfig) -> dict:
    """The hyperparameters the command line fixes: --prompt-length and --init in both modes; --steps,
    --batch-size, --lr and the lr schedule (--warmup-steps, --decay-factor with --steps-per-decay) in seeds
    mode (None: left to the space)."""
    pins = {"prompt_length": config.prompt_length, "init": config.init}
    if config.search == "seeds":
        pins.update(steps=config.steps, batch_size=config.batch_size, lr=config.lr, warmup_steps=config.warmup_steps,
                    decay_factor=config.decay_factor, steps_per_decay=config.steps_per_decay)
    return {name: value for name, value in pins.items() if value is not None}


def seeds_values(config: SweepConfig) -> dict:
    """Seeds mode's hyperparameters: the sweep's train config (TrainConfig's defaults are §3's: batch 32,
    30k steps, length 100, class-label init, no warmup or decay; lr and Adafactor scaling None, so the
    run's recipe decides, see tuning/recipe.py), step counts and batch size divided by --scale, then the pins."""
    values = {name: getattr(config.train, name) for name in HYPERPARAMETERS}
    values.update({name: scaled(values[name], config.scale) for name in SCALED})
    return {**values, **pinned(config)}


def batch_sizes(config: SweepConfig) -> list[int]:
    """Every batch size a trial can draw."""
    return [seeds_values(config)["batch_size"]] if config.search == "seeds" else batch_size_choices(config)


def max_steps(config: SweepConfig) -> int:
    if config.search == "seeds":
        return seeds_values(config)["steps"]
    return max(scaled(s, config.scale) for s in TABLE_6["steps"])


def eval_every(config: SweepConfig) -> int:
    """--eval-every is in paper steps: divided by --scale like the other step counts."""
    return scaled(config.train.eval_every, config.scale)


def param_space(config: SweepConfig) -> dict:
    """TrainConfig field -> value or Tune domain, per trial; seeds of packed prompts are seed, seed+1, ..., seed+K-1."""
    from ray import tune  # here, so that the report (which reads HYPERPARAMETERS) runs without Ray

    k = config.train.num_prompts
    if config.search == "seeds":
        return {**seeds_values(config), "seed": tune.grid_search([config.seed + i * k for i in range(config.trials)])}
    space = {}
    for name, values in TABLE_6.items():  # in this order: the search's random state draws them in turn
        if name in LOG_UNIFORM:
            space[name] = tune.loguniform(*values)
        elif name == "batch_size":
            space[name] = tune.choice(batch_size_choices(config))
        else:
            space[name] = tune.choice([scaled(v, config.scale) if name in SCALED else v for v in values])
    return {**space, **pinned(config), "seed": tune.randint(0, 1_000_000)}  # reproducible: the search's random_state


def num_samples(config: SweepConfig) -> int:
    return 1 if config.search == "seeds" else config.trials


def overrides(trial: dict) -> dict:
    """The TrainConfig fields one trial's resolved space sets (its hyperparameters and seed), for
    `dataclasses.replace`. Table 6 samples the lr decay's two halves independently: the decay is on only
    when both are (TrainConfig takes both or neither)."""
    out = {name: trial[name] for name in (*HYPERPARAMETERS, "seed") if name in trial}
    if out.get("decay_factor") is None or out.get("steps_per_decay") is None:
        out.update(decay_factor=None, steps_per_decay=None)
    return out
