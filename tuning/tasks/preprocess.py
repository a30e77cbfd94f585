"""T5's text-to-text preprocessing (t5/data/preprocessors.py), minus the task-name prefix.

The paper follows "the open-source T5 preprocessing procedure for each dataset, except
that we omit the dataset prefix denoting which SuperGLUE dataset an example belongs to"
(Appendix A.3), and uses T5's SQuAD preprocessing for SQuAD and MRQA. Each function here
maps one raw row (Hugging Face column layout) of a split to zero or more Examples.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Iterable, Mapping, Sequence

from .base import Example


def join_fields(row: Mapping, fields: Sequence[str]) -> str:
    """T5 `glue`: "key1: value1 key2: value2 ..." (T5 sorts the keys when none are given)."""
    return " ".join(f"{key}: {row[key]}" for key in fields)


def classification(fields: Sequence[str], verbalizers: Sequence[str], multirc: bool = False):
    """GLUE/SuperGLUE classification rows -> one Example whose target is a verbalizer."""

    def preprocess(row: Mapping, split: str) -> Iterable[Example]:
        text = join_fields(row, fields)
        idx = row["idx"]
        if multirc:
            # T5 strips MultiRC's HTML markup from the joined text.
            text = re.sub(r"<(/)?b>", "", text.replace("<br>", " "))
            group = f"{idx['paragraph']}-{idx['question']}"
            uid = f"{group}-{idx['answer']}"
        else:
            group, uid = None, str(idx)
        label = int(row["label"])
        if label < 0:  # unlabelled test row
            return [Example(text, "", (), None, group, uid)]
        target = verbalizers[label]
        return [Example(text, target, (target,), label, group, uid)]

    return preprocess


def mark_span(text: str, span: str, word_index: int, mark: str = "*") -> str:
    """T5 `wsc_simple`: surround the span that starts at whitespace-word `word_index`
    with `mark` ("... take his claim away from * him * .")."""
    pattern = r"^((?:\S+\s){%d})(%s)" % (word_index, re.escape(span))
    return re.sub(pattern, lambda m: f"{m.group(1)}{mark} {m.group(2)} {mark}", text, count=1)


def wsc(row: Mapping, split: str) -> Iterable[Example]:
    """WSC as free-form generation of the referent (Appendix A.3): the pronoun is marked
    and the target is the candidate span1_text. As in T5, training keeps only rows whose
    candidate is the correct referent; evaluation keeps all rows, with the label saying
    whether the candidate is right."""
    label = int(row["label"])
    if split == "train" and label != 1:
        return []
    text = mark_span(row["text"], row["span2_text"], int(row["span2_index"]))
    target = row["span1_text"]
    uid = str(row["idx"])
    if label < 0:
        return [Example(text, "", (), None, None, uid)]
    return [Example(text, target, (target,), label, None, uid)]


def record(row: Mapping, split: str) -> Iterable[Example]:
    """T5 `record`: "query: Q entities: E1, E2 passage: P" with @highlight lines turned into
    sentences. T5 emits one example per gold answer; that is kept for training, while
    evaluation uses one example per query carrying all answers (T5 de-duplicates per
    query when scoring, so the metric is the same)."""
    passage = re.sub(r"(\.|\?|\!|\"|')\n@highlight\n", r"\1 ", row["passage"])
    passage = re.sub(r"\n@highlight\n", ". ", passage)
    entities = ", ".join(sorted(set(row["entities"])))
    text = f"query: {row['query']} entities: {entities} passage: {passage}"
    group = f"{row['idx']['passage']}-{row['idx']['query']}"
    answers = tuple(sorted(set(row["answers"])))
    if not answers:
        return [Example(text, "", (), None, group, group)]
    if split == "train":
        return [Example(text, a, answers, None, group, f"{group}-{i}") for i, a in enumerate(answers)]
    return [Example(text, answers[0], answers, None, group, group)]


@functools.lru_cache(maxsize=64)  # consecutive questions share one context
def pad_punctuation(text: str) -> str:
    """T5 `_pad_punctuation`: spaces around every character that is not a letter, number,
    mark, underscore or whitespace; then whitespace runs collapse to one space."""

    def pad(m: re.Match) -> str:
        ch = m.group(0)
        return ch if unicodedata.category(ch).startswith("M") else f" {ch} "

    return " ".join(re.sub(r"[^\w\s]", pad, text).split())


def _qa(question: str, context: str, answers: Sequence[str], uid: str) -> list[Example]:
    text = f"question: {pad_punctuation(question)} context: {pad_punctuation(context)}"
    golds = tuple(pad_punctuation(a) for a in answers)
    if not golds:
        return [Example(text, "", (), None, None, uid)]
    return [Example(text, golds[0], golds, None, None, uid)]


def squad(row: Mapping, split: str) -> Iterable[Example]:
    """T5 `squad`: "question: Q context: C" with punctuation padded in question, context and
    answers; the target is the first answer, all answers are kept for the metric."""
    return _qa(row["question"], row["context"], list(row["answers"]["text"]), str(row["id"]))


def mrqa(row: Mapping, split: str) -> Iterable[Example]:
    """MRQA out-of-domain sets, preprocessed exactly like SQuAD (Appendix A.3)."""
    return _qa(row["question"], row["context"], list(row["answers"]), str(row["qid"]))
