"""The training loop: prompt tuning (only the soft prompts learn) and model tuning (every weight does).

K prompts can train at once: the batch is replicated across them in one forward and backward pass,
the training-time twin of the paper's §6 ensemble. Each prompt is its own parameter, so Adafactor's
statistics stay per prompt and the result equals K separate runs on the same batches.
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
from .config import TrainConfig
from .encoding import encode
from .evaluate import evaluate
from .model import PromptedLM
from .optim import build_optimizer, build_schedule
from .precision import resolve_dtype, use_fast_attention_for_training
from .prompts import init_prompt
from .recipe import resolve
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


def batches(lengths: list[int], batch_size: int, seed: int, bucket: bool = True, pool: int = 50):
    """Endless shuffled mini-batches of example indices, epoch after epoch, repeatable by seed.

    With `bucket`, each pool of `pool` batches is sorted by input length before it is cut into
    batches (whose order is then shuffled): similar lengths share a batch, so less padding runs.
    """
    rng = random.Random(seed)
    order: list[int] = []
    ready: list[list[int]] = []
    while True:
        if not ready:
            while len(order) < batch_size * (pool if bucket else 1):
                fresh = list(range(len(lengths)))
                rng.shuffle(fresh)
                order += fresh
            take, order = order[:batch_size * (pool if bucket else 1)], order[batch_size * (pool if bucket else 1):]
            if bucket:
                take.sort(key=lambda i: lengths[i])
            ready = [take[i:i + batch_size] for i in range(0, len(take), batch_size)]
            rng.shuffle(ready)
        yield ready.pop()


def train(config: TrainConfig, backbone: Backbone | None = None, on_eval: EvalCallback | None = None,
          train_examples=None, dev_examples=None, on_record: RecordCallback | None = None) -> TrainResult:
    config.validate()
    torch.manual_seed(config.seed)
    task = get_task(config.task)
    if train_examples is None:
        train_examples = task.load("train", config.data_dir, limit=config.train_examples)
    if dev_examples is None:
        dev_examples = task.load("validation", config.data_dir, limit=config.eval_examples)
    if not train_examples or not dev_examples:
        raise ValueError(f"{config.task}: no training or evaluation examples (check --train-examples / --eval-examples)")
    model_tuning = config.mode == "model"
    if backbone is None:
        dtype = resolve_dtype(config.dtype, "cpu", config.mode)
        backbone = load_backbone(config.model, dtype=getattr(torch, dtype), trainable=model_tuning)
    config = resolve(config, backbone)
    use_fast_attention_for_training(backbone.model)
    lm = PromptedLM(backbone)
    k = config.num_prompts

    if model_tuning:
        prompts = [torch.zeros(0, backbone.embed_dim, device=backbone.device)]
        params = [p for p in backbone.model.parameters()]
        for p in params:
            p.requires_grad_(True)
        backbone.model.train()
    else:
        prompts = [torch.nn.Parameter(init_prompt(backbone, config.prompt_length, config.init, config.seed + i,
                                                  task.init_words).to(backbone.device)) for i in range(k)]
        params = prompts
    optimizer = build_optimizer(params, config)
    schedule = build_schedule(optimizer, config)
    shared = config.shared_prefix and not backbone.is_encoder_decoder and not model_tuning
    micro = config.batch_size // config.grad_accum

    best = [{"step": 0, task.primary_metric: -math.inf} for _ in range(k)]
    best_prompts = [p.detach().clone() for p in prompts]
    history: list[dict] = []
    stale, start = 0, time.time()
    lengths = [len(e.input_text) for e in train_examples]
    sampler = batches(lengths, config.batch_size, config.seed if config.data_seed is None else config.data_seed,
                      config.bucket_by_length)
    bar = tqdm(range(1, config.steps + 1), desc=f"{config.mode} tuning {config.task}", disable=not config.progress)
    for step in bar:
        ids = next(sampler)
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for m in range(config.grad_accum):
            chunk = [train_examples[i] for i in ids[m * micro:(m + 1) * micro]]
            batch = encode(backbone, [e.input_text for e in chunk] * k, [e.target_text for e in chunk] * k,
                           config.max_input_length, config.padding_side).to(backbone.device)
            index = torch.arange(k, device=backbone.device).repeat_interleave(len(chunk))
            stacked = torch.stack(prompts)
            source = lm.prefix_kv(stacked) if shared else stacked
            # Sum over prompts of each prompt's mean token loss: packed = K separate runs.
            loss = -lm.target_logprobs(source, batch, index).sum() / (batch.target_mask.sum() / k)
            (loss / config.grad_accum).backward()
            total += loss.item() / config.grad_accum / k
        optimizer.step()
        schedule.step()
        bar.set_postfix(loss=f"{total:.4f}")
        record = {"step": step, "loss": total, "lr": schedule.get_last_lr()[0], "seconds": time.time() - start}

        stop = False
        if step % config.eval_every == 0 or step == config.steps:
            backbone.model.eval()
            metrics = evaluate(lm, torch.stack(prompts).detach(), task, dev_examples,
                               batch_size=config.eval_batch_size, max_input_length=config.max_input_length)
            if model_tuning:
                backbone.model.train()
            improved = False
            for i, mtr in enumerate(metrics):
                if mtr[task.primary_metric] > best[i][task.primary_metric]:
                    best[i], best_prompts[i], improved = {**mtr, "step": step}, prompts[i].detach().clone(), True
                    if model_tuning:
                        best_weights = {n: t.detach().clone() for n, t in backbone.model.state_dict().items()}
            stale = 0 if improved else stale + 1
            record["dev"] = metrics
            bar.set_postfix(loss=f"{total:.4f}", dev=f"{metrics[0][task.primary_metric]:.3f}")
            if on_eval is not None:
                on_eval(step, metrics, best_prompts, best)
            stop = config.patience is not None and stale >= config.patience
        history.append(record)
        if on_record is not None:
            on_record(record)
        if stop:
            break
    bar.close()
    if model_tuning:
        backbone.model.load_state_dict(best_weights)
        freeze(backbone.model)
    return TrainResult(best_prompts, best, history, time.time() - start, backbone, config)
