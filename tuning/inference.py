"""The one N-prompt inference core: rows (input, prompt) in length-sorted shared passes (paper §6).

A row is one input read with one of the stacked prompts; rows of any mix of prompts and label sets
share a pass. Classification rows are answered by rank classification over their labels, the others
by greedy generation. Training-time evaluation (tuning/evaluate.py) and the ensemble engine
(ensemble/engine.py) both answer through `answer_rows`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .encoding import Batch, candidates, pad
from .model import PromptedLM, Prompts


@dataclass
class Row:
    ids: list[int]                        # input token ids (tuning.encoding.input_ids)
    prompt: int                           # index of the prompt in the stacked prompts
    labels: tuple[str, ...] | None = None  # rank classification over these; None: generate


@dataclass
class Answer:
    text: str
    scores: torch.Tensor | None = None    # classification: log-likelihood of each label (fp32, CPU)


def new_stats() -> dict:
    return {"rows": 0, "passes": 0, "real_positions": 0, "padded_positions": 0}


@torch.no_grad()
def answer_rows(lm: PromptedLM, prompts: Prompts, rows: Sequence[Row], max_rows: int = 32, max_new_tokens: int = 32,
                bucket: bool = True, stats: dict | None = None) -> list[Answer]:
    """Each row's answer, in row order. Passes hold at most `max_rows` rows of one kind (classify or
    generate); with `bucket`, rows are sorted by input length first so little padding runs."""
    answers: list[Answer | None] = [None] * len(rows)
    for classify in (True, False):
        order = [i for i, r in enumerate(rows) if (r.labels is not None) == classify]
        if bucket:
            order.sort(key=lambda i: len(rows[i].ids))
        for start in range(0, len(order), max_rows):
            chunk = order[start:start + max_rows]
            for i, answer in zip(chunk, _run(lm, prompts, [rows[i] for i in chunk], max_new_tokens, stats)):
                answers[i] = answer
    return answers


def _run(lm: PromptedLM, prompts: Prompts, chunk: list[Row], max_new_tokens: int, stats: dict | None) -> list[Answer]:
    device = lm.backbone.device
    ids, mask = pad([r.ids for r in chunk], lm.backbone.tokenizer.pad_token_id)
    index = torch.tensor([r.prompt for r in chunk], device=device)
    if stats is not None:
        stats["rows"] += len(chunk)
        stats["passes"] += 1
        stats["real_positions"] += int(mask.sum())
        stats["padded_positions"] += mask.numel()
    if chunk[0].labels is None:
        texts = lm.decode(lm.generate(prompts, Batch(ids.to(device), mask.to(device)), index, max_new_tokens))
        return [Answer(t) for t in texts]
    cand_ids, cand_mask = candidates(lm.backbone, [r.labels for r in chunk])
    scores = lm.score(prompts, Batch(ids.to(device), mask.to(device), cand_ids.to(device), cand_mask.to(device)), index)
    out = []
    for r, s in zip(chunk, scores.float().cpu()):
        s = s[:len(r.labels)]
        out.append(Answer(r.labels[int(s.argmax())], s))
    return out
