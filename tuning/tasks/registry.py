"""The benchmarks of the paper (§3, Appendix A.3) as Task objects.

Verbalizers are T5's label names; input fields are joined in T5's order (sorted keys
unless T5 names them). Primary metrics follow §3: the benchmark's metric, or the average
when a benchmark reports two; F1 for SQuAD and MRQA (Appendix A.1).
"""

from __future__ import annotations

from typing import Sequence

from . import loaders, metrics, preprocess
from .base import Example, Task
from .loaders import Source

# --- scorers: (task, normalised predictions, examples) -> metric dict -----------------


def _targets(examples: Sequence[Example]) -> list[str]:
    return [ex.target_text for ex in examples]


def score_accuracy(task: Task, preds: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    return {"accuracy": metrics.accuracy(preds, _targets(examples))}


def score_paraphrase(task: Task, preds: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    negative, positive = task.verbalizers
    out = {
        "accuracy": metrics.accuracy(preds, _targets(examples)),
        "f1": metrics.binary_f1(preds, _targets(examples), positive, negative),
    }
    return {**out, "average": metrics.mean(out.values())}


def score_cb(task: Task, preds: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    out = {
        "accuracy": metrics.accuracy(preds, _targets(examples)),
        "macro_f1": metrics.macro_f1(preds, _targets(examples), task.verbalizers),
    }
    return {**out, "average": metrics.mean(out.values())}


def score_multirc(task: Task, preds: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    negative, positive = task.verbalizers
    out = metrics.multirc_em_f1a(preds, _targets(examples), [ex.group for ex in examples], positive, negative)
    return {**out, "average": metrics.mean(out.values())}


def score_wsc(task: Task, preds: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    return {"accuracy": metrics.wsc_accuracy(preds, _targets(examples), [ex.label for ex in examples])}


def score_squad(task: Task, preds: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    return metrics.squad_em_f1(preds, [ex.answers for ex in examples])


def score_record(task: Task, preds: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
    # Several training examples may share a query; score each query once (first one).
    seen: set = set()
    kept_p, kept_a = [], []
    for p, ex in zip(preds, examples):
        if ex.group is None or ex.group not in seen:
            seen.add(ex.group)
            kept_p.append(p)
            kept_a.append(ex.answers)
    out = metrics.squad_em_f1(kept_p, kept_a)
    return {**out, "average": metrics.mean(out.values())}


# --- sources --------------------------------------------------------------------------

GLUE_HUB = "nyu-mll/glue"  # the hub's "glue"
SUPERGLUE_HUB = "aps/super_glue"  # the hub's "super_glue"
SQUAD_HUB = "rajpurkar/squad"  # the hub's "squad"
MRQA_HUB = "mrqa-workshop/mrqa"  # the hub's "mrqa"; out-of-domain dev sets are its "test" split

ALL_SPLITS = ("train", "validation", "test")


def _glue(folder: str, config: str, reader) -> Source:
    local = {s: (f"glue/{folder}/{f}.tsv",) for s, f in zip(ALL_SPLITS, ("train", "dev", "test"))}
    return Source(local, reader, (GLUE_HUB, config))


def _superglue(folder: str, config: str, reader) -> Source:
    local = {s: (f"superglue/{folder}/{f}.jsonl",) for s, f in zip(ALL_SPLITS, ("train", "val", "test"))}
    return Source(local, reader, (SUPERGLUE_HUB, config))


def _mrqa(file_stems: tuple[str, ...], subset: str) -> Source:
    local = {"validation": tuple(f"mrqa/{stem}.jsonl.gz" for stem in file_stems)}
    return Source(local, loaders.read_mrqa, (MRQA_HUB, None), {"validation": "test"}, subset)


# --- tasks ----------------------------------------------------------------------------


def _classification(name, verbalizers, fields, source, scorer=score_accuracy, primary="accuracy", **kw) -> Task:
    return Task(
        name=name,
        kind="classification",
        verbalizers=tuple(verbalizers),
        primary_metric=primary,
        splits=ALL_SPLITS,
        init_words=tuple(verbalizers),
        source=source,
        preprocess=preprocess.classification(fields, verbalizers, **kw),
        scorer=scorer,
    )


BOOL = ("False", "True")
NLI2 = ("entailment", "not_entailment")
NLI3 = ("entailment", "contradiction", "neutral")
MRPC_LABELS = ("not_equivalent", "equivalent")
QQP_LABELS = ("not_duplicate", "duplicate")

# Zero-shot paraphrase transfer (§5, Table 2): a QQP prompt's outputs are read as MRPC
# labels and vice versa.
PARAPHRASE_LABEL_MAP: dict[str, str] = {
    **dict(zip(MRPC_LABELS, QQP_LABELS)),
    **dict(zip(QQP_LABELS, MRPC_LABELS)),
}

QA_INIT_WORDS = ("question", "answering", "reading", "comprehension")  # our choice; not in the paper


def _qa_task(name: str, source: Source, splits: tuple[str, ...], prep) -> Task:
    return Task(
        name=name,
        kind="generation",
        verbalizers=(),
        primary_metric="f1",
        splits=splits,
        init_words=QA_INIT_WORDS,
        source=source,
        preprocess=prep,
        scorer=score_squad,
    )


def _build() -> dict[str, Task]:
    tasks = [
        _classification(
            "mrpc", MRPC_LABELS, ("sentence1", "sentence2"),
            _glue("MRPC", "mrpc", loaders.read_mrpc), score_paraphrase, "average",
        ),
        _classification(
            "qqp", QQP_LABELS, ("question1", "question2"),
            _glue("QQP", "qqp", loaders.read_qqp), score_paraphrase, "average",
        ),
        _classification(
            "boolq", BOOL, ("passage", "question"),
            _superglue("BoolQ", "boolq", loaders.superglue_reader(("question", "passage"))),
        ),
        _classification(
            "cb", NLI3, ("hypothesis", "premise"),
            _superglue("CB", "cb", loaders.superglue_reader(("premise", "hypothesis"), NLI3)),
            score_cb, "average",
        ),
        _classification(
            "copa", ("choice1", "choice2"), ("choice1", "choice2", "premise", "question"),
            _superglue("COPA", "copa", loaders.superglue_reader(("premise", "choice1", "choice2", "question"))),
        ),
        _classification(
            "multirc", BOOL, ("question", "answer", "paragraph"),
            _superglue("MultiRC", "multirc", loaders.read_multirc), score_multirc, "average", multirc=True,
        ),
        _classification(
            "rte", NLI2, ("hypothesis", "premise"),
            _superglue("RTE", "rte", loaders.superglue_reader(("premise", "hypothesis"), NLI2)),
        ),
        _classification(
            "wic", BOOL, ("sentence1", "sentence2", "word"),
            _superglue("WiC", "wic", loaders.superglue_reader(
                ("word", "sentence1", "sentence2", "start1", "start2", "end1", "end2"))),
        ),
        Task(
            name="record", kind="generation", verbalizers=(), primary_metric="average",
            splits=ALL_SPLITS, init_words=("commonsense", "reasoning", "reading", "comprehension"),
            source=_superglue("ReCoRD", "record", loaders.read_record),
            preprocess=preprocess.record, scorer=score_record,
        ),
        Task(
            name="wsc", kind="generation", verbalizers=(), primary_metric="accuracy",
            splits=ALL_SPLITS, init_words=("commonsense", "pronoun", "resolution"),
            source=_superglue("WSC", "wsc.fixed", loaders.read_wsc),
            preprocess=preprocess.wsc, scorer=score_wsc,
        ),
        _qa_task(
            "squad",
            Source({"train": ("squad/train-v1.1.json",), "validation": ("squad/dev-v1.1.json",)},
                   loaders.read_squad, (SQUAD_HUB, None)),
            ("train", "validation"), preprocess.squad,
        ),
    ]
    mrqa_sets = {
        "bioasq": (("BioASQ",), "BioASQ"),
        "drop": (("DROP",), "DROP"),
        "duorc": (("DuoRC.ParaphraseRC", "DuoRC"), "DuoRC.ParaphraseRC"),
        "race": (("RACE",), "RACE"),
        "relation_extraction": (("RelationExtraction",), "RelationExtraction"),
        "textbookqa": (("TextbookQA",), "TextbookQA"),
    }
    for name, (stems, subset) in mrqa_sets.items():
        tasks.append(_qa_task(name, _mrqa(stems, subset), ("validation",), preprocess.mrqa))
    return {t.name: t for t in tasks}


TASKS: dict[str, Task] = _build()


def get_task(name: str) -> Task:
    """Task by name (case-insensitive, '-' accepted for '_')."""
    key = name.strip().lower().replace("-", "_")
    try:
        return TASKS[key]
    except KeyError:
        raise KeyError(f"unknown task {name!r}; known: {', '.join(TASKS)}") from None
