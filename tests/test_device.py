"""Where training runs (--device) and how long (--max-minutes). The GPU tests run where PyTorch sees a GPU."""

from __future__ import annotations

import pytest
import torch

from test_engine import _cfg, _toy
from tuning.config import TrainConfig
from tuning.precision import resolve_device
from tuning.train import Trainer, train

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")


def test_an_unusable_device_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="'auto', 'cpu' or a GPU"):
        TrainConfig(device="gpu0").validate()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="sees no GPU.*--device cpu"):
            TrainConfig(device="cuda").validate()
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")


def test_max_minutes_stops_at_the_first_evaluation_past_the_limit(tiny_llama):
    result = train(_cfg(steps=8, eval_every=2, max_minutes=1e-9), backbone=tiny_llama, train_examples=_toy(),
                   dev_examples=_toy(4))
    assert [r["step"] for r in result.history] == [1, 2]   # stopped at the step-2 evaluation, not at step 8
    assert result.best_metrics[0]["step"] == 2


@gpu
# Not T5 model tuning: it trains with dropout, whose masks come from different CPU and CUDA generators.
@pytest.mark.parametrize("kind, mode", [("llama", "prompt"), ("t5", "prompt"), ("llama", "model")])
def test_a_run_on_the_gpu_follows_the_cpu_run(tiny_dirs, kind, mode):
    """Same config, fp32 on both: the GPU run's prompts (or weights) and dev metrics are the CPU run's."""
    cfg = _cfg(model=str(tiny_dirs[kind]), mode=mode, num_prompts=2 if mode == "prompt" else 1, steps=4,
               optimizer="adamw", lr=0.05, dtype="float32")
    runs = {}
    for device in ("cpu", "cuda"):
        trainer = Trainer(TrainConfig(**{**cfg.to_dict(), "device": device}), train_examples=_toy(), dev_examples=_toy(8))
        assert trainer.backbone.device.type == device
        runs[device] = (trainer.fit(), {k: v.float().cpu() for k, v in trainer.backbone.model.state_dict().items()})
    (cpu, cpu_weights), (gpu_run, gpu_weights) = runs["cpu"], runs["cuda"]
    for a, b in zip(cpu.prompts, gpu_run.prompts):
        assert b.device.type == "cuda"
        torch.testing.assert_close(a, b.cpu(), atol=1e-4, rtol=1e-3)
    for name in cpu_weights:
        torch.testing.assert_close(cpu_weights[name], gpu_weights[name], atol=1e-4, rtol=1e-3)
    assert [m["step"] for m in cpu.best_metrics] == [m["step"] for m in gpu_run.best_metrics]
    assert [r["loss"] for r in cpu.history] == pytest.approx([r["loss"] for r in gpu_run.history], rel=1e-3)


@gpu
def test_a_gpu_trained_prompt_file_answers_on_the_cpu_as_it_scored_on_the_gpu(tiny_dirs, tmp_path):
    """bf16 on the GPU (auto), evaluated again in fp32 on the CPU: the file carries what was learned."""
    from tuning.artifact import load_prompt, save_prompt
    from tuning.backbone import load_backbone
    from tuning.evaluate import evaluate
    from tuning.model import PromptedLM
    from tuning.tasks import get_task

    result = train(_cfg(model=str(tiny_dirs["llama"]), steps=4, optimizer="adamw", lr=0.05), train_examples=_toy(),
                   dev_examples=_toy(8))
    assert result.config.dtype == "bfloat16" and result.backbone.device.type == "cuda"
    path = save_prompt(result.artifacts()[0], tmp_path / "p.safetensors")
    backbone = load_backbone(str(tiny_dirs["llama"]))
    prompt = load_prompt(path, backbone).prompt
    metrics = evaluate(PromptedLM(backbone), prompt[None], get_task("mrpc"), _toy(8))[0]
    assert metrics["accuracy"] == pytest.approx(result.best_metrics[0]["accuracy"], abs=1 / 8 + 1e-9)
