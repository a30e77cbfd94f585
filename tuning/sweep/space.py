"""Search spaces: the paper's Table 6 (Appendix A) and the fixed paper defaults over N seeds (§3)."""

from __future__ import annotations


from tuning.prompts import INITS

from .config import SweepConfig

# Table 6 (values as printed in the paper; "off" = not used).
PAPER_LR = (1e-3, 0.5)                          # log-uniform
PAPER_BATCH_SIZES = (32, 64, 126, 256, 512)
PAPER_STEPS = (10000, 20000, 30000)
PAPER_WARMUP = ("off", 2000, 3000)
PAPER_DECAY_FACTOR = ("off", 0.1, 0.5)
PAPER_STEPS_PER_DECAY = ("off", 4000, 6000, 8000)
PAPER_SCALE_PARAMETER = (True, False)
PROMPT_LENGTHS = (1, 5, 20, 100, 150)           # §3.2, Figure 3(a)
# §3 defaults used for every seed in "seeds" mode; lr and scaling come from the run's recipe unless
# --recipe paper (tuning/recipe.py: the paper's values for T5, embedding-scaled for decoder-only LMs).
PAPER_DEFAULTS = {"lr": 0.3, "batch_size": 32, "steps": 30000, "warmup_steps": "off", "decay_factor": "off",
                  "steps_per_decay": "off", "scale_parameter": False, "prompt_length": 100, "init": "class_label"}
HYPERPARAMETERS = tuple(PAPER_DEFAULTS)         # the keys each trial's config carries


def scaled(value, scale: int):
    """A step count or batch size divided by --scale (never below 1); "off" stays off."""
    return value if value == "off" else max(1, int(value) // scale)


def batch_size_choices(config: SweepConfig) -> list[int]:
    if config.batch_sizes:
        return [int(s) for s in config.batch_sizes.split(",")]
    return sorted({scaled(b, config.scale) for b in PAPER_BATCH_SIZES})


def max_steps(config: SweepConfig) -> int:
    if config.search == "seeds":
        return config.steps or scaled(PAPER_DEFAULTS["steps"], config.scale)
    return max(scaled(s, config.scale) for s in PAPER_STEPS)


def eval_every(config: SweepConfig) -> int:
    return scaled(config.eval_every, config.scale)


def param_space(config: SweepConfig) -> dict:
    """The hyperparameters of each trial; seeds of packed prompts are seed, seed+1, ..., seed+K-1."""
    from ray import tune  # here, so that the report (which reads HYPERPARAMETERS) runs without Ray

    k, s = config.num_prompts, config.scale
    if config.search == "seeds":
        fixed = {**PAPER_DEFAULTS, "lr": config.lr, "scale_parameter": None, "steps": max_steps(config),
                 "batch_size": config.batch_size or scaled(PAPER_DEFAULTS["batch_size"], s),
                 "prompt_length": config.prompt_length or PAPER_DEFAULTS["prompt_length"],
                 "init": config.init or PAPER_DEFAULTS["init"]}
        return {**fixed, "seed": tune.grid_search([config.seed + i * k for i in range(config.trials)])}
    return {
        "lr": tune.loguniform(*PAPER_LR),
        "batch_size": tune.choice(batch_size_choices(config)),
        "steps": tune.choice([scaled(v, s) for v in PAPER_STEPS]),
        "warmup_steps": tune.choice([scaled(v, s) for v in PAPER_WARMUP]),
        "decay_factor": tune.choice(list(PAPER_DECAY_FACTOR)),
        "steps_per_decay": tune.choice([scaled(v, s) for v in PAPER_STEPS_PER_DECAY]),
        "scale_parameter": tune.choice(list(PAPER_SCALE_PARAMETER)),
        "prompt_length": tune.choice(list(PROMPT_LENGTHS)) if config.prompt_length is None else config.prompt_length,
        "init": tune.choice(list(INITS)) if config.init is None else config.init,
        "seed": tune.randint(0, 1_000_000),           # reproducible via the search algorithm's random_state
    }


def num_samples(config: SweepConfig) -> int:
    return 1 if config.search == "seeds" else config.trials


def train_overrides(hp: dict) -> dict:
    """TrainConfig fields from one trial's hyperparameters ("off" -> disabled; decay needs both halves)."""
    decay = hp["decay_factor"] != "off" and hp["steps_per_decay"] != "off"
    return {"lr": None if hp["lr"] is None else float(hp["lr"]), "batch_size": int(hp["batch_size"]), "steps": int(hp["steps"]),
            "warmup_steps": 0 if hp["warmup_steps"] == "off" else int(hp["warmup_steps"]),
            "decay_factor": float(hp["decay_factor"]) if decay else None,
            "steps_per_decay": int(hp["steps_per_decay"]) if decay else None,
            "scale_parameter": None if hp["scale_parameter"] is None else bool(hp["scale_parameter"]), "prompt_length": int(hp["prompt_length"]),
            "init": hp["init"], "seed": int(hp["seed"])}
