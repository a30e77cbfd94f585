"""The paper's optimiser settings (§3) and Table 6 schedules."""

from __future__ import annotations

import pytest
import torch

from tuning.config import TrainConfig
from tuning.optim import build_optimizer, build_schedule, lr_factor


def test_adafactor_has_the_papers_settings():
    opt = build_optimizer([torch.nn.Parameter(torch.zeros(3, 4))], TrainConfig())
    group = opt.param_groups[0]
    assert type(opt).__name__ == "Adafactor"
    assert group["lr"] == 0.3 and group["weight_decay"] == 1e-5 and group["decay_rate"] == -0.8
    assert group["scale_parameter"] is False and group["relative_step"] is False
    model = build_optimizer([torch.nn.Parameter(torch.zeros(2))], TrainConfig(mode="model"))
    assert model.param_groups[0]["lr"] == 1e-3 and model.param_groups[0]["scale_parameter"] is True
    adamw = build_optimizer([torch.nn.Parameter(torch.zeros(2))], TrainConfig(optimizer="adamw", lr=0.01))
    assert isinstance(adamw, torch.optim.AdamW) and adamw.param_groups[0]["lr"] == 0.01


def test_warmup_then_step_decay():
    cfg = TrainConfig(warmup_steps=4, decay_factor=0.5, steps_per_decay=10)
    assert [lr_factor(s, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_factor(9, cfg) == 1.0 and lr_factor(10, cfg) == 0.5 and lr_factor(25, cfg) == 0.25
    assert lr_factor(123, TrainConfig()) == 1.0  # both off by default (the paper's default run)


def test_schedule_drives_the_optimizer_lr():
    cfg = TrainConfig(warmup_steps=2, decay_factor=0.1, steps_per_decay=3)
    p = torch.nn.Parameter(torch.zeros(2, 2))
    opt = build_optimizer([p], cfg)
    sched = build_schedule(opt, cfg)
    seen = []
    for _ in range(5):
        seen.append(opt.param_groups[0]["lr"])
        p.grad = torch.ones_like(p)
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.15, 0.3, 0.3, 0.03, 0.03])


def test_gradient_accumulation_equals_the_full_batch(tiny_llama):
    from tuning.encoding import encode
    from tuning.model import PromptedLM

    lm = PromptedLM(tiny_llama)
    texts = ["the cat sat", "who wrote the book", "a man", "water flowed here"]
    targets = ["equivalent", "not_equivalent", "not_equivalent", "equivalent"]  # same token count per half
    prompt = torch.nn.Parameter(torch.randn(1, 3, tiny_llama.embed_dim))
    lm.loss(prompt, encode(tiny_llama, texts, targets)).backward()
    full = prompt.grad.clone()
    prompt.grad = None
    for half in (slice(0, 2), slice(2, 4)):  # equal token counts per half: the two means average exactly
        (lm.loss(prompt, encode(tiny_llama, texts[half], targets[half])) / 2).backward()
    torch.testing.assert_close(prompt.grad, full, atol=1e-5, rtol=1e-4)


def test_invalid_configs_name_the_flag():
    for bad, flag in ((dict(init="zeros"), "--init"), (dict(prompt_length=0), "--prompt-length"),
                      (dict(decay_factor=0.5), "--decay-factor"), (dict(train_examples=0), "--train-examples")):
        with pytest.raises(ValueError, match=flag):
            TrainConfig(**bad).validate()
