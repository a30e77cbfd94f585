"""Optimizers and learning-rate schedules of the paper (§3 and Table 6)."""

from __future__ import annotations

import torch
from transformers.optimization import Adafactor

from .config import TrainConfig


def build_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.learning_rate, weight_decay=config.weight_decay,
                                 betas=(0.9, config.adam_beta2))
    # §3: Adafactor, lr 0.3, weight decay 1e-5, β2 decay 0.8, parameter scaling off; model tuning uses
    # the T5 library's settings (lr 1e-3, pre-training Adafactor, i.e. parameter scaling on).
    # (HF spells the β2 decay exponent as a negative decay_rate.)
    return Adafactor(params, lr=config.learning_rate, weight_decay=config.weight_decay,
                     decay_rate=-config.decay_rate, scale_parameter=config.adafactor_scale_parameter,
                     relative_step=False, warmup_init=False, clip_threshold=1.0)


def lr_factor(step: int, config: TrainConfig) -> float:
    """Table 6: linear warmup from zero, then ×decay_factor every steps_per_decay steps."""
    factor = 1.0
    if config.warmup_steps and step < config.warmup_steps:
        factor = (step + 1) / config.warmup_steps
    if config.decay_factor is not None and config.steps_per_decay:
        factor *= config.decay_factor ** (step // config.steps_per_decay)
    return factor


def build_schedule(optimizer: torch.optim.Optimizer, config: TrainConfig) -> torch.optim.lr_scheduler.LambdaLR:
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, config))
