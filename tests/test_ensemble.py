"""Batched ensembles: one pass of B × N rows, mixed tasks, equal to each prompt on its own (paper §6)."""

from __future__ import annotations

import torch
import pytest

from ensemble import EnsembleEngine, PromptBank, majority_vote, mean_probability_vote
from tuning.artifact import PromptArtifact, save_prompt
from tuning.evaluate import predict
from tuning.model import PromptedLM
from tuning.tasks import get_task

ITEMS = [("mrpc", "sentence1: the cat sat sentence2: a cat sat"), ("rte", "premise: it rains hypothesis: wet"),
         ("mrpc", "sentence1: who wrote the book sentence2: the author"), ("squad", "question: who context: the man"),
         ("rte", "premise: the man turned on the faucet hypothesis: water flowed"), ("cb", "premise: a hypothesis: b")]


@pytest.fixture
def bank(tiny):
    torch.manual_seed(0)
    bank = PromptBank(tiny)
    bank.add("mrpc", torch.randn(5, 4, tiny.embed_dim))
    bank.add("rte", torch.randn(3, 4, tiny.embed_dim))
    bank.add("squad", torch.randn(2, 4, tiny.embed_dim))
    bank.add("cb", torch.randn(3, 6, tiny.embed_dim))  # another prompt length: its own pass
    return bank


@pytest.mark.parametrize("shared_prefix", [True, False])
def test_mixed_task_batch_equals_each_prompt_on_its_own(bank, shared_prefix):
    engine = EnsembleEngine(bank, shared_prefix=shared_prefix, max_rows=64, max_new_tokens=4)
    results = engine.predict(ITEMS)
    lm = PromptedLM(bank.backbone)
    for (task_name, text), res in zip(ITEMS, results):
        tp = bank.tasks[task_name]
        assert res.task == task_name and len(res.answers) == tp.n and res.prompts == tp.names
        for k in range(tp.n):
            alone = predict(lm, tp.prompts[k:k + 1], get_task(task_name), [text], max_new_tokens=4)[0][0]
            assert res.answers[k] == alone
        if tp.task.kind == "classification":
            from tuning.encoding import encode_candidates
            own = lm.score(tp.prompts, encode_candidates(bank.backbone, [text] * tp.n, [tp.task.verbalizers] * tp.n),
                           torch.arange(tp.n))
            torch.testing.assert_close(torch.tensor(res.scores), own, atol=1e-4, rtol=1e-4)
    # all prompts of one length share passes: 5 + 3 + 5 + 3 rows of length 4 fit in one pass per kind
    assert engine.stats["rows"] == sum(bank.tasks[t].n for t, _ in ITEMS)
    assert engine.stats["passes"] == 3  # length-4 classification, length-4 generation, length-6 classification


def test_micro_batches_and_bucketing_do_not_change_answers(bank):
    big = EnsembleEngine(bank, max_rows=64, max_new_tokens=4).predict(ITEMS)
    for engine in (EnsembleEngine(bank, max_rows=2, max_new_tokens=4),
                   EnsembleEngine(bank, max_rows=3, bucket=False, max_new_tokens=4)):
        small = engine.predict(ITEMS)
        assert [r.answers for r in small] == [r.answers for r in big]
        assert engine.stats["passes"] > 3


def test_votes_and_agreement(bank):
    res = EnsembleEngine(bank).predict(ITEMS[:1])[0]
    assert sum(res.votes.values()) == 5
    assert res.prediction == max(res.votes, key=res.votes.get)
    assert res.agreement == res.votes[res.prediction] / 5


def test_majority_vote_breaks_ties_by_summed_log_likelihood():
    labels = ("a", "b")
    scores = torch.tensor([[-2.0, -2.5], [-3.0, -0.5]])  # one vote each; b has the higher sum (-3 vs -5)
    vote = majority_vote(["a", "b"], scores, labels)
    assert vote.prediction == "b" and vote.agreement == 0.5
    assert majority_vote(["a", "a", "b"], None).prediction == "a"


def test_mean_probability_vote_can_overrule_the_majority():
    labels = ("a", "b")
    scores = torch.log(torch.tensor([[0.51, 0.49], [0.51, 0.49], [0.01, 0.99]]))
    assert majority_vote(["a", "a", "b"], scores, labels).prediction == "a"
    assert mean_probability_vote(scores, labels).prediction == "b"


def test_agreement_counts_where_members_split_and_who_is_right_there():
    from ensemble.diagnostics import agreement

    answers = [("a", "a", "a"), ("a", "b", "b"), ("b", "a", "a"), ("a", "a", "b")]
    a = agreement(answers, ["a", "b", "a", "a"], ["a", "b", "b", "b"])
    assert (a.examples, a.unanimous, a.split) == (4, 1, 3)
    assert a.pairwise == pytest.approx((3 + 1 + 1 + 1) / 12)  # per example: 3, 1, 1, 1 of the 3 pairs agree
    assert a.vote_right_on_split == 1                          # only example 1's vote is right
    assert a.member_right_on_split == pytest.approx((2 + 1 + 1) / 3)


