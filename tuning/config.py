"""The training job's one config dataclass. Defaults are the paper's (§3, Appendix A)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from .backbone import DEFAULT_MODEL
from .fields import opt


@dataclass
class TrainConfig:
    task: str = opt("mrpc", "task to train on (tuning/tasks), e.g. mrpc, rte, cb, boolq, squad")
    model: str = opt(DEFAULT_MODEL, "frozen backbone: the default name, a Hugging Face id or a local directory")
    data_dir: str | None = opt(None, "benchmark files; None: $PROMPT_TUNING_DATA, else ../shared/data")
    mode: str = opt("prompt", '"prompt": only the soft prompt learns; "model": model tuning baseline')
    prompt_length: int = opt(100, "soft prompt tokens (paper default, §3.2, Figure 3a)")
    init: str = opt("class_label", "prompt initialisation (paper default class_label, §3.2)")
    reparameterization: str = opt("none", '"none": the prompt is the parameter (§2); "residual_mlp": train it as '
                                          'P + LayerNorm(MLP(P)) and keep the output (not in the paper; tuning/reparam.py)')
    reparam_bottleneck: int = opt(128, "hidden width of the residual_mlp reparameterization")
    num_prompts: int = opt(1, "K prompts trained at once in one packed pass (seeds seed..seed+K-1)")
    recipe: str = opt("auto", '"paper": §3\'s optimiser everywhere; "auto": paper for T5 and model tuning, '
                              'embedding-scaled AdamW for decoder-only prompts (tuning/recipe.py)')
    optimizer: str | None = opt(None, '"adafactor" (§3) or "adamw"; None: the recipe\'s')
    lr: float | None = opt(None, "learning rate; None: the recipe's (paper: 0.3 for prompts, 1e-3 for model tuning)")
    lr_per_embedding_rms: float | None = opt(None, "lr = this × element RMS of the input embeddings (overrides --lr)")
    weight_decay: float = opt(1e-5, "optimiser weight decay (Appendix A)")
    decay_rate: float = opt(0.8, "Adafactor β2 decay")
    beta2: float | None = opt(None, "AdamW second-moment decay; None: the recipe's (else 0.999)")
    scale_parameter: bool | None = opt(None, "Adafactor parameter scaling; None: off for prompts (§3), on for model tuning")
    ema_decay: float = opt(0.0, "evaluate and keep an exponential moving average of each prompt with this decay "
                                "per step, e.g. 0.99 (0: the prompt itself, as in the paper)")
    warmup_steps: int = opt(0, "Table 6: linear warmup from 0, off by default")
    decay_factor: float | None = opt(None, "Table 6: multiply the lr by this every --steps-per-decay steps")
    steps_per_decay: int | None = opt(None, "Table 6: steps between lr decays (set with --decay-factor)")
    steps: int = opt(30000, "training steps (paper: 30,000 at batch 32)")
    batch_size: int = opt(32, "effective training batch (paper: 32)")
    grad_accum: int = opt(1, "micro-batches per step (--batch-size is the effective batch)")
    workers: int = opt(1, "data-parallel Ray Train workers sharing each batch (tuning/distributed.py); 1: this process, no Ray")
    eval_every: int = opt(100, "steps between dev evaluations (the best prompt is kept)")
    patience: int | None = opt(None, "evaluations without improvement before stopping early (None: never)")
    max_minutes: float | None = opt(None, "stop at the first evaluation after this many minutes of training (None: never)")
    train_examples: int | None = opt(None, "take the first n training examples (None: all)")
    eval_examples: int | None = opt(None, "take the first n dev examples (None: all)")
    eval_batch_size: int = opt(32, "dev evaluation batch size")
    max_input_length: int = opt(256, "input tokens kept per example (longer inputs are cut)")
    padding_side: str = opt("right", '"left" or "right" padding of decoder-only inputs (T5 always pads right)')
    bucket_by_length: bool = opt(True, "batches of similar input length (less padding; same objective)")
    shared_prefix: bool = opt(True, "causal LMs: compute the prompt's keys/values once per step")
    compile: bool = opt(False, "torch.compile the backbone's norms, MLPs and eager attention (~1.2x faster bf16 CPU "
                               "steps after ~20 s of compiling; tuning/compiled.py)")
    dtype: str = opt("auto", '"auto": bfloat16 for prompts on bf16 hardware, else float32 (tuning/precision.py)')
    device: str = opt("auto", '"auto": the GPU when PyTorch sees one, else the CPU; or e.g. "cpu", "cuda:1"')
    seed: int = opt(0, "prompt k is initialised with seed + k")
    data_seed: int | None = opt(None, "order of training batches (None: --seed)")
    output_dir: str = opt("runs", "prompts and history go to <output-dir>/<task>/")
    progress: bool = opt(True, "show a progress bar")

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
        from .precision import DTYPES, device_problem
        from .prompts import INITS
        from .recipe import RECIPES
        from .reparam import REPARAMETERIZATIONS
        checks = [
            (self.mode in ("prompt", "model"), f"--mode must be 'prompt' or 'model', not {self.mode!r}"),
            (self.init in INITS, f"--init must be one of {', '.join(INITS)}, not {self.init!r}"),
            (self.optimizer in (None, "adafactor", "adamw"), f"--optimizer must be 'adafactor' or 'adamw', not {self.optimizer!r}"),
            (all(v is None or v > 0 for v in (self.lr, self.lr_per_embedding_rms)),
             "--lr and --lr-per-embedding-rms must be positive"),
            (self.recipe in RECIPES, f"--recipe must be one of {', '.join(RECIPES)}, not {self.recipe!r}"),
            (self.mode == "model" or self.prompt_length >= 1, "--prompt-length must be at least 1"),
            (self.num_prompts >= 1, "--num-prompts must be at least 1"),
            (self.reparameterization in REPARAMETERIZATIONS,
             f"--reparameterization must be one of {', '.join(REPARAMETERIZATIONS)}, not {self.reparameterization!r}"),
            (self.reparam_bottleneck >= 1, "--reparam-bottleneck must be at least 1"),
            (self.mode == "prompt" or self.reparameterization == "none", "--reparameterization applies to prompt tuning only"),
            (self.steps >= 1 and self.batch_size >= 1 and self.eval_every >= 1, "--steps, --batch-size and --eval-every must be positive"),
            (self.grad_accum >= 1 and self.batch_size % self.grad_accum == 0, "--batch-size must be a multiple of --grad-accum"),
            (self.workers >= 1 and self.batch_size % (self.grad_accum * self.workers) == 0,
             "--batch-size must be a multiple of --grad-accum × --workers"),
            (self.padding_side in ("left", "right"), "--padding-side must be 'left' or 'right'"),
            (self.dtype in DTYPES, f"--dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}"),
            (device_problem(self.device) is None, device_problem(self.device)),
            (self.max_minutes is None or self.max_minutes > 0, "--max-minutes must be positive (omit it: no limit)"),
            ((self.decay_factor is None) == (self.steps_per_decay is None), "--decay-factor and --steps-per-decay go together"),
            (self.mode == "prompt" or self.num_prompts == 1, "model tuning trains one model: use --num-prompts 1"),
            (not self.ema_decay or (0 < self.ema_decay < 1 and self.mode == "prompt"),
             "--ema-decay must be in [0, 1), and above 0 only for prompt tuning (0: no averaging)"),
            (all(n is None or n > 0 for n in (self.train_examples, self.eval_examples)),
             "--train-examples and --eval-examples must be positive (omit them for the whole split)"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        return self
