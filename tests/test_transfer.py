"""The experiment jobs (transfer/) end to end on tiny random models and tiny data slices."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from transfer.config import EnsembleConfig, InterpretConfig, ParaphraseConfig, SquadMrqaConfig
from transfer.report import NA
from tuning.fields import compose

TINY = dict(steps=2, batch_size=2, train_examples=4, eval_examples=4, select_examples=2, prompt_length=4,
            max_input_length=64, eval_batch_size=8, progress=False)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def outputs(directory: Path, stem: str) -> tuple[str, list[dict]]:
    for suffix in ("md", "csv", "png", "json"):
        assert (directory / f"{stem}.{suffix}").stat().st_size > 0, suffix
    assert (directory / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return (directory / f"{stem}.md").read_text(), read_csv(directory / f"{stem}.csv")


def test_ensemble_job(tiny_dirs, tmp_path, capsys):
    from ensemble import PromptBank
    from tuning.backbone import load_backbone
    from tuning.evaluate import evaluate
    from tuning.model import PromptedLM
    from tuning.tasks import get_task
    from transfer.ensembling import run

    config = compose(EnsembleConfig, model=str(tiny_dirs["llama"]), tasks=("mrpc", "qqp"), results_dir=str(tmp_path), **TINY)
    out = run(config)
    assert "skipped: qqp train split unavailable" in capsys.readouterr().out
    md, rows = outputs(tmp_path, "ensemble")
    assert "| qqp | accuracy/f1 | " + " | ".join([NA] * 3) + " |" in md
    mrpc = {r["metric"]: r for r in rows if r["task"] == "mrpc"}
    assert set(mrpc) == {"accuracy", "f1"}
    for r in mrpc.values():
        singles = [float(r[f"prompt_{i}"]) for i in range(5)]
        assert r["n_prompts"] == "5" and r["n_eval"] == "4"
        assert float(r["single_mean"]) == pytest.approx(sum(singles) / 5)
        assert float(r["best"]) in singles
    assert [r for r in rows if r["task"] == "qqp"][0]["unavailable"].startswith("qqp train split unavailable")

    # The 5 saved prompts form a bank, and the engine's per-prompt answers match plain evaluation.
    backbone = load_backbone(config.train.model)
    bank = PromptBank(backbone, tmp_path / "prompts")
    assert bank.tasks["mrpc"].n == 5 and not bank.refused
    task = get_task("mrpc")
    examples = task.load("validation", limit=4)
    plain = evaluate(PromptedLM(backbone), bank.tasks["mrpc"].prompts, task, examples, max_input_length=64)
    assert [m["accuracy"] for m in plain] == pytest.approx(
        [s["accuracy"] for s in out["results"][0]["singles"]], abs=1e-9)


def test_squad_mrqa_job(tiny_dirs, tmp_path, capsys):
    from transfer.squad_mrqa import run

    config = compose(SquadMrqaConfig, model=str(tiny_dirs["llama"]), seeds=(0, 1), max_new_tokens=4,
                             results_dir=str(tmp_path), **{**TINY, "eval_examples": 3})
    out = run(config)
    printed = capsys.readouterr().out
    assert printed.count("skipped: ") == 5 and "skipped: bioasq validation split unavailable" in printed
    md, rows = outputs(tmp_path, "squad_mrqa")
    by_set = {r["dataset"]: r for r in rows}
    assert list(by_set) == ["squad", "textbookqa", "bioasq", "race", "relation_extraction", "duorc", "drop"]
    for name in ("squad", "race"):
        r = by_set[name]
        assert r["model_runs"] == r["prompt_runs"] == "2"
        assert float(r["delta_f1"]) == pytest.approx(float(r["prompt_f1_mean"]) - float(r["model_f1_mean"]))
        assert 0 <= float(r["prompt_em_mean"]) <= float(r["prompt_f1_mean"]) + 1e-9 <= 1 + 1e-9
    assert by_set["drop"]["unavailable"] and not by_set["drop"].get("prompt_f1_mean")
    assert "| RACE | Exam |" in md and "| DROP | Wiki | " + " | ".join([NA] * 3) + " |" in md
    assert {(r["mode"], r["seed"]) for r in out["results"]} == {("model", 0), ("model", 1), ("prompt", 0), ("prompt", 1)}
    assert all(set(r["scores"]) == {"squad", "race"} for r in out["results"])


def test_paraphrase_job_reports_unavailable_qqp(tiny_dirs, tmp_path, capsys):
    from transfer.paraphrase import run

    config = compose(ParaphraseConfig, model=str(tiny_dirs["t5"]), seeds=(0,), results_dir=str(tmp_path), **TINY)
    run(config)
    printed = capsys.readouterr().out
    assert "skipped: qqp train split unavailable" in printed and "skipped: qqp validation split unavailable" in printed
    md, rows = outputs(tmp_path, "paraphrase")
    assert [(r["train"], r["eval"], r["mode"]) for r in rows] == [
        ("qqp", "mrpc", "model"), ("qqp", "mrpc", "prompt"), ("mrpc", "qqp", "model"), ("mrpc", "qqp", "prompt")]
    # QQP -> MRPC cannot train; MRPC -> QQP trains (in-domain MRPC row) but cannot transfer.
    assert all(r["runs"] == "0" and r["unavailable"] for r in rows[:2])
    assert all(r["runs"] == "1" and r["in_domain_accuracy_mean"] and not r["transfer_accuracy_mean"] for r in rows[2:])
    assert f"| QQP | MRPC | Prompt | {NA} | {NA} | {NA} | {NA} |" in md


def test_zero_shot_maps_training_labels_to_eval_labels(monkeypatch):
    from tuning.tasks import Example, get_task
    from transfer import paraphrase

    qqp, mrpc = get_task("qqp"), get_task("mrpc")
    seen = {}

    def fake_predict(lm, prompt, task, inputs, **kw):
        seen["task"] = task.name  # rank-classified over the TRAINING task's verbalizers
        return [["equivalent", "not_equivalent", "equivalent"]]

    monkeypatch.setattr(paraphrase, "predict", fake_predict)
    examples = [Example("q", lab, (lab,), i) for lab, i in (("duplicate", 1), ("not_duplicate", 0), ("not_duplicate", 0))]
    scores = paraphrase.zero_shot(None, None, mrpc, qqp, examples, 8, 64)
    assert seen["task"] == "mrpc"
    assert scores["accuracy"] == pytest.approx(2 / 3) and scores["f1"] == pytest.approx(2 / 3)


def test_nearest_neighbours_of_vocabulary_rows_are_themselves(tiny_llama):
    from transfer.interpret import nearest_neighbours

    ids = torch.tensor([5, 17, 42, 101])
    cos, top = nearest_neighbours(tiny_llama, tiny_llama.embed(ids), k=5)
    assert top[:, 0].tolist() == ids.tolist()
    assert cos[:, 0] == pytest.approx(torch.ones(4), abs=1e-5)
    assert (cos[:, :-1] >= cos[:, 1:]).all()  # sorted, most similar first
    scaled = nearest_neighbours(tiny_llama, 7.0 * tiny_llama.embed(ids), k=5)[1]
    assert torch.equal(scaled, top)  # cosine: the norm does not matter


def test_interpret_untrained_class_label_prompt_and_prompt_files(tiny_dirs, tmp_path):
    from tuning.artifact import PromptArtifact, save_prompt
    from tuning.backbone import load_backbone
    from tuning.prompts import init_prompt
    from transfer.interpret import run

    model = str(tiny_dirs["llama"])
    out = run(compose(InterpretConfig, model=model, task="boolq", untrained=True, seeds=(0, 1), prompt_length=6,
                              results_dir=str(tmp_path / "untrained"), progress=False))
    for a in out["analyses"]:
        assert a["initialised"] == 2 and a["persisting"] == 2  # "False" and "True" find their own tokens
        assert a["tokens"][0]["own_label"] and a["tokens"][1]["own_label"] and a["tokens"][2]["own_label"] is None
    md, rows = outputs(tmp_path / "untrained", "interpret")
    assert len(rows) == 12 and {f"neighbour_{j}" for j in range(1, 6)} <= set(rows[0])
    assert "| 2/2 |" in md

    backbone = load_backbone(model)
    prompt = init_prompt(backbone, 5, "sampled_vocab", 3)
    path = save_prompt(PromptArtifact(prompt, "rte", backbone.name, backbone.fingerprint, "sampled_vocab"),
                       tmp_path / "rte-sampled")
    out = run(compose(InterpretConfig, model=model, prompts=(str(path),), results_dir=str(tmp_path / "files"), progress=False))
    (a,) = out["analyses"]
    assert a["initialised"] == 0 and a["name"] == "rte-sampled" and a["mean_top1"] == pytest.approx(1.0, abs=1e-5)
    assert "not class_label" in (tmp_path / "files" / "interpret.md").read_text()


def test_cli_errors_and_runs(tiny_dirs, tmp_path, capsys):
    from transfer.__main__ import main

    assert main(["squad-mrqa", "--modes", "bogus"]) == 2
    assert "error: --modes" in capsys.readouterr().err
    assert main(["paraphrase", "--directions", "mrpc:mrpc"]) == 2
    assert compose(EnsembleConfig, train_examples=0, eval_examples=0).validate().train.train_examples is None  # 0: all
    assert main(["interpret", "--model", str(tiny_dirs["llama"]), "--untrained", "--task", "rte",
                 "--prompt-length", "3", "--seeds", "4", "--results-dir", str(tmp_path)]) == 0
    assert "rte-p3-class_label-s4-untrained" in (tmp_path / "interpret.md").read_text()


def test_interpret_job_trains_as_ray_tasks(ray_session, tiny_dirs, tmp_path, capsys):
    from transfer.interpret import run

    config = compose(InterpretConfig, model=str(tiny_dirs["llama"]), task="rte", seeds=(0, 1), ray=True, cpus_per_run=1,
                             results_dir=str(tmp_path), **TINY)
    out = run(config)
    assert "submitted 2 Ray tasks" in capsys.readouterr().out
    assert [a["name"] for a in out["analyses"]] == ["rte-p4-class_label-s0", "rte-p4-class_label-s1"]
    _, rows = outputs(tmp_path, "interpret")
    assert len(rows) == 8


def test_study_job_runs_each_distinct_arm_once_and_draws_curves(tiny_dirs, tmp_path):
    from transfer.config import StudyConfig
    from transfer.study import run

    config = compose(StudyConfig, model=str(tiny_dirs["llama"]), tasks=("cb",), factors=("init", "precision"), seeds=(0, 1),
                         results_dir=str(tmp_path), **{**TINY, "steps": 4, "eval_every": 2, "train_examples": 32})
    out = run(config)
    # Per seed: init 3 arms; precision float32 + bfloat16, one of which is the base run (auto dtype); model tuning.
    assert len(out["arms"]) == 2 * (3 + 2 + 1) and len(out["runs"]) == 2 * (3 + 1 + 1)
    model_runs = [out["runs"][a["key"]] for a in out["arms"] if a["factor"] == "model tuning"]
    assert [r["config"]["mode"] for r in model_runs] == ["model", "model"]
    rows = read_csv(tmp_path / "study.csv")
    assert {r["arm"] for r in rows} == {"random_uniform", "sampled_vocab", "class_label", "float32", "bfloat16",
                                        "model tuning"}
    assert sorted({int(r["step"]) for r in rows}) == [2, 4]
    # The majority baseline answers the most common of the 32 training labels for all 4 dev examples.
    from collections import Counter

    from tuning.tasks import get_task
    task = get_task("cb")
    train = task.load("train", limit=32)
    dev = task.load("validation", limit=4)
    label = Counter(e.target_text for e in train).most_common(1)[0][0]
    assert float(rows[0]["majority"]) == pytest.approx(task.score([label] * 4, dev)["average"])
    assert 0 <= float(rows[0]["linear_probe"]) <= 1
    md = (tmp_path / "study.md").read_text()
    assert "| cb | init | random_uniform |" in md and "model tuning" in md
    assert (tmp_path / "study-cb.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="--factors"):
        StudyConfig(factors=("colour",)).validate()


def test_a_stopped_study_keeps_its_finished_runs_and_trains_only_the_others(tiny_dirs, tmp_path, monkeypatch, capsys):
    from transfer import study
    from transfer.config import StudyConfig

    def config():
        return compose(StudyConfig, model=str(tiny_dirs["llama"]), tasks=("cb",), factors=("length",), seeds=(0,),
                       model_tuning=False, linear_probe=False, results_dir=str(tmp_path),
                       **{**TINY, "steps": 2, "eval_every": 2, "train_examples": 16})

    trained, real_unit = [], study.study_unit

    def stopped_after_two(spec):
        if len(trained) == 2:
            raise KeyboardInterrupt  # the job is stopped while its third run trains
        trained.append(spec["key"])
        return real_unit(spec)

    monkeypatch.setattr(study, "study_unit", stopped_after_two)
    with pytest.raises(KeyboardInterrupt):
        study.run(config())
    kept = list((tmp_path / "units").iterdir())
    assert len(kept) == 2 and all(p.suffix == ".json" for p in kept)   # two results, no temp file left

    again = []
    monkeypatch.setattr(study, "study_unit", lambda spec: again.append(spec["key"]) or real_unit(spec))
    out = study.run(config())
    assert "2 of 4 runs already done" in capsys.readouterr().out
    assert len(again) == 2 and not set(again) & set(trained)   # only the two unfinished lengths trained
    assert {a["arm"] for a in out["arms"]} == {"p=1", "p=5", "p=20", "p=100"}
    assert len(read_csv(tmp_path / "study.csv")) == 4
