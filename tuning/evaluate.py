"""Text-to-text prediction for a task: rank classification over verbalizers, or greedy generation."""

from __future__ import annotations

from typing import Sequence

import torch

from .encoding import encode, encode_candidates
from .model import PromptedLM, Prompts


@torch.no_grad()
def predict(lm: PromptedLM, prompts: Prompts, task, inputs: Sequence[str], batch_size: int = 32,
            max_input_length: int = 256, max_new_tokens: int = 32) -> list[list[str]]:
    """Predictions of each of the N prompts for each input: a list of N lists of len(inputs) strings.

    The N prompts share every batch: rows are the inputs replicated N times (paper §6).
    """
    n = prompts.n_prompts if hasattr(prompts, "n_prompts") else prompts.shape[0]
    step = max(1, batch_size // n)
    out: list[list[str]] = [[] for _ in range(n)]
    for start in range(0, len(inputs), step):
        chunk = list(inputs[start:start + step])
        rows = chunk * n
        index = torch.arange(n).repeat_interleave(len(chunk))
        if task.kind == "classification":
            batch = encode_candidates(lm.backbone, rows, [task.verbalizers] * len(rows), max_input_length)
            best = lm.score(prompts, batch.to(lm.backbone.device), index.to(lm.backbone.device)).argmax(-1).tolist()
            texts = [task.verbalizers[i] for i in best]
        else:
            batch = encode(lm.backbone, rows, None, max_input_length).to(lm.backbone.device)
            texts = lm.decode(lm.generate(prompts, batch, index.to(lm.backbone.device), max_new_tokens))
        for k in range(n):
            out[k].extend(texts[k * len(chunk):(k + 1) * len(chunk)])
    return out


def evaluate(lm: PromptedLM, prompts: Prompts, task, examples, **kwargs) -> list[dict]:
    """The task's metrics for each of the N prompts."""
    predictions = predict(lm, prompts, task, [e.input_text for e in examples], **kwargs)
    return [task.score(p, examples) for p in predictions]
