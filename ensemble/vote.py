"""Aggregating the N prompts' answers for one example (paper §6)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch

# How the N answers of one example become one (§6): the majority vote, or the label of highest mean probability.
VOTINGS = ("majority", "mean_probability")


@dataclass
class Vote:
    prediction: str
    votes: dict[str, int]
    agreement: float          # share of prompts that gave the prediction


def majority_vote(answers: Sequence[str], scores: torch.Tensor | None = None,
                  labels: Sequence[str] = ()) -> Vote:
    """Most common answer. Ties: the highest log-likelihood summed over all prompts ([N, C] `scores`
    over `labels`); without scores, the tied answer given first (by the lowest-numbered prompt)."""
    counts = Counter(answers)
    top = max(counts.values())
    tied = [a for a in dict.fromkeys(answers) if counts[a] == top]
    winner = tied[0]
    if len(tied) > 1 and scores is not None:
        total = scores.sum(0)
        winner = max(tied, key=lambda a: float(total[labels.index(a)]))
    return Vote(winner, dict(counts), top / len(answers))


def mean_probability_vote(scores: torch.Tensor, labels: Sequence[str]) -> Vote:
    """Average each prompt's normalised class probabilities, then take the most probable class."""
    probs = torch.softmax(scores.float(), -1).mean(0)
    winner = labels[int(probs.argmax())]
    answers = [labels[i] for i in scores.argmax(-1).tolist()]
    counts = Counter(answers)
    return Vote(winner, dict(counts), counts.get(winner, 0) / len(answers))
