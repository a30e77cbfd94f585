"""Core types of the task layer: examples, tasks, errors and the data location.

Every benchmark is cast as text-to-text (paper §3, "Following the text-to-text approach
of T5"): a task turns raw rows into `Example`s holding an input string and a target
string, and scores predicted strings with the benchmark's own metric.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

from . import loaders
from .errors import DatasetUnavailable, TaskError  # noqa: F401  (re-exported)

DATA_ENV = "PROMPT_TUNING_DATA"
# tuning/tasks/base.py -> parents[2] is the project root; the shared data sits beside it.
DEFAULT_DATA_DIR = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"





def data_dir(path: str | os.PathLike | None = None) -> Path:
    """Where the benchmark files live.

    Order: the explicit `path`, else the PROMPT_TUNING_DATA environment variable, else
    `<project root>/../shared/data`. The directory holds the original formats, e.g.
    glue/MRPC/train.tsv, superglue/CB/val.jsonl, squad/dev-v1.1.json, mrqa/RACE.jsonl.gz.
    """
    if path is None:
        path = os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR
    return Path(path).expanduser().resolve()


_resolve_data_dir = data_dir  # Task methods take a parameter named data_dir


@dataclass(frozen=True)
class Example:
    """One text-to-text example.

    `label` is the index into `Task.verbalizers` for classification tasks. The one
    generation task that has a truth label is WSC: there `label` is 1 when the marked
    candidate (`target_text`) is the pronoun's referent and 0 otherwise, because T5 scores
    WSC by comparing "did the model name this candidate" with that label. Unlabelled
    (test) examples have `label=None`, `target_text=""` and `answers=()`.
    """

    input_text: str
    target_text: str
    answers: tuple[str, ...]
    label: int | None = None
    group: str | None = None
    uid: str = ""


# A preprocessor turns one raw row (Hugging Face column layout) of a split into examples;
# it may return none (WSC training keeps only correct referents) or several (ReCoRD
# training yields one example per gold answer, as T5 does).
Preprocessor = Callable[[Mapping, str], Iterable[Example]]
Scorer = Callable[["Task", Sequence[str], Sequence[Example]], dict]


@dataclass(frozen=True)
class Task:
    """A benchmark cast as text-to-text.

    kind: "classification" (rank classification over `verbalizers`) or "generation".
    primary_metric: key of `score()`'s dict used for early stopping. The paper stops on
      "the default metric for the dataset, or the average of metrics for datasets
      evaluated with multiple metrics" (§3), so multi-metric tasks use "average";
      SQuAD/MRQA use "f1" (Appendix A.1).
    init_words: words whose embeddings initialise a "class label" prompt (§3.2); the
      verbalizers for classification, task words for generation tasks (footnote 7).
    """

    name: str
    kind: str
    verbalizers: tuple[str, ...]
    primary_metric: str
    splits: tuple[str, ...]
    init_words: tuple[str, ...]
    source: object = field(repr=False, compare=False)  # loaders.Source
    preprocess: Preprocessor = field(repr=False, compare=False)
    scorer: Scorer = field(repr=False, compare=False)

    def read_rows(self, split: str, data_dir: str | os.PathLike | None = None) -> Iterable[Mapping]:
        """Raw rows of a split in the Hugging Face column layout (lazy for local files)."""
        self._check_split(split)
        return loaders.read_rows(self.source, split, _resolve_data_dir(data_dir), self.name)

    def load(
        self,
        split: str,
        data_dir: str | os.PathLike | None = None,
        limit: int | None = None,
    ) -> list[Example]:
        """Examples of a split, in file order; `limit` keeps the first `limit` of them (the same subset
        every time)."""
        out: list[Example] = []
        if limit is not None and limit <= 0:
            return out
        for row in self.read_rows(split, data_dir):
            for ex in self.preprocess(row, split):
                out.append(ex)
                if limit is not None and len(out) >= limit:
                    return out
        return out

    def normalize_prediction(self, text: str) -> str:
        """Decoded text -> prediction string; only surrounding whitespace is dropped."""
        return text.strip()

    def score(self, predictions: Sequence[str], examples: Sequence[Example]) -> dict[str, float]:
        """Benchmark metrics as fractions in [0, 1] (keys: accuracy, f1, macro_f1, em, f1a,
        plus "average" for tasks with several metrics). Predictions that are not a
        verbalizer count as wrong."""
        if len(predictions) != len(examples):
            raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
        if not examples:
            raise ValueError("cannot score an empty set of examples")
        if any(not ex.answers for ex in examples):
            raise ValueError(f"{self.name}: cannot score unlabelled examples (test split)")
        preds = [self.normalize_prediction(p) for p in predictions]
        return self.scorer(self, preds, examples)

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise ValueError(f"{self.name} has no split {split!r}; available: {', '.join(self.splits)}")
