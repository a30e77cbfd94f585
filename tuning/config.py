"""The training job's one config dataclass. Defaults are the paper's (§3, Appendix A)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .backbone import DEFAULT_MODEL


@dataclass
class TrainConfig:
    task: str = "mrpc"
    model: str = DEFAULT_MODEL
    data_dir: str | None = None
    mode: str = "prompt"               # "prompt": only the soft prompt learns; "model": model tuning baseline
    prompt_length: int = 100           # paper default (§3.2, Figure 3a)
    init: str = "class_label"          # paper default (§3.2)
    num_prompts: int = 1               # K prompts trained at once in one packed pass (seeds seed..seed+K-1)
    recipe: str = "auto"               # "paper": §3's optimiser everywhere; "auto": paper for T5 and model
                                       # tuning, embedding-scaled AdamW for decoder-only prompts (tuning/recipe.py)
    optimizer: str | None = None       # "adafactor" (§3) or "adamw"; None: the recipe's
    lr: float | None = None            # None: the recipe's (paper: 0.3 for prompts, 1e-3 for model tuning)
    lr_per_embedding_rms: float | None = None  # lr = this × element RMS of the input embeddings (overrides lr)
    weight_decay: float = 1e-5
    decay_rate: float = 0.8            # Adafactor β2 decay
    beta2: float | None = None         # AdamW second-moment decay; None: the recipe's (else 0.999)
    scale_parameter: bool | None = None  # Adafactor parameter scaling; None: off for prompts (§3), on for model tuning
    warmup_steps: int = 0              # Table 6: linear warmup from 0, off by default
    decay_factor: float | None = None  # Table 6: multiply the lr by this every `steps_per_decay` steps
    steps_per_decay: int | None = None
    steps: int = 30000                 # paper: 30,000 steps, batch 32
    batch_size: int = 32
    grad_accum: int = 1                # micro-batches per step (batch_size is the effective batch)
    eval_every: int = 100
    patience: int | None = None        # evaluations without improvement before stopping early
    train_examples: int | None = None  # take the first n training examples (None: all)
    eval_examples: int | None = None
    eval_batch_size: int = 32
    max_input_length: int = 256
    padding_side: str = "right"
    bucket_by_length: bool = True      # batches of similar input length (less padding; same objective)
    shared_prefix: bool = True         # causal LMs: compute the prompt's keys/values once per step
    dtype: str = "auto"                # "auto": bfloat16 for prompts on bf16 hardware, else float32 (tuning/precision.py)
    seed: int = 0                      # prompt k is initialised with seed + k
    data_seed: int | None = None       # order of training batches (None: seed)
    output_dir: str = "runs"
    progress: bool = True

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else (0.3 if self.mode == "prompt" else 1e-3)

    @property
    def adam_beta2(self) -> float:
        return self.beta2 if self.beta2 is not None else 0.999

    @property
    def adafactor_scale_parameter(self) -> bool:
        """§3: prompt tuning turns parameter scaling off; model tuning keeps T5's pre-training setting (on)."""
        return self.scale_parameter if self.scale_parameter is not None else self.mode == "model"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown config keys: {', '.join(sorted(unknown))}")
        return cls(**values)

    def validate(self) -> "TrainConfig":
        from .precision import DTYPES
        from .prompts import INITS
        from .recipe import RECIPES
        checks = [
            (self.mode in ("prompt", "model"), f"--mode must be 'prompt' or 'model', not {self.mode!r}"),
            (self.init in INITS, f"--init must be one of {', '.join(INITS)}, not {self.init!r}"),
            (self.optimizer in (None, "adafactor", "adamw"), f"--optimizer must be 'adafactor' or 'adamw', not {self.optimizer!r}"),
            (all(v is None or v > 0 for v in (self.lr, self.lr_per_embedding_rms)),
             "--lr and --lr-per-embedding-rms must be positive"),
            (self.recipe in RECIPES, f"--recipe must be one of {', '.join(RECIPES)}, not {self.recipe!r}"),
            (self.mode == "model" or self.prompt_length >= 1, "--prompt-length must be at least 1"),
            (self.num_prompts >= 1, "--num-prompts must be at least 1"),
            (self.steps >= 1 and self.batch_size >= 1 and self.eval_every >= 1, "--steps, --batch-size and --eval-every must be positive"),
            (self.grad_accum >= 1 and self.batch_size % self.grad_accum == 0, "--batch-size must be a multiple of --grad-accum"),
            (self.padding_side in ("left", "right"), "--padding-side must be 'left' or 'right'"),
            (self.dtype in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}"),
            ((self.decay_factor is None) == (self.steps_per_decay is None), "--decay-factor and --steps-per-decay go together"),
            (self.mode == "prompt" or self.num_prompts == 1, "model tuning trains one model: use --num-prompts 1"),
            (all(n is None or n > 0 for n in (self.train_examples, self.eval_examples)),
             "--train-examples and --eval-examples must be positive (omit them for the whole split)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return self
