"""One forward pass for B examples × N prompts, mixed tasks allowed (paper §6, Figure 2).

Data flow: (task, text) items → rows (example, prompt) → length-sorted micro-batches → scores or
generations per row → votes per example. Causal backbones read each prompt as precomputed keys and
values (computed once per prompt-bank version), so only the input tokens run per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import torch

from tuning.encoding import input_ids
from tuning.inference import Row, answer_rows, new_stats
from tuning.model import PromptedLM, PrefixKV

from . import calibration
from .bank import PromptBank
from .vote import VOTINGS, majority_vote, mean_probability_vote


@dataclass
class Prediction:
    task: str
    prediction: str
    votes: dict[str, int]
    agreement: float
    answers: list[str]                       # each prompt's answer, in bank order
    prompts: list[str]                       # the prompts' names
    scores: list[list[float]] | None = None  # classification: log-likelihood of each label, per prompt


class EnsembleEngine:
    """Ensemble inference over a `PromptBank`.

    `max_rows` caps the rows of one pass. None: the size measured fastest on this device, read from
    the calibration cache or measured now (`calibrate`), so that splitting B×N rows is never slower
    than running the prompts one after another.
    """

    def __init__(self, bank: PromptBank, shared_prefix: bool = True, max_rows: int | None = 32,
                 max_input_length: int = 256, max_new_tokens: int = 32, bucket: bool = True):
        self.bank = bank
        self.backbone = bank.backbone
        self.lm = PromptedLM(bank.backbone)
        self.shared_prefix = shared_prefix and not self.backbone.is_encoder_decoder
        self.max_rows = max_rows or 32
        self.max_input_length = max_input_length
        self.max_new_tokens = max_new_tokens
        self.bucket = bucket
        self._cache_version = -1
        self._groups: dict[int, tuple[torch.Tensor | PrefixKV, dict[str, int]]] = {}
        self.stats = new_stats()
        if max_rows is None:
            self.max_rows = calibration.lookup(self.backbone) or self.calibrate()

    # ---- prompt groups: all prompts of one length, stacked, cached per bank version ----------
    def _group(self, length: int):
        if self._cache_version != self.bank.version:
            self._groups, self._cache_version = {}, self.bank.version
        if length not in self._groups:
            offsets, stacks, start = {}, [], 0
            for name, tp in sorted(self.bank.tasks.items()):
                if tp.length == length:
                    offsets[name], start = start, start + tp.n
                    stacks.append(tp.prompts)
            prompts = torch.cat(stacks).to(self.backbone.device, self.backbone.dtype)
            with torch.no_grad():
                source = self.lm.prefix_kv(prompts) if self.shared_prefix else prompts
            self._groups[length] = (source, offsets)
        return self._groups[length]

    # ---- public API --------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, items: Sequence[tuple[str, str]], voting: str | Sequence[str] = "majority") -> list[Prediction]:
        """Predict each (task, input text) with its task's N prompts, all in as few passes as possible.

        `voting`: one rule for all items, or one per item (a server batch mixes requests)."""
        votings = [voting] * len(items) if isinstance(voting, str) else list(voting)
        bad = sorted(set(votings) - set(VOTINGS))
        if bad or len(votings) != len(items):
            raise ValueError(f"voting must be one of {', '.join(VOTINGS)} (one, or one per item), not {bad or voting!r}")
        for task, _ in items:
            if task not in self.bank.tasks:
                raise KeyError(f"no prompts loaded for task {task!r}; loaded: {', '.join(sorted(self.bank.tasks)) or 'none'}")
        tasks = {name: self.bank.tasks[name] for name, _ in items}
        answers = [[None] * tasks[t].n for t, _ in items]
        scores = [[None] * tasks[t].n for t, _ in items]
        ids = [input_ids(self.backbone, text, self.max_input_length) for _, text in items]

        # One group per prompt length (its prompts are stacked together); kinds and lengths mix inside.
        groups: dict[int, list[tuple[int, int, Row]]] = {}
        for i, (task, _) in enumerate(items):
            tp = tasks[task]
            _, offsets = self._group(tp.length)
            labels = tuple(tp.task.verbalizers) if tp.task.kind == "classification" else None
            for k in range(tp.n):
                groups.setdefault(tp.length, []).append((i, k, Row(ids[i], offsets[task] + k, labels)))
        for length, members in groups.items():
            source, _ = self._group(length)
            got = answer_rows(self.lm, source, [row for _, _, row in members], self.max_rows, self.max_new_tokens,
                              self.bucket, self.stats)
            for (i, k, _), answer in zip(members, got):
                answers[i][k], scores[i][k] = answer.text, answer.scores

        out = []
        for i, (task, _) in enumerate(items):
            tp = tasks[task]
            if tp.task.kind == "classification":
                s = torch.stack(scores[i])
                vote = (mean_probability_vote(s, tp.task.verbalizers) if votings[i] == "mean_probability"
                        else majority_vote(answers[i], s, tp.task.verbalizers))
                row_scores = s.tolist()
            else:
                vote, row_scores = majority_vote(answers[i]), None
            out.append(Prediction(task, vote.prediction, vote.votes, vote.agreement, answers[i], list(tp.names), row_scores))
        return out

    def calibrate(self, sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64), input_length: int = 64, repeats: int = 2) -> int:
        """Measure rows/s per micro-batch size on this device and keep the fastest size."""
        if not self.bank.tasks:
            return self.max_rows
        tp = next(iter(self.bank.tasks.values()))
        text = " ".join(["the"] * input_length)
        best, best_rate = self.max_rows, 0.0
        for size in sizes:
            items = [(tp.task.name, text)] * max(1, size // tp.n)
            self.max_rows = size
            self.predict(items)  # warm-up
            t = time.perf_counter()
            for _ in range(repeats):
                self.predict(items)
            rate = len(items) * tp.n * repeats / (time.perf_counter() - t)
            if rate > best_rate * 1.03:
                best, best_rate = size, rate
        self.max_rows = best
        self.stats = new_stats()
        calibration.store(self.backbone, best)
        return best

