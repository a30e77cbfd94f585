"""The default recipe (paper settings for T5, embedding-scaled steps for decoder-only LMs), bf16
training and the learning-curve files every run keeps."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest
import torch

from tuning import recipe
from tuning.backbone import load_backbone
from tuning.config import TrainConfig
from tuning.encoding import encode
from tuning.model import PromptedLM
from tuning.optim import build_optimizer
from tuning.precision import resolve_dtype


def test_decoder_only_prompts_get_an_lr_scaled_to_the_embeddings(tiny_llama):
    rms = float(tiny_llama.model.get_input_embeddings().weight.pow(2).mean().sqrt())
    assert recipe.embedding_rms(tiny_llama) == pytest.approx(rms)
    config = recipe.resolve(TrainConfig(), tiny_llama)
    assert config.optimizer == recipe.CAUSAL_OPTIMIZER and config.lr_per_embedding_rms == recipe.CAUSAL_LR_PER_EMBEDDING_RMS
    assert config.lr == pytest.approx(recipe.CAUSAL_LR_PER_EMBEDDING_RMS * rms, rel=1e-3)
    assert config.beta2 == recipe.CAUSAL_BETA2
    # The rule follows the scale: embeddings ×10 -> lr ×10.
    emb = tiny_llama.model.get_input_embeddings().weight
    original = emb.detach().clone()
    with torch.no_grad():
        emb.mul_(10)
    try:
        assert recipe.resolve(TrainConfig(), tiny_llama).lr == pytest.approx(10 * config.lr, rel=1e-3)
    finally:
        with torch.no_grad():
            emb.copy_(original)


def test_t5_model_tuning_and_the_paper_flag_keep_the_papers_settings(tiny_t5, tiny_llama):
    for config, backbone in ((TrainConfig(), tiny_t5), (TrainConfig(recipe="paper"), tiny_llama)):
        resolved = recipe.resolve(config, backbone)
        assert (resolved.optimizer, resolved.lr, resolved.adafactor_scale_parameter) == ("adafactor", 0.3, False)
        group = build_optimizer([torch.nn.Parameter(torch.zeros(2, 2))], resolved).param_groups[0]
        assert group["lr"] == 0.3 and group["scale_parameter"] is False
    model = recipe.resolve(TrainConfig(mode="model"), tiny_llama)
    assert (model.optimizer, model.lr, model.adafactor_scale_parameter) == ("adafactor", 1e-3, True)


def test_explicit_settings_win_over_the_recipe(tiny_llama):
    resolved = recipe.resolve(TrainConfig(lr=0.02, beta2=0.9), tiny_llama)
    assert (resolved.optimizer, resolved.lr, resolved.beta2) == ("adamw", 0.02, 0.9)
    # Another optimiser than the recipe's: the recipe's lr is not carried over to it.
    assert recipe.resolve(TrainConfig(optimizer="adafactor"), tiny_llama).lr == recipe.PAPER_PROMPT_LR
    # The lr rule works for any optimiser, and names the lr itself.
    scaled = recipe.resolve(TrainConfig(optimizer="adafactor", lr_per_embedding_rms=0.3), tiny_llama)
    assert scaled.lr == pytest.approx(0.3 * recipe.embedding_rms(tiny_llama), rel=1e-3)
    assert recipe.resolve(TrainConfig(), tiny_llama).dtype == "float32"  # the loaded backbone's


def test_auto_precision_is_bf16_only_for_frozen_backbones_on_bf16_hardware(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert resolve_dtype("auto", "cpu", "prompt") == "bfloat16"
    assert resolve_dtype("auto", "cpu", "model") == "float32"
    assert resolve_dtype("float32", "cpu", "prompt") == "float32"
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with pytest.warns(UserWarning, match="no native bf16"):
        assert resolve_dtype("auto", "cpu", "prompt") == "float32"


def test_only_a_cpu_without_bf16_is_warned_about(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_dtype("float32", "cpu", "prompt") == "float32"  # asked for: nothing to say
        assert resolve_dtype("auto", "cpu", "model") == "float32"  # model tuning is fp32 everywhere
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert resolve_dtype("auto", "cpu", "prompt") == "bfloat16"


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_a_bf16_training_step_matches_fp32(tiny_dirs, kind):
    """Frozen bf16 backbone, fp32 prompt: the loss and the prompt's gradient match the fp32 step."""
    from tuning.precision import use_fast_attention_for_training

    texts = ["sentence1: the cat sat sentence2: a cat sat", "premise: rain hypothesis: wet", "who wrote it"]
    targets = ["equivalent", "entailment", "False"]
    prompt0 = torch.randn(1, 4, 32, generator=torch.Generator().manual_seed(0)) * 0.3
    out = {}
    for dtype in (torch.float32, torch.bfloat16):
        backbone = load_backbone(str(tiny_dirs[kind]), dtype=dtype)
        use_fast_attention_for_training(backbone.model)
        prompt = torch.nn.Parameter(prompt0.clone())
        loss = PromptedLM(backbone).loss(prompt, encode(backbone, texts, targets))
        loss.backward()
        assert prompt.grad.dtype == torch.float32
        out[dtype] = (loss.item(), prompt.grad.flatten())
    (l32, g32), (l16, g16) = out[torch.float32], out[torch.bfloat16]
    assert l16 == pytest.approx(l32, rel=0.02)
    assert torch.nn.functional.cosine_similarity(g32, g16, dim=0) > 0.98
    assert (g16.norm() / g32.norm()).item() == pytest.approx(1.0, abs=0.05)


def test_the_train_command_keeps_its_learning_curve(tmp_path, tiny_dirs):
    cmd = [sys.executable, "-m", "tuning", "train", "--model", str(tiny_dirs["llama"]), "--task", "rte",
           "--prompt-length", "3", "--steps", "4", "--batch-size", "2", "--eval-every", "2",
           "--train-examples", "8", "--eval-examples", "4", "--output-dir", str(tmp_path), "--no-progress"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    history = tmp_path / "rte" / "rte-p3-class_label-s0.history.jsonl"
    records = [json.loads(line) for line in history.read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["loss"] > 0 and r["lr"] > 0 for r in records)
    assert [r["step"] for r in records if "dev" in r] == [2, 4] and "accuracy" in records[1]["dev"][0]
    events = list((tmp_path / "rte" / "rte-p3-class_label-s0.tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    assert str(history) in out.stdout
