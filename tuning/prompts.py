"""The paper's three prompt initialisations (§3.2), each returning a [length, dim] tensor.

"Sampled vocabulary" draws from the 5,000 most common tokens. T5's SentencePiece vocabulary is ordered
by likelihood in the pre-training corpus, so the first 5,000 ids are the most common ones. BPE
vocabularies (GPT-2, Llama, SmolLM2) are ordered by merge order, which follows pair frequency in the
tokenizer's training corpus; we use the first 5,000 non-special ids there as the same proxy.
"""

from __future__ import annotations

import torch

from .backbone import Backbone
from .encoding import target_ids

INITS = ("random_uniform", "sampled_vocab", "class_label")
COMMON_TOKENS = 5000


def common_token_ids(backbone: Backbone, k: int = COMMON_TOKENS) -> torch.Tensor:
    special = set(backbone.tokenizer.all_special_ids)
    ids = [i for i in range(min(len(backbone.tokenizer), backbone.model.config.vocab_size)) if i not in special]
    return torch.tensor(ids[:k])


def random_uniform(backbone: Backbone, length: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform in [-0.5, 0.5] (§3.2)."""
    return torch.rand(length, backbone.embed_dim, generator=generator) - 0.5


@torch.no_grad()
def sampled_vocab(backbone: Backbone, length: int, generator: torch.Generator) -> torch.Tensor:
    """Embeddings of tokens drawn from the 5,000 most common (§3.2)."""
    pool = common_token_ids(backbone)
    picks = pool[torch.randint(len(pool), (length,), generator=generator)]
    return backbone.embed(picks.to(backbone.device)).float().cpu()


@torch.no_grad()
def class_label(backbone: Backbone, length: int, generator: torch.Generator, labels: tuple[str, ...]) -> torch.Tensor:
    """One prompt token per class label (sub-token embeddings averaged); sampled vocab fills the rest (§3.2)."""
    if not labels:
        raise ValueError("class_label initialisation needs label strings (the task's verbalizers or init words)")
    prompt = sampled_vocab(backbone, length, generator)
    for i, label in enumerate(labels[:length]):
        ids = target_ids(backbone, label, eos=False)
        prompt[i] = backbone.embed(torch.tensor(ids, device=backbone.device)).float().mean(0).cpu()
    return prompt


def init_prompt(backbone: Backbone, length: int, init: str, seed: int, labels: tuple[str, ...] = ()) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if init == "random_uniform":
        return random_uniform(backbone, length, generator)
    if init == "sampled_vocab":
        return sampled_vocab(backbone, length, generator)
    if init == "class_label":
        return class_label(backbone, length, generator, labels)
    raise ValueError(f"unknown init {init!r}: choose one of {', '.join(INITS)}")
