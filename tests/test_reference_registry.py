"""The reference registry shipped in the repository: it loads on the default backbone and answers as recorded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
REFERENCE = Path(__file__).resolve().parents[1] / "reference_registry"


def test_reference_registry_loads_and_reproduces_its_recorded_scores():
    from ensemble.__main__ import evaluate

    expected = json.loads((REFERENCE / "expected.json").read_text())
    report = evaluate(str(REFERENCE), ["mrpc"], "smollm2-135m", expected["examples"], 8, "majority", None)
    table, notes = report.split("\n\n")
    assert table == expected["table"]
    assert "the 5 prompts answer alike" in notes


def test_reference_registry_serves_every_prompt():
    from ensemble import EnsembleEngine, PromptBank
    from tuning.backbone import load_backbone

    bank = PromptBank(load_backbone(), REFERENCE)
    assert not bank.refused and bank.tasks["mrpc"].n == 5
    answers = EnsembleEngine(bank).predict([("mrpc", "sentence1: The cat sat. sentence2: A cat was sitting.")])
    assert answers[0].prediction in ("equivalent", "not_equivalent") and len(answers[0].answers) == 5
