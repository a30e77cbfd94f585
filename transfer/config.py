"""One config dataclass per experiment job. Defaults are a small-scale CPU budget; the paper's scale
(T5 XXL, 30k steps at batch 32, §3) is reached by raising the budget fields, not by changing code.

Every job holds `train: TrainConfig`, its training runs' config before the job sets each run's task,
mode and seed (`transfer.common.train_config`); its fields are the job's budget flags (--model,
--steps, --batch-size, --prompt-length, --init, --prompt-lr for `train.lr`, ...), with the job's
defaults (`BUDGET`, and per job where it differs).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ensemble.vote import VOTINGS
from tuning.config import TrainConfig
from tuning.fields import nested, opt, validate_nested

MRQA_OOD = ("textbookqa", "bioasq", "race", "relation_extraction", "duorc", "drop")  # Table 1 row order
PARAPHRASE_DIRECTIONS = ("qqp:mrpc", "mrpc:qqp")                                    # Table 2 (train:eval)

# The jobs' default budget: TrainConfig's other defaults are the paper's (§3).
BUDGET = dict(steps=100, batch_size=8, train_examples=2000, prompt_length=20, eval_batch_size=16)
# TrainConfig fields a job sets per run, so no flag of theirs: from --tasks/--modes/--seeds, from the job's own
# --eval-every/--eval-examples/--select-examples (`train_config`); no data-parallel workers or output dir.
SET_PER_RUN = ("task", "mode", "seed", "num_prompts", "eval_every", "eval_examples", "workers", "output_dir")
# Where a job reads a TrainConfig field differently from `python -m tuning train`.
BUDGET_HELP = {
    "model": "backbone: the default name, a Hugging Face id or a local directory",
    "lr": "prompt learning rate; None: the recipe's (paper: 0.3)",
    "steps": "training steps per run (paper: 30,000, §3)",
    "batch_size": "effective training batch (paper: 32, §3)",
    "train_examples": "first n of each training set; None (0 on the command line): all",
    "prompt_length": "soft prompt tokens (paper: 100, §3.2)",
    "recipe": 'optimiser defaults (tuning/recipe.py); "paper": §3\'s Adafactor at lr 0.3',
    "eval_batch_size": "evaluation batch size",
    "progress": "show progress bars",
}


def budget(set_per_run=SET_PER_RUN, helps: dict | None = None, **defaults):
    """A job's `train` field: TrainConfig with `BUDGET` and `defaults`; `--prompt-lr` sets its `lr`."""
    values = {**BUDGET, **defaults}
    return nested(lambda: TrainConfig(**values), "training budget and settings of every run (the job sets each "
                  "run's task, mode and seed)", exclude=set_per_run, renamed={"lr": "prompt_lr"},
                  helps={**BUDGET_HELP, **(helps or {})})


