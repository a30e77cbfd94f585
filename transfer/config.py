"""One config dataclass per experiment job. Defaults are a small-scale CPU budget; the paper's scale
(T5 XXL, 30k steps at batch 32, §3) is reached by raising the budget fields, not by changing code.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tuning.backbone import DEFAULT_MODEL

MRQA_OOD = ("textbookqa", "bioasq", "race", "relation_extraction", "duorc", "drop")  # Table 1 row order
PARAPHRASE_DIRECTIONS = ("qqp:mrpc", "mrpc:qqp")                                    # Table 2 (train:eval)


@dataclass
class JobConfig:
    """Budget and placement fields every job shares."""

    model: str = DEFAULT_MODEL
    data_dir: str | None = None
    results_dir: str | None = None      # None: results/<job>/
    seeds: tuple[int, ...] = (0, 1, 2)  # paper: mean ± std over 3 runs (Tables 1 and 2)
    steps: int = 100
    batch_size: int = 8
    grad_accum: int = 1
    eval_every: int | None = None       # None: evaluate once, at the last step
    train_examples: int | None = 2000   # first n of each set; None (0 on the command line): all
    eval_examples: int | None = 200     # per evaluation set (in-domain dev and every transfer set)
    select_examples: int | None = None  # dev examples for checkpoint selection during training (None: eval_examples)
    prompt_length: int = 20
    init: str = "class_label"
    recipe: str = "auto"                # optimiser defaults (tuning/recipe.py); "paper": §3's Adafactor at lr 0.3
    prompt_lr: float | None = None      # None: the recipe's (paper: 0.3)
    dtype: str = "auto"                 # "auto": bf16 prompts on bf16 hardware (tuning/precision.py)
    max_input_length: int = 256
    eval_batch_size: int = 16
    ray: bool = False                   # run the trainings as Ray tasks
    address: str | None = None          # Ray address (implies --ray); inside `ray job submit` RAY_ADDRESS is set
    cpus_per_run: float = 2.0           # logical CPUs each Ray training task reserves
    progress: bool = True

    def validate(self):
        for name in ("train_examples", "eval_examples", "select_examples"):  # 0 on the command line: all
            if getattr(self, name) == 0:
                setattr(self, name, None)
        if not self.seeds:
            raise ValueError("--seeds needs at least one seed")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("--steps and --batch-size must be positive")
        if self.eval_examples is not None and self.eval_examples < 1:
            raise ValueError("--eval-examples must be positive")
        if self.cpus_per_run <= 0:
            raise ValueError("--cpus-per-run must be positive")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class SquadMrqaConfig(JobConfig):
    """Table 1 (§5): train on SQuAD, zero-shot F1/EM on the MRQA 2019 out-of-domain dev sets."""

    ood: tuple[str, ...] = MRQA_OOD
    modes: tuple[str, ...] = ("model", "prompt")
    model_lr: float = 1e-3              # §3/§5: model tuning baseline, Adafactor lr 1e-3
    max_input_length: int = 384
    max_new_tokens: int = 16
    eval_examples: int | None = 100

    def validate(self):
        super().validate()
        bad = [m for m in self.modes if m not in ("prompt", "model")]
        if bad or not self.modes:
            raise ValueError(f"--modes takes 'prompt' and/or 'model', not {' '.join(bad) or 'nothing'}")
        return self


@dataclass
class ParaphraseConfig(JobConfig):
    """Table 2 (§5): QQP ↔ MRPC zero-shot transfer through the label map."""

    directions: tuple[str, ...] = PARAPHRASE_DIRECTIONS
    modes: tuple[str, ...] = ("model", "prompt")
    model_lr: float = 1e-3

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

    tasks: tuple[str, ...] = ("mrpc",)
    num_prompts: int = 5                 # paper: N = 5
    seeds: tuple[int, ...] = (0,)        # prompts get seeds seed..seed+N-1 (one packed run)
    eval_split: str = "validation"       # MRPC's test.tsv is labelled: "test" keeps selection and report apart
    voting: str = "majority"

    def validate(self):
        super().validate()
        if self.num_prompts < 2:
            raise ValueError("--num-prompts must be at least 2 for an ensemble")
        if self.voting not in ("majority", "mean_probability"):
            raise ValueError("--voting must be 'majority' or 'mean_probability'")
        return self


@dataclass
class InterpretConfig(JobConfig):
    """§7: nearest vocabulary neighbours of learned prompt tokens; do class-label inits persist?"""

    prompts: tuple[str, ...] = ()        # prompt files; none: train one (task, budget fields)
    task: str = "mrpc"
    top_k: int = 5
    seeds: tuple[int, ...] = (0,)
    untrained: bool = False              # with no prompt files: analyse the initial prompt (no training)

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

    tasks: tuple[str, ...] = ("mrpc", "cb")
    factors: tuple[str, ...] = ("optimizer", "length", "init", "precision")  # see transfer/study.py FACTORS
    seeds: tuple[int, ...] = (0,)
    steps: int = 600
    eval_every: int | None = 150         # one point of each curve, on the whole dev set
    train_examples: int | None = None    # whole training sets
    eval_examples: int | None = None     # whole dev sets: every reported number is on the full dev set
    eval_batch_size: int = 32
    model_tuning: bool = True            # the model-tuning baseline curve, same budget
    linear_probe: bool = True            # the frozen-feature linear-probe reference line
    model_lr: float = 1e-3

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
