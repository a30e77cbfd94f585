"""Task registry and loaders on the real shared benchmark files (offline), plus the
formats that are not shared (QQP, ReCoRD, other MRQA sets) on tiny files in tmp_path."""

import gzip
import json
from pathlib import Path

import pytest

from tuning.tasks import (
    PARAPHRASE_LABEL_MAP,
    TASKS,
    DatasetUnavailable,
    Example,
    Task,
    TaskError,
    data_dir,
    get_task,
)
from tuning.tasks import base


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Tests never touch the network."""
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def shared(rel: str) -> Path:
    path = data_dir() / rel
    if not path.exists():
        pytest.skip(f"shared data file {path} not present")
    return path


# --- registry --------------------------------------------------------------------------

NAMES = [
    "mrpc", "qqp", "boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc",
    "squad", "bioasq", "drop", "duorc", "race", "relation_extraction", "textbookqa",
]


def test_registry_names_and_fields():
    assert sorted(TASKS) == sorted(NAMES)
    for name, task in TASKS.items():
        assert isinstance(task, Task) and task.name == name and get_task(name.upper()) is task
        assert task.kind in ("classification", "generation")
        assert set(task.splits) <= {"train", "validation", "test"} and "validation" in task.splits
        if task.kind == "classification":
            assert len(task.verbalizers) >= 2 and task.init_words == task.verbalizers
        else:
            assert task.verbalizers == () and task.init_words
    with pytest.raises(KeyError):
        get_task("mnli")


def test_verbalizers_and_primary_metrics():
    assert get_task("mrpc").verbalizers == ("not_equivalent", "equivalent")
    assert get_task("qqp").verbalizers == ("not_duplicate", "duplicate")
    assert get_task("rte").verbalizers == ("entailment", "not_entailment")
    assert get_task("cb").verbalizers == ("entailment", "contradiction", "neutral")
    assert get_task("copa").verbalizers == ("choice1", "choice2")
    for name in ("boolq", "wic", "multirc"):
        assert get_task(name).verbalizers == ("False", "True")
    assert get_task("record").init_words == ("commonsense", "reasoning", "reading", "comprehension")
    assert get_task("wsc").init_words == ("commonsense", "pronoun", "resolution")
    primary = {name: task.primary_metric for name, task in TASKS.items()}
    assert primary["rte"] == "accuracy" and primary["squad"] == "f1" and primary["race"] == "f1"
    assert primary["cb"] == primary["multirc"] == primary["record"] == primary["mrpc"] == "average"


def test_paraphrase_label_map():
    assert PARAPHRASE_LABEL_MAP["duplicate"] == "equivalent"
    assert PARAPHRASE_LABEL_MAP["not_duplicate"] == "not_equivalent"
    assert PARAPHRASE_LABEL_MAP["equivalent"] == "duplicate"
    assert PARAPHRASE_LABEL_MAP["not_equivalent"] == "not_duplicate"
    for src, dst in (("mrpc", "qqp"), ("qqp", "mrpc")):
        mapped = {PARAPHRASE_LABEL_MAP[v] for v in get_task(src).verbalizers}
        assert mapped == set(get_task(dst).verbalizers)


def test_data_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMPT_TUNING_DATA", raising=False)
    project_root = Path(base.__file__).resolve().parents[2]
    assert data_dir() == (project_root / ".." / "shared" / "data").resolve()
    monkeypatch.setenv("PROMPT_TUNING_DATA", str(tmp_path))
    assert data_dir() == tmp_path.resolve()
    assert data_dir(tmp_path / "x") == (tmp_path / "x").resolve()


# --- official row counts on the shared data --------------------------------------------

COUNTS = [
    ("mrpc", "train", "glue/MRPC/train.tsv", 3668),
    ("mrpc", "validation", "glue/MRPC/dev.tsv", 408),
    ("mrpc", "test", "glue/MRPC/test.tsv", 1725),
    ("cb", "train", "superglue/CB/train.jsonl", 250),
    ("cb", "validation", "superglue/CB/val.jsonl", 56),
    ("cb", "test", "superglue/CB/test.jsonl", 250),
    ("copa", "train", "superglue/COPA/train.jsonl", 400),
    ("copa", "validation", "superglue/COPA/val.jsonl", 100),
    ("copa", "test", "superglue/COPA/test.jsonl", 500),
    ("rte", "train", "superglue/RTE/train.jsonl", 2490),
    ("rte", "validation", "superglue/RTE/val.jsonl", 277),
    ("rte", "test", "superglue/RTE/test.jsonl", 3000),
    ("wsc", "train", "superglue/WSC/train.jsonl", 554),
    ("wsc", "validation", "superglue/WSC/val.jsonl", 104),
    ("wsc", "test", "superglue/WSC/test.jsonl", 146),
    ("wic", "train", "superglue/WiC/train.jsonl", 5428),
    ("wic", "validation", "superglue/WiC/val.jsonl", 638),
    ("wic", "test", "superglue/WiC/test.jsonl", 1400),
    ("boolq", "validation", "superglue/BoolQ/val.jsonl", 3270),
    ("boolq", "test", "superglue/BoolQ/test.jsonl", 3245),
    ("squad", "validation", "squad/dev-v1.1.json", 10570),
    ("race", "validation", "mrqa/RACE.jsonl.gz", 643),
]


@pytest.mark.parametrize("name, split, rel, n", COUNTS, ids=[f"{c[0]}-{c[1]}" for c in COUNTS])
def test_official_row_counts(name, split, rel, n):
    shared(rel)
    assert sum(1 for _ in get_task(name).read_rows(split)) == n


@pytest.mark.slow
def test_squad_train_count():
    shared("squad/train-v1.1.json")
    examples = get_task("squad").load("train")
    assert len(examples) == 87599
    assert all(ex.target_text and ex.target_text == ex.answers[0] for ex in examples)


@pytest.mark.parametrize("split, paragraphs", [("train", 456), ("validation", 83), ("test", 166)])
def test_multirc_counts(split, paragraphs):
    shared(f"superglue/MultiRC/{'val' if split == 'validation' else split}.jsonl")
    examples = get_task("multirc").load(split)
    assert len({ex.group.split("-")[0] for ex in examples}) == paragraphs
    answers = {"train": 27243, "validation": 4848, "test": 9693}[split]
    assert len(examples) == answers == len({ex.uid for ex in examples})


def test_wsc_train_keeps_correct_referents_only():
    shared("superglue/WSC/train.jsonl")
    task = get_task("wsc")
    rows = list(task.read_rows("train"))
    train = task.load("train")
    assert len(train) == sum(r["label"] == 1 for r in rows) == 259
    assert all(ex.label == 1 for ex in train)
    val = task.load("validation")
    assert len(val) == 104 and {ex.label for ex in val} == {0, 1}


# --- well-formed examples --------------------------------------------------------------

AVAILABLE = [
    (name, split)
    for name, split, rel, _ in COUNTS
    if not (name == "squad")  # SQuAD is covered below with a limit
] + [("multirc", "validation"), ("squad", "validation")]


@pytest.mark.parametrize("name, split", AVAILABLE, ids=[f"{n}-{s}" for n, s in AVAILABLE])
def test_examples_well_formed(name, split):
    task = get_task(name)
    try:
        examples = task.load(split, limit=2000)
    except DatasetUnavailable:
        pytest.skip("shared data not present")
    assert examples
    labelled = split != "test"
    for ex in examples:
        assert isinstance(ex, Example) and ex.input_text.strip() and ex.uid
        assert not ex.input_text.startswith(name + " ")  # no task-name prefix (paper §3)
        if not labelled:
            assert ex.target_text == "" and ex.answers == () and ex.label is None
            continue
        assert ex.target_text and ex.target_text in ex.answers
        if task.kind == "classification":
            assert ex.target_text in task.verbalizers
            assert task.verbalizers[ex.label] == ex.target_text and ex.answers == (ex.target_text,)
        else:
            assert all(a.strip() for a in ex.answers)
    if labelled and task.kind == "classification":
        assert len({ex.label for ex in examples}) >= 2


def test_t5_input_formats():
    if not (data_dir() / "superglue").exists():
        pytest.skip("shared data not present")
    cb = get_task("cb").load("validation", limit=1)[0]
    assert cb.input_text.startswith("hypothesis: Valence was helping premise: Valence the void-brain")
    assert cb.target_text == "contradiction" and cb.label == 1
    copa = get_task("copa").load("validation", limit=1)[0]
    assert copa.input_text == (
        "choice1: The toilet filled with water. choice2: Water flowed from the spout. "
        "premise: The man turned on the faucet. question: effect"
    )
    assert get_task("boolq").load("validation", limit=1)[0].input_text.startswith("passage: Ethanol fuel")
    wic = get_task("wic").load("validation", limit=1)[0]
    assert wic.input_text.startswith("sentence1: An emerging") and wic.input_text.endswith(" word: class")
    mrc = get_task("multirc").load("validation", limit=1)[0]
    assert mrc.input_text.startswith("question: Would the mass of a baseball") and " answer: No paragraph: " in mrc.input_text
    assert "<b>" not in mrc.input_text and "<br>" not in mrc.input_text
    wsc = get_task("wsc").load("validation", limit=1)[0]
    assert wsc.input_text.endswith("could take his claim away from * him * .") and wsc.target_text == "anyone"
    mrpc = get_task("mrpc").load("train", limit=1)[0]
    assert mrpc.input_text.startswith('sentence1: Amrozi accused his brother, whom he called "the witness"')
    assert " sentence2: Referring to him" in mrpc.input_text and mrpc.target_text == "equivalent"


def test_squad_format_and_limit():
    shared("squad/dev-v1.1.json")
    examples = get_task("squad").load("validation", limit=5)
    assert len(examples) == 5
    ex = examples[0]
    # T5's SQuAD preprocessing pads punctuation (Appendix A.3, footnote 22)
    assert ex.input_text.startswith("question: Which NFL team represented the AFC at Super Bowl 50 ? context: ")
    assert "National Football League ( NFL )" in ex.input_text
    assert ex.target_text == "Denver Broncos" and len(ex.answers) == 3
    assert get_task("squad").load("validation", limit=5) == examples  # deterministic


def test_race_format():
    shared("mrqa/RACE.jsonl.gz")
    examples = get_task("race").load("validation")
    assert examples[0].input_text.startswith("question: What will contribute to a satisfactory photo")
    assert examples[0].answers == ("shutter speed",)
    assert len({ex.uid for ex in examples}) == 643
    with pytest.raises(ValueError):
        get_task("race").load("train")


def test_limit_and_empty_limit():
    shared("superglue/RTE/val.jsonl")
    rte = get_task("rte")
    assert len(rte.load("validation", limit=10)) == 10
    assert rte.load("validation", limit=0) == []
    assert rte.load("validation", limit=10) == rte.load("validation")[:10]


# --- scoring through Task --------------------------------------------------------------


def test_score_perfect_and_invalid():
    shared("superglue/CB/val.jsonl")
    for name in ("cb", "rte", "multirc", "mrpc", "copa", "wic", "boolq", "wsc", "squad", "race"):
        task = get_task(name)
        examples = task.load("validation", limit=300)
        scores = task.score([" " + ex.target_text + "\n" for ex in examples], examples)
        assert task.primary_metric in scores
        if name != "wsc":  # WSC: naming a wrong candidate is an error
            assert all(v == pytest.approx(1.0) for v in scores.values()), (name, scores)
        bad = task.score([""] * len(examples), examples)  # never a verbalizer or answer
        assert bad[task.primary_metric] < 0.5


def test_score_mrpc_values():
    shared("glue/MRPC/dev.tsv")
    task = get_task("mrpc")
    examples = task.load("validation")
    preds = ["equivalent"] * len(examples)
    pos = sum(ex.label == 1 for ex in examples)  # 279 of 408
    scores = task.score(preds, examples)
    assert scores["accuracy"] == pytest.approx(pos / len(examples))
    assert scores["f1"] == pytest.approx(2 * pos / (2 * pos + len(examples) - pos))
    assert scores["average"] == pytest.approx((scores["accuracy"] + scores["f1"]) / 2)


def test_score_wsc():
    shared("superglue/WSC/val.jsonl")
    task = get_task("wsc")
    examples = task.load("validation")
    # always naming the candidate is right exactly on the label-1 rows
    scores = task.score([ex.target_text for ex in examples], examples)
    assert scores["accuracy"] == pytest.approx(sum(ex.label for ex in examples) / len(examples))


def test_score_rejects_bad_input():
    shared("superglue/RTE/val.jsonl")
    task = get_task("rte")
    with pytest.raises(ValueError):
        task.score(["entailment"], task.load("validation", limit=2))
    test = task.load("test", limit=2)
    with pytest.raises(ValueError):
        task.score(["entailment"] * 2, test)


# --- missing datasets ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, split, local, hub",
    [
        ("qqp", "validation", "glue/QQP/dev.tsv", "nyu-mll/glue"),
        ("record", "validation", "superglue/ReCoRD/val.jsonl", "aps/super_glue"),
        ("boolq", "train", "superglue/BoolQ/train.jsonl", "aps/super_glue"),
        ("drop", "validation", "mrqa/DROP.jsonl.gz", "mrqa-workshop/mrqa"),
        ("duorc", "validation", "mrqa/DuoRC.ParaphraseRC.jsonl.gz", "mrqa-workshop/mrqa"),
    ],
)
def test_missing_dataset_clear_error(tmp_path, name, split, local, hub):
    with pytest.raises(DatasetUnavailable) as info:
        get_task(name).load(split, data_dir=tmp_path)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(tmp_path / local) in msg and hub in msg
    assert isinstance(info.value, TaskError) and isinstance(info.value, FileNotFoundError)


def test_an_unreachable_hub_is_asked_once_per_process(tmp_path, monkeypatch):
    import datasets

    from tuning.tasks import loaders

    calls = []

    def unreachable(*args, **kwargs):
        calls.append(args)
        raise ConnectionError("Couldn't reach the hub")

    for name in loaders.OFFLINE_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    monkeypatch.setattr(loaders, "_hub_unreachable", [])
    with pytest.raises(DatasetUnavailable, match="ConnectionError"):
        get_task("drop").load("validation", data_dir=tmp_path)
    with pytest.raises(DatasetUnavailable, match="did not answer earlier in this process"):
        get_task("duorc").load("validation", data_dir=tmp_path)  # no second minute of retries
    assert len(calls) == 1


def test_qqp_missing_offline_in_shared_data():
    if (data_dir() / "glue" / "QQP" / "dev.tsv").exists():
        pytest.skip("QQP is present locally")
    with pytest.raises(DatasetUnavailable, match="QQP/dev.tsv"):
        get_task("qqp").load("validation")


def test_unknown_split():
    with pytest.raises(ValueError):
        get_task("squad").load("test")


# --- local formats that the shared data lacks ------------------------------------------


def test_qqp_tsv(tmp_path):
    d = tmp_path / "glue" / "QQP"
    d.mkdir(parents=True)
    (d / "dev.tsv").write_text(
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate\n"
        '0\t1\t2\tHow do I learn "Python"?\tWhat is the best way to learn Python?\t1\n'
        "1\t3\t4\tWhy is the sky blue?\tHow far is the moon?\t0\n"
        "2\t5\tbroken line\n"
    )
    (d / "test.tsv").write_text("id\tquestion1\tquestion2\n0\tA?\tB?\n")
    task = get_task("qqp")
    dev = task.load("validation", data_dir=tmp_path)
    assert [ex.target_text for ex in dev] == ["duplicate", "not_duplicate"]
    assert dev[0].input_text == 'question1: How do I learn "Python"? question2: What is the best way to learn Python?'
    test = task.load("test", data_dir=tmp_path)
    assert test[0].label is None and test[0].input_text == "question1: A? question2: B?"
    # zero-shot transfer: an MRPC-style prediction read through the label map
    preds = [PARAPHRASE_LABEL_MAP[p] for p in ("equivalent", "equivalent")]
    assert task.score(preds, dev)["accuracy"] == 0.5


RECORD_LINE = {
    "source": "Daily mail",
    "passage": {
        "text": "Tracy Morgan sues Walmart.\n@highlight\nThe comedian was hurt\n@highlight\nWalmart denies it",
        "entities": [
            {"start": 0, "end": 11},
            {"start": 18, "end": 24},
            {"start": 71, "end": 77},
        ],
    },
    "qas": [
        {
            "query": "@placeholder said the truck driver was at fault.",
            "answers": [{"start": 18, "end": 24, "text": "Walmart"}, {"start": 71, "end": 77, "text": "Walmart"}],
            "idx": 7,
        },
        {"query": "@placeholder is a comedian.", "answers": [{"start": 0, "end": 11, "text": "Tracy Morgan"}], "idx": 8},
    ],
    "idx": 3,
}


def test_record_jsonl(tmp_path):
    d = tmp_path / "superglue" / "ReCoRD"
    d.mkdir(parents=True)
    for f in ("train.jsonl", "val.jsonl"):
        (d / f).write_text(json.dumps(RECORD_LINE) + "\n")
    task = get_task("record")
    val = task.load("validation", data_dir=tmp_path)
    assert len(val) == 2
    assert val[0].input_text == (
        "query: @placeholder said the truck driver was at fault. entities: Tracy Morgan, Walmart "
        "passage: Tracy Morgan sues Walmart. The comedian was hurt. Walmart denies it"
    )
    assert val[0].answers == ("Walmart",) and val[0].group == "3-7"
    scores = task.score(["walmart", "Morgan"], val)
    assert scores["em"] == 0.5 and scores["f1"] == pytest.approx((1 + 2 / 3) / 2)
    train = task.load("train", data_dir=tmp_path)
    assert [ex.target_text for ex in train] == ["Walmart", "Tracy Morgan"]


def test_mrqa_alternative_file_name(tmp_path):
    d = tmp_path / "mrqa"
    d.mkdir()
    lines = [
        {"header": {"dataset": "DuoRC.ParaphraseRC", "split": "dev"}},
        {"id": "c0", "context": "Anna met Bob (her brother) in Paris.", "qas": [
            {"qid": "q0", "question": "Where did Anna meet Bob?", "answers": ["Paris", "in Paris"],
             "detected_answers": []},
        ]},
    ]
    with gzip.open(d / "DuoRC.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(x) for x in lines) + "\n")
    (ex,) = get_task("duorc").load("validation", data_dir=tmp_path)
    assert ex.input_text == "question: Where did Anna meet Bob ? context: Anna met Bob ( her brother ) in Paris ."
    assert ex.answers == ("Paris", "in Paris") and ex.uid == "q0"
    assert get_task("duorc").score(["Paris."], [ex]) == {"em": 1.0, "f1": 1.0}
