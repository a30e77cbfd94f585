"""Text → token ids → padded batches, the same way for training, evaluation and serving.

Causal LMs read `input` then `" " + target + eos`; T5 reads `input + eos` in the encoder and decodes
`target + eos`. Soft prompts are added later, as embeddings, by `tuning.model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .backbone import Backbone


def input_ids(backbone: Backbone, text: str, max_length: int) -> list[int]:
    tok = backbone.tokenizer
    ids = tok(text, add_special_tokens=True, truncation=True, max_length=max_length)["input_ids"]
    if backbone.is_encoder_decoder and (not ids or ids[-1] != tok.eos_token_id):
        ids = ids[: max_length - 1] + [tok.eos_token_id]
    return ids or [tok.eos_token_id]


def target_ids(backbone: Backbone, text: str, eos: bool = True) -> list[int]:
    tok = backbone.tokenizer
    ids = tok(text if backbone.is_encoder_decoder else " " + text, add_special_tokens=False)["input_ids"]
    return ids + [tok.eos_token_id] if eos else ids


def pad(rows: Sequence[Sequence[int]], pad_id: int, side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """Pad id lists into (ids, mask) tensors on the given side."""
    width = max(1, max((len(r) for r in rows), default=1))
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        if not r:
            continue
        sl = slice(width - len(r), width) if side == "left" else slice(0, len(r))
        ids[i, sl] = torch.tensor(r, dtype=torch.long)
        mask[i, sl] = 1
    return ids, mask


@dataclass
class Batch:
    """Token ids for R rows: inputs, and either one target per row or C candidates per row."""

    input_ids: torch.Tensor           # [R, L]
    input_mask: torch.Tensor          # [R, L]
    target_ids: torch.Tensor | None = None   # [R, T] or candidates [R, C, T]
    target_mask: torch.Tensor | None = None

    def to(self, device) -> "Batch":
        move = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(move(self.input_ids), move(self.input_mask), move(self.target_ids), move(self.target_mask))


def encode(backbone: Backbone, inputs: Sequence[str], targets: Sequence[str] | None = None,
           max_input_length: int = 256, padding_side: str = "right") -> Batch:
    """One target per row (training). T5 encoders are always right-padded (relative attention)."""
    side = "right" if backbone.is_encoder_decoder else padding_side
    pad_id = backbone.tokenizer.pad_token_id
    ids, mask = pad([input_ids(backbone, t, max_input_length) for t in inputs], pad_id, side)
    if targets is None:
        return Batch(ids, mask)
    tids, tmask = pad([target_ids(backbone, t) for t in targets], pad_id, "right")
    return Batch(ids, mask, tids, tmask)


def candidates(backbone: Backbone, labels: Sequence[Sequence[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """[R, C, T] candidate target ids and mask; rows may have different (and differently many) labels."""
    tokenized = [[target_ids(backbone, text) for text in row] for row in labels]
    n_cand = max(len(row) for row in tokenized)
    width = max(len(t) for row in tokenized for t in row)
    ids = torch.full((len(labels), n_cand, width), backbone.tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(tokenized):
        for c, tok in enumerate(row):
            ids[r, c, : len(tok)] = torch.tensor(tok)
            mask[r, c, : len(tok)] = 1
    return ids, mask


def encode_candidates(backbone: Backbone, inputs: Sequence[str], labels: Sequence[Sequence[str]],
                      max_input_length: int = 256, padding_side: str = "right") -> Batch:
    """C candidate targets per row (rank classification)."""
    batch = encode(backbone, inputs, None, max_input_length, padding_side)
    return Batch(batch.input_ids, batch.input_mask, *candidates(backbone, labels))
