"""Batched prompt ensembles (paper §6) over one frozen backbone, in plain PyTorch (no Ray)."""

from .bank import PromptBank, ReloadReport, TaskPrompts
from .engine import EnsembleEngine, Prediction
from .vote import Vote, majority_vote, mean_probability_vote

__all__ = ["EnsembleEngine", "Prediction", "PromptBank", "ReloadReport", "TaskPrompts", "Vote",
           "majority_vote", "mean_probability_vote"]
