"""The training loop: prompt tuning (only the soft prompts learn) and model tuning (every weight does).

K prompts can train at once in one forward and backward pass, the training-time twin of the paper's
§6 ensemble. Prompt k is its own parameter with its own optimiser statistics, initialised with
seed + k and reading its own batch order (data seed + k), so the result equals K separate runs with
seeds seed..seed+K-1: the paper's ensemble members are separately trained prompts.

`Trainer` holds a run's whole state (prompts or weights, their moving averages, optimiser, schedule,
step, RNG, the batch samplers' position, the best checkpoint so far), so a run saved with
`state_dict()` and restored with `load_state_dict()` continues exactly where it stopped: that is how
a Tune trial resumes.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from tqdm.auto import tqdm

from .artifact import PromptArtifact
from .backbone import Backbone, freeze, load_backbone
from .compiled import compile_backbone
from .config import TrainConfig
from .encoding import encode
from .evaluate import evaluate
from .model import PromptedLM
from .optim import build_optimizer, build_schedule
from .precision import resolve_device, resolve_dtype, use_fast_attention_for_training
from .prompts import init_prompt
from .recipe import resolve
from .reparam import PlainPrompt, parameterize
from .tasks import get_task

# (step, dev metrics of each prompt now, best prompt of each so far, its metrics with their "step")
EvalCallback = Callable[[int, list[dict], list[torch.Tensor], list[dict]], None]
RecordCallback = Callable[[dict], None]  # each step's history record, as it is made


@dataclass
class TrainResult:
    prompts: list[torch.Tensor]              # best prompt of each of the K runs ([0, d] for model tuning)
    best_metrics: list[dict]                 # dev metrics of each best prompt, with its "step"
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    backbone: Backbone | None = None
    config: TrainConfig | None = None        # as resolved for the backbone (recipe lr, dtype)

    def artifacts(self) -> list[PromptArtifact]:
        """The K prompts as files would hold them, with the resolved config of their run."""
        config = self.config
        task = get_task(config.task)
        return [PromptArtifact(prompt=p.cpu(), task=config.task, backbone=self.backbone.name,
                               fingerprint=self.backbone.fingerprint, init=config.init,
                               verbalizers=task.verbalizers, metrics=m,
                               config={**config.to_dict(), "seed": config.seed + k})
                for k, (p, m) in enumerate(zip(self.prompts, self.best_metrics))]


def backbone_for(config: TrainConfig, device: str | torch.device | None = None) -> Backbone:
    """The backbone `config` trains: on `device` (None: `--device`), in `--dtype` resolved for that
    device (bf16 for a frozen backbone where it is native), trainable for model tuning."""
    device = device if device is not None else resolve_device(config.device)
    dtype = resolve_dtype(config.dtype, torch.device(device).type, config.mode)
    return load_backbone(config.model, dtype=getattr(torch, dtype), device=device, trainable=config.mode == "model")


def batches(lengths: list[int], batch_size: int, seed: int, bucket: bool = True, pool: int = 50):
    """Endless shuffled mini-batches of example indices, epoch after epoch, repeatable by seed.

    With `bucket`, each pool of `pool` batches is sorted by input length before it is cut into
    batches (whose order is then shuffled): similar lengths share a batch, so less padding runs.
    """
    rng = random.Random(seed)
    order: list[int] = []
    ready: list[list[int]] = []
    take_n = batch_size * (pool if bucket else 1)
    while True:
        if not ready:
            while len(order) < take_n:
                fresh = list(range(len(lengths)))
                rng.shuffle(fresh)
                order += fresh
            take, order = order[:take_n], order[take_n:]
            if bucket:
                take.sort(key=lambda i: lengths[i])
            ready = [take[i:i + batch_size] for i in range(0, len(take), batch_size)]
            rng.shuffle(ready)
        yield ready.pop()


def _world() -> tuple[int, int]:
    """(rank, world size) of this process among data-parallel workers; (0, 1) without torch.distributed."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """`tensor` summed over the data-parallel workers, in place (itself in one process)."""
    if _world()[1] > 1:
        torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.SUM)
    return tensor


class BatchSampler:
    """`batches` with a position: its state is how many batches were drawn, replayed from the seed."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int, bucket: bool = True):
        self._args = (lengths, batch_size, seed, bucket)
        self._batches = batches(*self._args)
        self.drawn = 0

    def __next__(self) -> list[int]:
        self.drawn += 1
        return next(self._batches)

    def state_dict(self) -> dict:
        return {"drawn": self.drawn}

    def load_state_dict(self, state: dict) -> None:
        self._batches, self.drawn = batches(*self._args), 0
        for _ in range(state["drawn"]):
            next(self)


