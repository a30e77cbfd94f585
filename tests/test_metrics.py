"""Metrics against hand-computed cases and edge cases (fractions in [0, 1])."""

import math
import warnings

import pytest

from tuning.tasks import metrics


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


# --- SQuAD normalisation, EM, F1 -------------------------------------------------------


@pytest.mark.parametrize(
    "raw, normalized",
    [
        ("The Denver Broncos!", "denver broncos"),
        ("  an   apple,  a pie ", "apple pie"),
        ("Theater", "theater"),  # article removal is word-bounded
        ("U.S.", "us"),
        ("", ""),
    ],
)
def test_normalize_answer(raw, normalized):
    assert metrics.normalize_answer(raw) == normalized


def test_em_ignores_case_punctuation_articles():
    assert metrics.exact_match("the Denver Broncos.", "Denver Broncos") == 1.0
    assert metrics.exact_match("Denver", "Denver Broncos") == 0.0


def test_token_f1_partial_credit():
    # pred {denver}, gold {denver, broncos}: P=1, R=1/2 -> F1=2/3
    assert close(metrics.token_f1("Denver", "the Denver Broncos"), 2 / 3)
    # repeated tokens count with multiplicity: pred a a b vs gold a b -> overlap 2, P=2/3, R=1
    assert close(metrics.token_f1("x x y", "x y"), 0.8)
    assert metrics.token_f1("cat", "dog") == 0.0


def test_empty_prediction():
    assert metrics.token_f1("", "Denver") == 0.0
    assert metrics.exact_match("", "Denver") == 0.0
    # a gold answer that normalises to "" still only gets EM credit (official v1.1 script)
    assert metrics.exact_match("", "the") == 1.0
    assert metrics.token_f1("", "the") == 0.0


def test_squad_max_over_gold_answers():
    preds = ["Denver Broncos", "Santa Clara", "nothing"]
    golds = [
        ["Carolina Panthers", "the Denver Broncos"],
        ["Levi's Stadium", "Santa Clara, California"],
        ["something"],
    ]
    out = metrics.squad_em_f1(preds, golds)
    # q1: EM 1, F1 1; q2: EM 0, F1 = 2*(1*2/3)/(1+2/3) = 0.8; q3: 0, 0
    assert close(out["em"], 1 / 3)
    assert close(out["f1"], (1 + 0.8 + 0) / 3)


def test_squad_rejects_mismatch_and_missing_gold():
    with pytest.raises(ValueError):
        metrics.squad_em_f1(["a"], [["a"], ["b"]])
    with pytest.raises(ValueError):
        metrics.squad_em_f1(["a"], [[]])


# --- classification --------------------------------------------------------------------


def test_accuracy():
    assert metrics.accuracy(["a", "b", "b", "x"], ["a", "b", "a", "a"]) == 0.5
    with pytest.raises(ValueError):
        metrics.accuracy([], [])


def test_binary_f1_hand_computed():
    pos, neg = "equivalent", "not_equivalent"
    targets = [pos, pos, pos, neg, neg]
    preds = [pos, pos, neg, pos, neg]  # tp=2 fp=1 fn=1 -> F1 = 4/6
    assert close(metrics.binary_f1(preds, targets, pos, neg), 2 / 3)


def test_binary_f1_invalid_prediction_counts_wrong():
    pos, neg = "duplicate", "not_duplicate"
    # invalid on a positive target -> false negative; on a negative target -> false positive
    targets = [pos, neg, pos]
    preds = ["garbage", "", pos]  # tp=1 fn=1 fp=1 -> 0.5
    assert close(metrics.binary_f1(preds, targets, pos, neg), 0.5)


def test_binary_f1_single_class_present():
    neg, pos = "not_equivalent", "equivalent"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no sklearn UndefinedMetricWarning
        assert metrics.binary_f1([neg, neg], [neg, neg], pos, neg) == 1.0
        assert metrics.binary_f1([pos, neg], [neg, neg], pos, neg) == 0.0
        assert metrics.binary_f1([neg, neg], [pos, pos], pos, neg) == 0.0
        assert metrics.binary_f1([pos, pos], [pos, pos], pos, neg) == 1.0


def test_macro_f1_hand_computed():
    labels = ("entailment", "contradiction", "neutral")
    targets = ["entailment", "entailment", "contradiction", "neutral"]
    preds = ["entailment", "contradiction", "contradiction", "entailment"]
    # entailment: tp1 fp1 fn1 -> .5 ; contradiction: tp1 fp1 fn0 -> 2/3 ; neutral: 0
    assert close(metrics.macro_f1(preds, targets, labels), (0.5 + 2 / 3 + 0) / 3)


def test_macro_f1_single_class_and_invalid():
    labels = ("entailment", "contradiction", "neutral")
    assert metrics.macro_f1(["neutral"] * 3, ["neutral"] * 3, labels) == 1.0
    # an invalid prediction is a miss for its target class and a hit for no class
    assert close(metrics.macro_f1(["neutral", "???"], ["neutral", "neutral"], labels), 2 / 3)
    with pytest.raises(ValueError):
        metrics.macro_f1(["x"], ["not a label"], labels)


def test_multirc_em_and_f1a():
    targets = ["True", "False", "True", "False", "True"]
    preds = ["True", "False", "False", "False", "oops"]
    groups = ["q1", "q1", "q2", "q2", "q3"]
    out = metrics.multirc_em_f1a(preds, targets, groups)
    assert out["em"] == 1 / 3  # only q1 fully right
    # positives: tp=1 (a1), fn=2 (a3, invalid a5), fp=0 -> F1 = 2/(2+2) = 0.5
    assert close(out["f1a"], 0.5)


# --- WSC -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pred, referent, expected",
    [
        ("the young gentleman", "young gentleman", 1),
        ("Gentleman", "the young gentleman", 1),  # subset of words
        ("fuzzy bunny", "bunny", 1),  # superset
        ("Bob", "Bob's hat", 0),  # possessive mismatch
        ("the dog", "the cat", 0),
        ("", "the cat", -1),
        ("the", "the cat", -1),  # only a determiner -> empty
    ],
)
def test_wsc_referent_match(pred, referent, expected):
    assert metrics.wsc_referent_match(pred, referent) == expected


def test_wsc_accuracy_uses_label():
    # candidate right (label 1) and named -> correct; candidate wrong (0) and named -> wrong;
    # candidate wrong and not named -> correct; empty prediction never correct.
    preds = ["Tom", "Tom", "Mitchell", ""]
    referents = ["Tom", "Tom", "Tom", "Tom"]
    labels = [1, 0, 0, 0]
    assert metrics.wsc_accuracy(preds, referents, labels) == 0.5


# --- SuperGLUE average -----------------------------------------------------------------


def test_superglue_average():
    scores = {
        "boolq": {"accuracy": 0.8},
        "cb": {"accuracy": 0.9, "macro_f1": 0.7, "average": 0.8},
        "multirc": {"em": 0.4, "f1a": 0.8, "average": 0.6},
        "record": {"em": 0.5, "f1": 0.6, "average": 0.55},
    }
    assert close(metrics.superglue_average(scores), (0.8 + 0.8 + 0.6 + 0.55) / 4)
    with pytest.raises(KeyError):
        metrics.superglue_average({"cb": {"accuracy": 1.0}})
    with pytest.raises(ValueError):
        metrics.superglue_average({})
