"""The start-up guard that serves bf16 only where it answers like fp32 on the registry's own tasks."""

from __future__ import annotations

import pytest
import torch
from serving import random_registry

from ensemble import precision_guard
from ensemble.precision_guard import answer_disagreement, choose_backbone


@pytest.fixture(autouse=True)
def fresh_verdict_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPT_TUNING_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_llama):
    return random_registry(tmp_path_factory.mktemp("guard-registry"), tiny_llama)


def test_float32_needs_no_guard(tiny_dirs, registry):
    backbone, report = choose_backbone(str(tiny_dirs["llama"]), registry, "float32")
    assert backbone.dtype == torch.float32 and report["guard"] == "not needed"


def test_bf16_is_served_after_comparing_answers_on_dev_examples(tiny_dirs, registry, data_dir):
    backbone, report = choose_backbone(str(tiny_dirs["llama"]), registry, "bfloat16", examples=6,
                                       max_disagreement=1.0, data_dir=data_dir)
    assert backbone.dtype == torch.bfloat16
    assert report["guard"] == "passed" and report["examples"] == 6 and 0 <= report["disagreement"] <= 1
    _, again = choose_backbone(str(tiny_dirs["llama"]), registry, "bfloat16", examples=6,
                               max_disagreement=1.0, data_dir=data_dir)
    assert again == {**report, "cached": True}  # a restart on the same prompt files skips the comparison


def test_bf16_that_disagrees_too_often_falls_back_to_fp32(tiny_dirs, registry, data_dir, monkeypatch):
    monkeypatch.setattr(precision_guard, "answer_disagreement", lambda a, b, items: 0.25)
    backbone, report = choose_backbone(str(tiny_dirs["llama"]), registry, "bfloat16", examples=4,
                                       max_disagreement=0.01, data_dir=data_dir)
    assert backbone.dtype == torch.float32 and report["dtype"] == "float32" and report["guard"].startswith("failed")


def test_without_examples_bf16_is_served_unchecked_and_says_so(tiny_dirs, registry, tmp_path):
    backbone, report = choose_backbone(str(tiny_dirs["llama"]), registry, "bfloat16", examples=4, data_dir=tmp_path)
    assert backbone.dtype == torch.bfloat16 and report["guard"].startswith("unchecked") and report["missing"]


def test_disagreement_counts_per_prompt_answers(tiny_llama, registry):
    from ensemble import EnsembleEngine, PromptBank

    engine = EnsembleEngine(PromptBank(tiny_llama, registry))
    items = [("mrpc", f"sentence1: x {i} sentence2: y {i}") for i in range(5)]
    assert answer_disagreement(engine, engine, items) == 0.0