def test_paired_bootstrap_interval_brackets_the_difference_and_is_zero_without_one():
    from ensemble.diagnostics import paired_bootstrap

    assert paired_bootstrap(lambda idx: 0.0, 50) == (0.0, 0.0)
    right = [1] * 30 + [0] * 20                                # the vote is right on 30 of 50 examples,
    member = [1] * 25 + [0] * 25                               # a member on 25 (a subset): +10 points

    def diff(idx):
        return sum(right[i] - member[i] for i in idx) / len(idx)

    low, high = paired_bootstrap(diff, 50, resamples=500)
    assert 0 < low < 0.10 < high < 0.25
    assert paired_bootstrap(diff, 50, resamples=500) == (low, high)  # seeded: the same report every run


def test_unknown_task_and_voting_fail_clearly(bank):
    engine = EnsembleEngine(bank)
    with pytest.raises(KeyError, match="no prompts loaded for task 'boolq'"):
        engine.predict([("boolq", "x")])
    with pytest.raises(ValueError, match="voting"):
        engine.predict(ITEMS[:1], voting="unanimous")


def test_bank_hot_reload_adds_removes_and_refuses(tmp_path, tiny_llama, tiny_t5):
    def art(backbone, task="rte", length=4):
        return PromptArtifact(torch.randn(length, backbone.embed_dim), task, backbone.name, backbone.fingerprint)

    a = save_prompt(art(tiny_llama), tmp_path / "rte" / "a")
    bank = PromptBank(tiny_llama, tmp_path)
    assert bank.tasks["rte"].n == 1
    v = bank.version
    save_prompt(art(tiny_llama), tmp_path / "rte" / "b")
    save_prompt(art(tiny_t5), tmp_path / "rte" / "foreign")
    report = bank.reload()
    assert report.added == ["rte/b.safetensors"] and bank.tasks["rte"].n == 2 and bank.version > v
    assert "rte/foreign.safetensors" in report.refused and "fingerprint" in report.refused["rte/foreign.safetensors"]
    a.unlink()
    report = bank.reload()
    assert report.removed == ["rte/a.safetensors"] and bank.tasks["rte"].names == ["b"]
    v = bank.version
    assert not bank.reload().changed and bank.version == v  # nothing new: no rebuild


def test_calibration_is_measured_once_and_remembered(bank, tmp_path, monkeypatch):
    monkeypatch.setenv("PROMPT_TUNING_CACHE", str(tmp_path))
    calls = []
    original = EnsembleEngine.calibrate

    def counting(self, *a, **k):
        calls.append(1)
        return original(self, sizes=(2, 8), input_length=8, repeats=1)
    monkeypatch.setattr(EnsembleEngine, "calibrate", counting)
    first = EnsembleEngine(bank, max_rows=None, max_new_tokens=2)
    second = EnsembleEngine(bank, max_rows=None, max_new_tokens=2)
    assert len(calls) == 1 and first.max_rows == second.max_rows in (2, 8)
    assert (tmp_path / "calibration.json").exists()


def test_a_prompt_of_another_length_stays_refused_across_reloads(tmp_path, tiny_llama):
    for name, length in (("a", 4), ("b", 4), ("c", 5)):
        save_prompt(PromptArtifact(torch.randn(length, tiny_llama.embed_dim), "rte", tiny_llama.name,
                                   tiny_llama.fingerprint), tmp_path / "rte" / name)
    bank = PromptBank(tiny_llama, tmp_path)
    assert bank.tasks["rte"].names == ["a", "b"]
    for _ in range(2):
        report = bank.reload()
        assert "length 5" in report.refused["rte/c.safetensors"] and "rte/c.safetensors" in bank.refused


def test_evaluate_command_reports_single_best_and_ensemble(tmp_path, tiny_dirs, tiny_llama, capsys):
    from ensemble.__main__ import main

    for k in range(3):
        save_prompt(PromptArtifact(torch.randn(4, tiny_llama.embed_dim), "rte", tiny_llama.name,
                                   tiny_llama.fingerprint), tmp_path / "rte" / f"p{k}")
    argv = ["evaluate", "--registry", str(tmp_path), "--model", str(tiny_dirs["llama"]), "--examples", "6"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    row = [line for line in out.splitlines() if line.startswith("| rte")][0]
    cells = [c.strip(" *") for c in row.split("|")[1:-1]]
    assert cells[:3] == ["rte", "3", "accuracy"]
    mean, best, ens = float(cells[3].split(" ± ")[0]), float(cells[4]), float(cells[5])
    assert mean <= best and all(0 <= v <= 1 for v in (mean, best, ens))
    notes = [line for line in out.splitlines() if line.startswith("rte: ")]
    assert "the 3 prompts answer alike" in notes[0] and len(notes) in (4, 5)  # 4: no example split them
    gold = [e.target_text for e in get_task("rte").load("validation", limit=6)]
    assert notes[1].startswith(f"rte: answers per label: gold entailment {gold.count('entailment')}, "
                               f"not_entailment {gold.count('not_entailment')}; vote ")
    vote_minus_average = float(notes[-2].split("(accuracy): ")[1].split(" points")[0])
    assert vote_minus_average == pytest.approx(100 * (ens - mean), abs=0.011)
    low, high = (float(x) for x in notes[-2].split("interval [")[1].split("]")[0].split(", "))
    assert low <= vote_minus_average <= high
    assert main(argv + ["--bootstrap", "-1"]) == 2
    assert "--bootstrap must be 0" in capsys.readouterr().err
    assert main(argv + ["--task", "cb"]) == 2
    assert "no prompts for task 'cb'" in capsys.readouterr().err
