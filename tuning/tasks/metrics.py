"""Benchmark metrics, following the T5 evaluation code the paper reuses (Appendix A.1).

All scores are fractions in [0, 1]. Classification metrics take strings (the decoded or
rank-classified verbalizers); a prediction outside the label set is counted wrong, as in
T5's `f1_score_with_invalid`.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Mapping, Sequence

from sklearn.metrics import accuracy_score, f1_score

__all__ = [
    "normalize_answer",
    "exact_match",
    "token_f1",
    "squad_em_f1",
    "accuracy",
    "binary_f1",
    "macro_f1",
    "multirc_em_f1a",
    "wsc_referent_match",
    "wsc_accuracy",
    "mean",
    "SUPERGLUE_METRICS",
    "superglue_average",
]


def _check(predictions: Sequence, targets: Sequence) -> None:
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets")
    if not targets:
        raise ValueError("no examples to score")


# --- SQuAD-style extractive QA (SQuAD, MRQA, ReCoRD) ----------------------------------

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Official SQuAD v1.1 normalisation: lowercase, drop punctuation and articles,
    collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """Bag-of-tokens F1 after normalisation (partial answer spans earn partial credit)."""
    pred = normalize_answer(prediction).split()
    ref = normalize_answer(gold).split()
    # As in the official v1.1 script (and T5's qa_utils), no shared token means 0, even
    # when both sides normalise to "" (where exact_match still gives 1).
    common = collections.Counter(pred) & collections.Counter(ref)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def squad_em_f1(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, float]:
    """Mean over questions of the max EM / F1 over that question's gold answers."""
    _check(predictions, answers)
    em = f1 = 0.0
    for pred, golds in zip(predictions, answers):
        if not golds:
            raise ValueError("a question without gold answers cannot be scored")
        em += max(exact_match(pred, g) for g in golds)
        f1 += max(token_f1(pred, g) for g in golds)
    n = len(predictions)
    return {"em": em / n, "f1": f1 / n}


# --- classification -------------------------------------------------------------------


def accuracy(predictions: Sequence[str], targets: Sequence[str]) -> float:
    _check(predictions, targets)
    return float(accuracy_score(list(targets), list(predictions)))


def binary_f1(
    predictions: Sequence[str], targets: Sequence[str], positive: str, negative: str | None = None
) -> float:
    """F1 of the `positive` class (GLUE MRPC/QQP, MultiRC F1a).

    With `negative` given, a prediction that is neither label is counted wrong: it becomes
    the opposite of its target. When neither targets nor predictions contain the positive
    class the score is 1.0 (nothing to find, nothing falsely found).
    """
    _check(predictions, targets)
    y_true = [t == positive for t in targets]
    y_pred = []
    for p, t in zip(predictions, y_true):
        valid = negative is None or p in (positive, negative)
        y_pred.append(p == positive if valid else not t)
    return float(f1_score(y_true, y_pred, pos_label=True, zero_division=1.0))


def macro_f1(predictions: Sequence[str], targets: Sequence[str], labels: Sequence[str]) -> float:
    """Unweighted mean of per-class F1 (SuperGLUE CB).

    Averages over the classes present in targets or (valid) predictions, so a subset with
    a single class is not dragged down by absent classes; on the full CB dev set all three
    are present and this equals T5's `mean_multiclass_f1`. Invalid predictions are
    counted as misses of their target class.
    """
    _check(predictions, targets)
    label_set = set(labels)
    if not set(targets) <= label_set:
        raise ValueError(f"targets outside the label set {sorted(label_set)}")
    preds = [p if p in label_set else "\0invalid" for p in predictions]
    present = [lab for lab in labels if lab in set(targets) or lab in set(preds)]
    return float(f1_score(list(targets), preds, labels=present, average="macro", zero_division=0.0))


def multirc_em_f1a(
    predictions: Sequence[str],
    targets: Sequence[str],
    groups: Sequence[str],
    positive: str = "True",
    negative: str = "False",
) -> dict[str, float]:
    """MultiRC: EM = fraction of questions (groups) whose answer options are all right;
    F1a = binary F1 over all answer options."""
    _check(predictions, targets)
    if len(groups) != len(targets):
        raise ValueError("one group id per answer option is required")
    per_question: dict[str, bool] = {}
    for p, t, g in zip(predictions, targets, groups):
        per_question[g] = per_question.get(g, True) and p == t
    em = sum(per_question.values()) / len(per_question)
    return {"em": em, "f1a": binary_f1(predictions, targets, positive, negative)}


# --- WSC as referent generation -------------------------------------------------------

_DETERMINERS = frozenset(
    "a an few her his each every many much my our some that the their these this those which whose your".split()
)


def _clean_referent(text: str) -> str:
    text = text.strip().lower()
    return " ".join(w for w in text.split(" ") if w not in _DETERMINERS)


def wsc_referent_match(prediction: str, referent: str) -> int:
    """T5's `wsc_simple` postprocessor: 1 if the prediction names the candidate, 0 if not,
    -1 for an empty prediction (so it never matches a 0 label by accident).

    Case and determiners are ignored; a prediction whose words are a subset or superset of
    the candidate's matches ("fuzzy bunny" ~ "bunny"), unless exactly one has a possessive
    apostrophe ("Bob" is not "Bob's hat").
    """
    pred, ref = _clean_referent(prediction), _clean_referent(referent)
    if not pred:
        return -1
    if ("'" in pred) != ("'" in ref):
        return 0
    pw, rw = set(pred.split(" ")), set(ref.split(" "))
    return int(pw <= rw or rw <= pw)


def wsc_accuracy(predictions: Sequence[str], referents: Sequence[str], labels: Sequence[int]) -> float:
    """Accuracy of "the model named this candidate" against "the candidate is the referent"."""
    _check(predictions, referents)
    hits = [wsc_referent_match(p, r) == int(lab) for p, r, lab in zip(predictions, referents, labels)]
    return sum(hits) / len(hits)


# --- aggregation ----------------------------------------------------------------------


def mean(values: Sequence[float]) -> float:
    values = list(values)
    if not values:
        raise ValueError("mean of no values")
    return sum(values) / len(values)


# Metrics that make up each SuperGLUE task's score (a task with two is their mean).
SUPERGLUE_METRICS: dict[str, tuple[str, ...]] = {
    "boolq": ("accuracy",),
    "cb": ("accuracy", "macro_f1"),
    "copa": ("accuracy",),
    "multirc": ("em", "f1a"),
    "record": ("em", "f1"),
    "rte": ("accuracy",),
    "wic": ("accuracy",),
    "wsc": ("accuracy",),
}


def superglue_average(scores: Mapping[str, Mapping[str, float]]) -> float:
    """SuperGLUE score: mean over tasks of each task's score, where a task reported with
    two metrics contributes their mean. `scores` maps task name -> `Task.score()` dict;
    tasks not in SUPERGLUE_METRICS contribute the mean of all their metrics except
    "average"."""
    if not scores:
        raise ValueError("no task scores to average")
    per_task = []
    for name, metrics in scores.items():
        keys = SUPERGLUE_METRICS.get(name) or tuple(k for k in metrics if k != "average")
        missing = [k for k in keys if k not in metrics]
        if missing:
            raise KeyError(f"{name}: missing metric(s) {missing}")
        per_task.append(mean([metrics[k] for k in keys]))
    return mean(per_task)
