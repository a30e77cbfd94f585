"""Why an ensemble does or does not beat its members (paper §6): how often the members give the same
answer, what the vote does where they split, and whether its gain over them exceeds the dev set's
sampling noise (a paired bootstrap over the examples)."""

from __future__ import annotations

import itertools
import random
import statistics
from dataclasses import dataclass
from typing import Callable, Sequence


@dataclass
class Agreement:
    examples: int
    pairwise: float              # mean share of examples on which two members answer alike
    unanimous: int               # examples on which all members answer alike
    vote_right_on_split: int     # of the examples where they split, how many the vote gets right
    member_right_on_split: float  # ... and how many one member gets right, on average

    @property
    def split(self) -> int:
        return self.examples - self.unanimous


def agreement(answers: Sequence[Sequence[str]], votes: Sequence[str], targets: Sequence[str]) -> Agreement:
    """`answers[i]`: each member's answer to example i; `votes[i]`: the ensemble's; `targets[i]`: the gold answer."""
    n = len(answers[0])
    pairs = list(itertools.combinations(range(n), 2))
    pairwise = (sum(a[j] == a[k] for a in answers for j, k in pairs) / (len(pairs) * len(answers))) if pairs else 1.0
    split = [i for i, a in enumerate(answers) if len(set(a)) > 1]
    member_right = sum(answers[i][k] == targets[i] for i in split for k in range(n)) / n
    return Agreement(len(answers), pairwise, len(answers) - len(split),
                     sum(votes[i] == targets[i] for i in split), member_right)


def paired_bootstrap(difference: Callable[[list[int]], float], examples: int, resamples: int = 1000,
                     seed: int = 0) -> tuple[float, float]:
    """95% interval of `difference(indices)` (e.g. vote minus average member, scored on the examples at
    `indices`) over `resamples` draws of the examples with replacement, the same draw for both sides."""
    rng = random.Random(seed)
    draws = sorted(difference(rng.choices(range(examples), k=examples)) for _ in range(resamples))
    return draws[int(0.025 * (resamples - 1))], draws[int(0.975 * (resamples - 1))]


def describe(task, dev: list, preds: list, best: int, resamples: int = 1000) -> list[str]:
    """Report lines for one task's ensemble on `dev` (`preds`: what `EnsembleEngine.predict` returned per
    example; `best`: the index of the best prompt): how often the N prompts agree and, for classification,
    the vote's gain over the average and the best prompt on the primary metric, each with its 95%
    paired-bootstrap interval over the dev examples."""
    n, primary = len(preds[0].answers), task.primary_metric
    answers = [p.answers for p in preds]
    votes = [p.prediction for p in preds]

    def score(predictions: list[str], idx: list[int]) -> float:
        return task.score([predictions[i] for i in idx], [dev[i] for i in idx])[primary]

    def vote_minus_average(idx):
        return score(votes, idx) - statistics.mean(score([a[k] for a in answers], idx) for k in range(n))

    def vote_minus_best(idx):
        return score(votes, idx) - score([a[best] for a in answers], idx)

    every = list(range(len(dev)))
    a = agreement(answers, votes, [e.target_text for e in dev])
    lines = [f"{task.name}: the {n} prompts answer alike on {100 * a.pairwise:.1f}% of the {a.examples} examples "
             f"(pairwise), all {n} on {a.unanimous}."]
    if task.kind != "classification":  # a right answer is not one string, and rescoring generations is slow
        return lines
    counts = lambda given: ", ".join(f"{label} {given.count(label)}" for label in task.verbalizers)  # noqa: E731
    lines.append(f"{task.name}: answers per label: gold {counts([e.target_text for e in dev])}; vote {counts(votes)}; "
                 + "; ".join(f"prompt {k} {counts([a[k] for a in answers])}" for k in range(n)) + ".")
    if a.split:
        lines.append(f"{task.name}: where they split ({a.split} examples) the vote is right on {a.vote_right_on_split}, "
                     f"one prompt on {a.member_right_on_split:.1f} on average.")
    for label, difference in (("average single prompt", vote_minus_average), ("best single prompt", vote_minus_best)):
        low, high = paired_bootstrap(difference, len(dev), resamples)
        lines.append(f"{task.name}: ensemble − {label} ({primary}): {100 * difference(every):+.2f} points, "
                     f"95% interval [{100 * low:+.2f}, {100 * high:+.2f}] ({resamples} paired bootstrap resamples).")
    return lines