@dataclass
class JobConfig:
    """What every job shares: `train`, its runs' TrainConfig with the job's budget (`budget`; a subclass
    redefines the field where its defaults differ); the seeds, evaluation sizes and Ray placement."""

    train: TrainConfig = budget()
    results_dir: str | None = opt(None, "where tables and figures go; None: results/<job>/")
    seeds: tuple[int, ...] = opt((0, 1, 2), "paper: mean ± std over 3 runs (Tables 1 and 2)")
    eval_every: int | None = opt(None, "steps between checkpoint-selection evaluations; None: once, at the last step")
    eval_examples: int | None = opt(200, "per evaluation set (in-domain dev and every transfer set); 0: all")
    select_examples: int | None = opt(None, "dev examples for checkpoint selection during training (None: eval_examples)")
    ray: bool = opt(False, "run the trainings as Ray tasks")
    address: str | None = opt(None, "Ray address (implies --ray); inside `ray job submit` RAY_ADDRESS is set")
    cpus_per_run: float = opt(2.0, "logical CPUs each Ray training task reserves")

    def validate(self):
        if self.train.train_examples == 0:  # 0 on the command line: all
            self.train.train_examples = None
        for name in ("eval_examples", "select_examples"):
            if getattr(self, name) == 0:
                setattr(self, name, None)
        checks = [
            (bool(self.seeds), "--seeds needs at least one seed"),
            (self.eval_examples is None or self.eval_examples >= 1, "--eval-examples must be positive"),
            (self.cpus_per_run > 0, "--cpus-per-run must be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        validate_nested(self)  # self.train.validate(): --steps, --batch-size, --init, --prompt-lr, ...
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SquadMrqaConfig(JobConfig):
    """Table 1 (§5): train on SQuAD, zero-shot F1/EM on the MRQA 2019 out-of-domain dev sets."""

    train: TrainConfig = budget(max_input_length=384, helps={
        "max_input_length": "input tokens kept per example: SQuAD-style contexts are long (longer inputs are cut)"})
    ood: tuple[str, ...] = opt(MRQA_OOD, "MRQA 2019 out-of-domain dev sets to evaluate (Table 1 rows)")
    modes: tuple[str, ...] = opt(("model", "prompt"), "which tunings to compare: prompt and/or model")
    model_lr: float = opt(1e-3, "§3/§5: model tuning baseline, Adafactor lr 1e-3")
    max_new_tokens: int = opt(16, "longest generated answer, in tokens")
    eval_examples: int | None = opt(100, "per evaluation set (SQuAD dev and every MRQA set); 0: all")

    def validate(self):
        super().validate()
        bad = [m for m in self.modes if m not in ("prompt", "model")]
        if bad or not self.modes:
            raise ValueError(f"--modes takes 'prompt' and/or 'model', not {' '.join(bad) or 'nothing'}")
        return self


@dataclass
class ParaphraseConfig(JobConfig):
    """Table 2 (§5): QQP ↔ MRPC zero-shot transfer through the label map."""

    directions: tuple[str, ...] = opt(PARAPHRASE_DIRECTIONS, "TRAIN:EVAL pairs of qqp and mrpc (Table 2)")
    modes: tuple[str, ...] = opt(("model", "prompt"), "which tunings to compare: prompt and/or model")
    model_lr: float = opt(1e-3, "§3/§5: model tuning baseline, Adafactor lr 1e-3")

    def validate(self):
        super().validate()
        for d in self.directions:
            if d.count(":") != 1 or set(d.split(":")) - {"qqp", "mrpc"} or d.split(":")[0] == d.split(":")[1]:
                raise ValueError(f"--directions takes TRAIN:EVAL pairs of qqp and mrpc (e.g. qqp:mrpc), not {d!r}")
        if set(self.modes) - {"prompt", "model"} or not self.modes:
            raise ValueError("--modes takes 'prompt' and/or 'model'")
        return self


@dataclass
class EnsembleConfig(JobConfig):
    """Table 3 (§6): N prompts from one packed training run, single prompts vs their majority vote."""

    train: TrainConfig = budget(set_per_run=tuple(f for f in SET_PER_RUN if f != "num_prompts"), num_prompts=5,
                                helps={"num_prompts": "N prompts per ensemble, trained packed in one run (paper: N = 5)"})
    tasks: tuple[str, ...] = opt(("mrpc",), "tasks to train and ensemble (Table 3 rows)")
    seeds: tuple[int, ...] = opt((0,), "one packed run per seed; its prompts get seeds seed..seed+N-1")
    eval_split: str = opt("validation", "split reported; it must be labelled (GLUE's and SuperGLUE's test "
                                        "splits are not: scoring them is refused)")
    voting: str = opt("majority", '"majority" (§6) or "mean_probability"')

    def validate(self):
        super().validate()
        if self.train.num_prompts < 2:
            raise ValueError("--num-prompts must be at least 2 for an ensemble")
        if self.voting not in VOTINGS:
            raise ValueError(f"--voting must be one of {', '.join(VOTINGS)}, not {self.voting!r}")
        return self


@dataclass
class InterpretConfig(JobConfig):
    """§7: nearest vocabulary neighbours of learned prompt tokens; do class-label inits persist?"""

    train: TrainConfig = budget(set_per_run=tuple(f for f in SET_PER_RUN if f != "task"),
                                helps={"task": "task to train a prompt on when no --prompts are given"})
    prompts: tuple[str, ...] = opt((), "prompt files to analyse; none: train one (--task, budget fields)")
    top_k: int = opt(5, "nearest vocabulary neighbours listed per prompt token (§7)")
    seeds: tuple[int, ...] = opt((0,), "one prompt trained (or initialised) per seed")
    untrained: bool = opt(False, "with no prompt files: analyse the initial prompt (no training)")

    def validate(self):
        super().validate()
        if self.top_k < 1:
            raise ValueError("--top-k must be at least 1")
        return self


JOBS = {"squad-mrqa": SquadMrqaConfig, "paraphrase": ParaphraseConfig, "ensemble": EnsembleConfig,
        "interpret": InterpretConfig}


@dataclass
class StudyConfig(JobConfig):
    """What makes a prompt learn: learning curves per factor, with majority-class and model-tuning baselines."""

    train: TrainConfig = budget(steps=600, train_examples=None, eval_batch_size=32, helps={
        "steps": "training steps per run", "train_examples": "first n training examples; None (0): whole training sets"})
    tasks: tuple[str, ...] = opt(("mrpc", "cb"), "tasks studied, one figure (study-<task>.png) each")
    factors: tuple[str, ...] = opt(("optimizer", "length", "init", "precision"),
                                   "factors varied, one curve per setting (transfer/study.py FACTORS)")
    seeds: tuple[int, ...] = opt((0,), "one run per seed and setting")
    eval_every: int | None = opt(150, "one point of each curve, on the whole dev set")
    eval_examples: int | None = opt(None, "None (0): whole dev sets, so every reported number is on the full dev set")
    model_tuning: bool = opt(True, "the model-tuning baseline curve, same budget")
    linear_probe: bool = opt(True, "the frozen-feature linear-probe reference line")
    model_lr: float = opt(1e-3, "model-tuning baseline lr (§3: 1e-3)")

    def validate(self):
        from .study import FACTORS
        super().validate()
        unknown = [f for f in self.factors if f not in FACTORS]
        if unknown:
            raise ValueError(f"--factors: unknown {', '.join(unknown)}; choose from {', '.join(FACTORS)}")
        if self.eval_every is None:
            raise ValueError("--eval-every is needed: a learning curve needs more than one point")
        return self


JOBS["study"] = StudyConfig
