"""Readers for the benchmarks' original file formats, with a Hugging Face hub fallback.

Every reader yields rows in the Hugging Face column layout (which mirrors the
TensorFlow Datasets layout T5 preprocesses, Appendix A.3), so one preprocessor per task
serves both sources. The hub is tried only when the local file is absent and is skipped
when HF_DATASETS_OFFLINE=1 or HF_HUB_OFFLINE=1; any failure becomes DatasetUnavailable.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from .errors import DatasetUnavailable

Row = dict
Reader = Callable[[Path], Iterator[Row]]

OFFLINE_ENV = ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE")


@dataclass(frozen=True)
class Source:
    """Where a task's rows come from.

    local: split -> candidate paths relative to the data directory (the first is the one
      named in error messages).
    hub: (dataset id, config) for `datasets.load_dataset`; subset keeps only rows whose
      "subset" column equals it (MRQA).
    """

    local: Mapping[str, tuple[str, ...]]
    reader: Reader
    hub: tuple[str, str | None]
    hub_splits: Mapping[str, str] = field(default_factory=dict)
    subset: str | None = None

    def hub_name(self) -> str:
        path, config = self.hub
        name = f"{path} (config {config})" if config else path
        return f"{path} (subset {self.subset})" if self.subset else name


def read_rows(source: Source, split: str, root: Path, task: str) -> Iterable[Row]:
    """Rows of `split`: the local file when present, else the hub, else DatasetUnavailable."""
    candidates = [root / rel for rel in source.local[split]]
    for path in candidates:
        if path.is_file():
            return source.reader(path)
    return _hub_rows(source, split, task, candidates[0])


_hub_unreachable: list[str] = []  # set once the hub has failed to answer: later loads skip its retries


def hub_disabled() -> bool:
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"} for v in OFFLINE_ENV)


def _hub_rows(source: Source, split: str, task: str, local: Path) -> list[Row]:
    hub_split = source.hub_splits.get(split, split)

    def unavailable(reason: str) -> DatasetUnavailable:
        reason = " ".join(reason.split())[:200]
        return DatasetUnavailable(
            f"{task} {split} split unavailable: provide {local} or allow the Hugging Face hub "
            f"dataset {source.hub_name()} split {hub_split} ({reason})"
        )

    if hub_disabled():
        raise unavailable("hub disabled by HF_DATASETS_OFFLINE/HF_HUB_OFFLINE")
    if _hub_unreachable:  # each try costs a minute of retries (datasets' own); one refusal per process is enough
        raise unavailable(f"the hub did not answer earlier in this process: {_hub_unreachable[0]}")
    try:
        import datasets
    except ImportError as err:
        raise unavailable("the datasets package is not installed") from err
    path, config = source.hub
    first_error: Exception | None = None
    # Script-based hub datasets (super_glue) load in recent `datasets` only through the
    # hub's automatic parquet conversion, hence the second try.
    for revision in (None, "refs/convert/parquet"):
        try:
            ds = datasets.load_dataset(path, config, split=hub_split, revision=revision)
            if source.subset is not None:
                ds = ds.filter(lambda s: s == source.subset, input_columns="subset")
            return [dict(r) for r in ds]
        except Exception as err:  # any hub/network/cache problem means "not available"
            first_error = first_error or err
            if _unreachable(err):
                _hub_unreachable.append(f"{type(err).__name__}")
                break  # no point retrying through another revision
    raise unavailable(f"{type(first_error).__name__}: {first_error}") from first_error


def _unreachable(err: Exception) -> bool:
    name = type(err).__name__
    return isinstance(err, (ConnectionError, TimeoutError)) or "Connection" in name or "Offline" in name


# --- GLUE TSV -------------------------------------------------------------------------


def _tsv(path: Path) -> Iterator[dict]:
    # QUOTE_NONE: the sentences contain unbalanced quotes; utf-8-sig: MRPC has a BOM.
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        for r in reader:
            if None in r or any(v is None for v in r.values()):
                continue  # malformed line (GLUE QQP has a few); TFDS skips them too
            yield r


def read_mrpc(path: Path) -> Iterator[Row]:
    """GLUE MRPC: Quality, #1 ID, #2 ID, #1 String, #2 String (test: index instead of Quality)."""
    for i, r in enumerate(_tsv(path)):
        label = int(r["Quality"]) if "Quality" in r else -1
        yield {"sentence1": r["#1 String"], "sentence2": r["#2 String"], "label": label, "idx": i}


