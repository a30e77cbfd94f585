"""Prompt files: round trip, wrong backbone, damaged files, PEFT's adapter format."""

from __future__ import annotations

import json
import os

import pytest
import torch

from tuning.artifact import PromptArtifact, PromptFileError, export_peft, import_peft, load_prompt, save_prompt
from tuning.backbone import load_backbone


def _artifact(backbone, length=4) -> PromptArtifact:
    return PromptArtifact(prompt=torch.randn(length, backbone.embed_dim), task="mrpc", backbone=backbone.name,
                          fingerprint=backbone.fingerprint, init="class_label",
                          verbalizers=("not_equivalent", "equivalent"), metrics={"accuracy": 0.75},
                          config={"steps": 10})


def test_round_trip_keeps_tensor_and_metadata(tmp_path, tiny_llama):
    art = _artifact(tiny_llama)
    path = save_prompt(art, tmp_path / "p")
    assert path.suffix == ".safetensors" and not list(tmp_path.glob(".*tmp"))
    back = load_prompt(path, tiny_llama)
    assert torch.equal(back.prompt, art.prompt)
    assert (back.task, back.verbalizers, back.metrics, back.config) == (art.task, art.verbalizers, art.metrics, art.config)
    assert back.fingerprint == tiny_llama.fingerprint


def test_loading_onto_another_backbone_fails_clearly(tmp_path, tiny_llama, tiny_t5):
    path = save_prompt(_artifact(tiny_llama), tmp_path / "p")
    with pytest.raises(PromptFileError, match="fingerprint"):
        load_prompt(path, tiny_t5)


def test_fingerprint_changes_with_any_weight(tiny_dirs):
    a, b = load_backbone(str(tiny_dirs["llama"])), load_backbone(str(tiny_dirs["llama"]))
    assert a.fingerprint == b.fingerprint
    from tuning.backbone import fingerprint
    with torch.no_grad():
        next(b.model.parameters()).view(-1)[0] += 1e-3
    assert fingerprint(b.model) != a.fingerprint


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_damaged_files_are_refused(tmp_path, tiny_llama, damage):
    path = save_prompt(_artifact(tiny_llama), tmp_path / "p")
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 40]
    elif damage == "flip":
        data[-5] ^= 0xFF  # inside the tensor bytes: only the digest notices
    else:
        data = bytearray(b"not a safetensors file")
    path.write_bytes(bytes(data))
    with pytest.raises(PromptFileError):
        load_prompt(path)


def test_failed_write_leaves_the_old_file_intact(tmp_path, tiny_llama, monkeypatch):
    old = _artifact(tiny_llama)
    path = save_prompt(old, tmp_path / "p")

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        save_prompt(_artifact(tiny_llama), path)
    monkeypatch.undo()
    assert torch.equal(load_prompt(path).prompt, old.prompt)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


@pytest.mark.parametrize("kind", ["llama", "t5"])
def test_peft_round_trip_and_identical_logits(tmp_path, tiny_dirs, kind):
    from peft import PeftModel

    from tuning.encoding import encode
    from tuning.model import PromptedLM

    backbone = load_backbone(str(tiny_dirs[kind]))
    art = _artifact(backbone)
    out = export_peft(art, tmp_path / "adapter", backbone)
    config = json.loads((out / "adapter_config.json").read_text())
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 4
    back = import_peft(out, backbone, task="mrpc")
    assert torch.equal(back.prompt, art.prompt)

    # PEFT itself loads the adapter and computes the same target log-likelihood as we do.
    peft_model = PeftModel.from_pretrained(load_backbone(str(tiny_dirs[kind])).model, str(out)).eval()
    batch = encode(backbone, ["the cat sat on the mat"], ["equivalent"])
    ours = PromptedLM(backbone).target_logprobs(art.prompt[None], batch).sum()
    with torch.no_grad():
        if backbone.is_encoder_decoder:
            logits = peft_model(input_ids=batch.input_ids, attention_mask=batch.input_mask,
                                labels=batch.target_ids).logits
            tgt_logits = logits
        else:
            ids = torch.cat([batch.input_ids, batch.target_ids], 1)
            logits = peft_model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
            n_in, n_t = batch.input_ids.shape[1], batch.target_ids.shape[1]
            tgt_logits = logits[:, 4 + n_in - 1: 4 + n_in + n_t - 1]
        theirs = torch.log_softmax(tgt_logits, -1).gather(-1, batch.target_ids[..., None]).sum()
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_import_refuses_other_adapter_types(tmp_path, tiny_llama):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    from safetensors.torch import save_file
    save_file({"x": torch.zeros(1)}, tmp_path / "adapter_model.safetensors")
    with pytest.raises(PromptFileError, match="LORA"):
        import_peft(tmp_path, tiny_llama)
