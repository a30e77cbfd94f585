"""Text-to-text prediction for a task: rank classification over verbalizers, or greedy generation."""

from __future__ import annotations

from typing import Sequence

import torch

from .encoding import input_ids
from .inference import Row, answer_rows
from .model import PromptedLM, Prompts


@torch.no_grad()
def predict(lm: PromptedLM, prompts: Prompts, task, inputs: Sequence[str], batch_size: int = 32,
            max_input_length: int = 256, max_new_tokens: int = 32) -> list[list[str]]:
    """Predictions of each of the N prompts for each input: a list of N lists of len(inputs) strings.

    The N prompts share every pass: rows are the inputs replicated N times (paper §6), at most
    `batch_size` rows a pass; a causal LM reads each prompt as keys/values computed once (model tuning's
    empty prompt runs the plain path).
    """
    if isinstance(prompts, torch.Tensor) and prompts.shape[1] and not lm.backbone.is_encoder_decoder:
        prompts = lm.prefix_kv(prompts.to(lm.backbone.device))
    n = prompts.n_prompts if hasattr(prompts, "n_prompts") else prompts.shape[0]
    labels = tuple(task.verbalizers) if task.kind == "classification" else None
    ids = [input_ids(lm.backbone, text, max_input_length) for text in inputs]
    rows = [Row(i, k, labels) for k in range(n) for i in ids]
    answers = answer_rows(lm, prompts, rows, max_rows=batch_size, max_new_tokens=max_new_tokens)
    return [[a.text for a in answers[k * len(ids):(k + 1) * len(ids)]] for k in range(n)]


def evaluate(lm: PromptedLM, prompts: Prompts, task, examples, **kwargs) -> list[dict]:
    """The task's metrics for each of the N prompts."""
    predictions = predict(lm, prompts, task, [e.input_text for e in examples], **kwargs)
    return [task.score(p, examples) for p in predictions]