def read_qqp(path: Path) -> Iterator[Row]:
    """GLUE QQP: id, qid1, qid2, question1, question2, is_duplicate (test: id, q1, q2)."""
    for i, r in enumerate(_tsv(path)):
        label = int(r["is_duplicate"]) if "is_duplicate" in r else -1
        yield {"question1": r["question1"], "question2": r["question2"], "label": label, "idx": i}


# --- SuperGLUE jsonl ------------------------------------------------------------------


def _jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _label(value, names: tuple[str, ...]) -> int:
    """SuperGLUE labels are strings, booleans or ints; missing (test) -> -1."""
    if value is None:
        return -1
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        return names.index(value)
    return int(value)


def superglue_reader(fields: tuple[str, ...], names: tuple[str, ...] = ()) -> Reader:
    """Reader for the flat SuperGLUE tasks (BoolQ, CB, COPA, RTE, WiC)."""

    def read(path: Path) -> Iterator[Row]:
        for d in _jsonl(path):
            row = {k: d[k] for k in fields}
            row["idx"] = d["idx"]
            row["label"] = _label(d.get("label"), names)
            yield row

    return read


def read_wsc(path: Path) -> Iterator[Row]:
    """SuperGLUE WSC: the spans sit under "target"; HF (wsc.fixed) flattens them."""
    for d in _jsonl(path):
        t = d["target"]
        yield {
            "text": d["text"],
            "span1_index": t["span1_index"],
            "span2_index": t["span2_index"],
            "span1_text": t["span1_text"],
            "span2_text": t["span2_text"],
            "idx": d["idx"],
            "label": _label(d.get("label"), ()),
        }


def read_multirc(path: Path) -> Iterator[Row]:
    """SuperGLUE MultiRC: one line per paragraph -> one row per (question, answer option)."""
    for d in _jsonl(path):
        passage = d["passage"]
        for q in passage["questions"]:
            for a in q["answers"]:
                yield {
                    "paragraph": passage["text"],
                    "question": q["question"],
                    "answer": a["text"],
                    "idx": {"paragraph": d["idx"], "question": q["idx"], "answer": a["idx"]},
                    "label": _label(a.get("label"), ()),
                }


def read_record(path: Path) -> Iterator[Row]:
    """SuperGLUE ReCoRD: one line per passage -> one row per query.

    Entity spans are inclusive character offsets; like TFDS, the entity strings are
    de-duplicated and sorted, and so are the answers.
    """
    for d in _jsonl(path):
        text = d["passage"]["text"]
        entities = sorted({text[e["start"] : e["end"] + 1] for e in d["passage"]["entities"]})
        for q in d["qas"]:
            yield {
                "passage": text,
                "query": q["query"],
                "entities": entities,
                "answers": sorted({a["text"] for a in q.get("answers", [])}),
                "idx": {"passage": d["idx"], "query": q["idx"]},
            }


# --- SQuAD JSON and MRQA jsonl.gz -----------------------------------------------------


def read_squad(path: Path) -> Iterator[Row]:
    """SQuAD v1.1 JSON: data -> paragraphs -> qas; one row per question."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)["data"]
    for article in data:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                yield {
                    "id": qa["id"],
                    "title": article.get("title", ""),
                    "context": para["context"],
                    "question": qa["question"],
                    "answers": {
                        "text": [a["text"] for a in qa["answers"]],
                        "answer_start": [a["answer_start"] for a in qa["answers"]],
                    },
                }


def read_mrqa(path: Path) -> Iterator[Row]:
    """MRQA 2019 jsonl.gz: a header line, then one context per line with its "qas"."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        subset = None
        for line in f:
            d = json.loads(line)
            if "header" in d:
                subset = d["header"].get("dataset")
                continue
            for qa in d["qas"]:
                yield {
                    "subset": subset,
                    "context": d["context"],
                    "qid": qa["qid"],
                    "question": qa["question"],
                    "answers": list(qa["answers"]),
                }