class Trainer:
    """One run: `step()` trains on one batch, `evaluate()` scores the dev set and keeps the best."""

    def __init__(self, config: TrainConfig, backbone: Backbone | None = None, train_examples=None,
                 dev_examples=None):
        config.validate()
        torch.manual_seed(config.seed)
        task = get_task(config.task)
        if train_examples is None:
            train_examples = task.load("train", config.data_dir, limit=config.train_examples)
        if dev_examples is None:
            dev_examples = task.load("validation", config.data_dir, limit=config.eval_examples)
        if not train_examples or not dev_examples:
            raise ValueError(f"{config.task}: no training or evaluation examples (check --train-examples / --eval-examples)")
        self.model_tuning = config.mode == "model"
        if backbone is None:
            backbone = backbone_for(config)
        self.config = config = resolve(config, backbone)
        self.task, self.backbone = task, backbone
        self.train_examples, self.dev_examples = train_examples, dev_examples
        use_fast_attention_for_training(backbone.model)
        if config.compile:
            compile_backbone(backbone.model)
        self.lm = PromptedLM(backbone)
        k = config.num_prompts
        if self.model_tuning:
            self.parameterized = [PlainPrompt(torch.zeros(0, backbone.embed_dim, device=backbone.device)).requires_grad_(False)]
            params = list(backbone.model.parameters())
            for p in params:
                p.requires_grad_(True)
            backbone.model.train()
        else:
            self.parameterized = [parameterize(init_prompt(backbone, config.prompt_length, config.init, config.seed + i,
                                                           task.init_words).to(backbone.device),
                                               config.reparameterization, config.reparam_bottleneck) for i in range(k)]
            params = [w for m in self.parameterized for w in m.parameters()]
        self.prompts = [m.raw for m in self.parameterized]  # what the optimiser moves (with any reparameterization's weights)
        self.optimizer = build_optimizer(params, config)
        self.schedule = build_schedule(self.optimizer, config)
        self.shared = config.shared_prefix and not backbone.is_encoder_decoder and not self.model_tuning
        data_seed = config.seed if config.data_seed is None else config.data_seed
        lengths = [len(e.input_text) for e in train_examples]
        self.samplers = [BatchSampler(lengths, config.batch_size, data_seed + i, config.bucket_by_length) for i in range(k)]
        self.averaged = [p.clone() for p in self.trained_prompts()] if config.ema_decay else None
        self.step_count, self.stale, self.seconds = 0, 0, 0.0
        self.best = [{"step": 0, task.primary_metric: -math.inf} for _ in range(k)]
        self.best_prompts = self.trained_prompts()
        self.best_weights: dict | None = None
        self.history: list[dict] = []

    def step(self) -> dict:
        """One optimiser step on the next batch; returns its history record.

        Under torch.distributed (Ray Train's data-parallel workers) each worker takes its share of the
        same global batch and gradients and losses are summed across workers; the loss is normalised
        by the global batch's target tokens, so W workers take exactly the step one process would.
        """
        config, k, t = self.config, len(self.prompts), time.time()
        rank, world = _world()
        ids = [next(sampler)[rank::world] for sampler in self.samplers]  # prompt k's share of its batch
        micro = len(ids[0]) // config.grad_accum
        encoded = []
        for m in range(config.grad_accum):
            rows = [self.train_examples[i] for own in ids for i in own[m * micro:(m + 1) * micro]]
            encoded.append(encode(self.backbone, [e.input_text for e in rows], [e.target_text for e in rows],
                                  config.max_input_length, config.padding_side).to(self.backbone.device))
        index = torch.arange(k, device=self.backbone.device).repeat_interleave(micro)
        tokens = _all_sum(sum(b.target_mask.sum(1).view(k, micro).sum(1) for b in encoded))  # each prompt's target tokens
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for batch in encoded:
            stacked = torch.stack([m() for m in self.parameterized])
            source = self.lm.prefix_kv(stacked) if self.shared else stacked
            # Sum over prompts of each prompt's mean token loss: packed = K separate runs.
            loss = -(self.lm.target_logprobs(source, batch, index).sum(1) / tokens[index]).sum()
            loss.backward()
            total += loss.item() / k
        if world > 1:
            for group in self.optimizer.param_groups:
                for param in group["params"]:
                    if param.grad is not None:
                        _all_sum(param.grad)
            total = float(_all_sum(torch.tensor(total, dtype=torch.float64)))
        self.optimizer.step()
        self.schedule.step()
        if self.averaged is not None:
            with torch.no_grad():
                for average, prompt in zip(self.averaged, self.trained_prompts()):
                    average.lerp_(prompt, 1 - config.ema_decay)
        self.step_count += 1
        self.seconds += time.time() - t
        return {"step": self.step_count, "loss": total, "lr": self.schedule.get_last_lr()[0], "seconds": self.seconds}

    @torch.no_grad()
    def trained_prompts(self) -> list[torch.Tensor]:
        """Each run's prompt as the model reads it now (through its reparameterization, if any)."""
        return [m().detach().clone() for m in self.parameterized]

    def current_prompts(self) -> list[torch.Tensor]:
        """The prompts a run evaluates and keeps: the moving averages with --ema-decay, else the prompts."""
        return self.averaged if self.averaged is not None else self.trained_prompts()

    def evaluate(self) -> list[dict]:
        """Dev metrics of each prompt now; a prompt that beats its best so far becomes its best."""
        t, primary = time.time(), self.task.primary_metric
        self.backbone.model.eval()
        current = self.current_prompts()
        metrics = evaluate(self.lm, torch.stack(current), self.task, self.dev_examples,
                           batch_size=self.config.eval_batch_size, max_input_length=self.config.max_input_length)
        if self.model_tuning:
            self.backbone.model.train()
        improved = False
        for i, m in enumerate(metrics):
            if m[primary] > self.best[i][primary]:
                self.best[i], self.best_prompts[i], improved = {**m, "step": self.step_count}, current[i].clone(), True
                if self.model_tuning:
                    self.best_weights = {n: w.detach().clone() for n, w in self.backbone.model.state_dict().items()}
        self.stale = 0 if improved else self.stale + 1
        self.seconds += time.time() - t
        return metrics

    def fit(self, on_eval: EvalCallback | None = None, on_record: RecordCallback | None = None) -> TrainResult:
        """Train from the current step to `config.steps`, evaluating every `eval_every` steps."""
        config = self.config
        bar = tqdm(range(self.step_count + 1, config.steps + 1), desc=f"{config.mode} tuning {config.task}",
                   disable=not config.progress)
        for step in bar:
            record = self.step()
            bar.set_postfix(loss=f"{record['loss']:.4f}")
            evaluated = step % config.eval_every == 0 or step == config.steps
            if evaluated:
                record["dev"] = self.evaluate()
                record["seconds"] = self.seconds
                bar.set_postfix(loss=f"{record['loss']:.4f}", dev=f"{record['dev'][0][self.task.primary_metric]:.3f}")
            self.history.append(record)
            if on_record is not None:
                on_record(record)
            if evaluated and on_eval is not None:
                on_eval(step, record["dev"], self.best_prompts, self.best)
            if evaluated and config.patience is not None and self.stale >= config.patience:
                break
            if evaluated and config.max_minutes is not None and self.seconds >= 60 * config.max_minutes:
                break
        bar.close()
        return self.result()

    def best_artifacts(self) -> list[PromptArtifact]:
        """The best prompt of each packed run so far, as prompt files hold them."""
        return TrainResult(self.best_prompts, self.best, backbone=self.backbone, config=self.config).artifacts()

    def result(self) -> TrainResult:
        """The best prompts so far; for model tuning the backbone is left holding its best weights, frozen."""
        if self.model_tuning:
            if self.best_weights is not None:
                self.backbone.model.load_state_dict(self.best_weights)
            freeze(self.backbone.model)
        return TrainResult(self.best_prompts, self.best, self.history, self.seconds, self.backbone, self.config)

    def state_dict(self) -> dict:
        trained = ({"weights": self.backbone.model.state_dict(), "best_weights": self.best_weights}
                   if self.model_tuning else {"prompts": [p.detach() for p in self.prompts], "averaged": self.averaged,
                                              "reparameterization": [m.state_dict() for m in self.parameterized]})
        return {**trained, "step": self.step_count, "optimizer": self.optimizer.state_dict(),
                "schedule": self.schedule.state_dict(), "sampler": self.samplers[0].state_dict(),
                "rng": torch.get_rng_state(), "best": self.best, "best_prompts": self.best_prompts,
                "stale": self.stale, "seconds": self.seconds, "history": self.history}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            if self.model_tuning:
                self.backbone.model.load_state_dict(state["weights"])
                self.best_weights = state["best_weights"]
            else:
                if [tuple(p.shape) for p in state["prompts"]] != [tuple(p.shape) for p in self.prompts]:
                    raise ValueError("saved training state has other prompt shapes than this run's config")
                if (state.get("averaged") is None) != (self.averaged is None):
                    raise ValueError("saved training state was trained with another --ema-decay (on/off) than this run's config")
                modules = state.get("reparameterization") or [{"raw": p} for p in state["prompts"]]  # older states
                if any(saved.keys() != m.state_dict().keys() for saved, m in zip(modules, self.parameterized)):
                    raise ValueError("saved training state was trained with another --reparameterization than this run's config")
                for m, saved in zip(self.parameterized, modules):
                    m.load_state_dict(saved)
                if self.averaged is not None:
                    self.averaged = [a.clone() for a in state["averaged"]]
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        for sampler in self.samplers:  # they draw in step
            sampler.load_state_dict(state["sampler"])
        torch.set_rng_state(state["rng"])
        self.step_count, self.stale, self.seconds = state["step"], state["stale"], state["seconds"]
        self.best, self.best_prompts = list(state["best"]), list(state["best_prompts"])
        self.history = list(state["history"])


def train(config: TrainConfig, backbone: Backbone | None = None, on_eval: EvalCallback | None = None,
          train_examples=None, dev_examples=None, on_record: RecordCallback | None = None) -> TrainResult:
    """Train `config` from scratch to the end (see `Trainer` to step, save or resume a run)."""
    return Trainer(config, backbone, train_examples, dev_examples).fit(on_eval, on_record)
