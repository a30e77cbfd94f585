"""The three initialisations of §3.2, each checked against its definition."""

from __future__ import annotations

import torch
import pytest

from tuning.encoding import target_ids
from tuning.prompts import COMMON_TOKENS, common_token_ids, init_prompt


def test_random_uniform_is_uniform_in_half_interval(tiny):
    p = init_prompt(tiny, 200, "random_uniform", seed=0)
    assert p.shape == (200, tiny.embed_dim)
    assert p.min() >= -0.5 and p.max() <= 0.5
    assert abs(p.mean()) < 0.02 and abs(p.var() - 1 / 12) < 0.01  # U(-0.5, 0.5): mean 0, var 1/12


def test_sampled_vocab_rows_are_embeddings_of_common_tokens(tiny):
    p = init_prompt(tiny, 30, "sampled_vocab", seed=1)
    pool = common_token_ids(tiny)
    table = tiny.embed(pool)
    for row in p:
        assert torch.isclose(table, row, atol=1e-6).all(-1).any(), "row is not the embedding of a common token"
    assert len(pool) == min(COMMON_TOKENS, len(tiny.tokenizer) - len(tiny.tokenizer.all_special_ids))
    assert not set(pool.tolist()) & set(tiny.tokenizer.all_special_ids)


def test_class_label_puts_averaged_label_embeddings_first(tiny):
    labels = ("not_equivalent", "equivalent")
    p = init_prompt(tiny, 5, "class_label", seed=2, labels=labels)
    for i, label in enumerate(labels):
        ids = target_ids(tiny, label, eos=False)
        assert len(ids) >= 1
        expected = tiny.embed(torch.tensor(ids)).mean(0)
        torch.testing.assert_close(p[i], expected)
    filler = init_prompt(tiny, 5, "sampled_vocab", seed=2)
    torch.testing.assert_close(p[2:], filler[2:])  # the rest falls back to sampled vocabulary


def test_class_label_with_more_labels_than_positions(tiny):
    p = init_prompt(tiny, 2, "class_label", seed=0, labels=("entailment", "contradiction", "neutral"))
    assert p.shape[0] == 2


def test_initialisation_is_seeded_and_unknown_names_fail(tiny):
    assert torch.equal(init_prompt(tiny, 4, "sampled_vocab", 3), init_prompt(tiny, 4, "sampled_vocab", 3))
    assert not torch.equal(init_prompt(tiny, 4, "sampled_vocab", 3), init_prompt(tiny, 4, "sampled_vocab", 4))
    with pytest.raises(ValueError, match="unknown init"):
        init_prompt(tiny, 4, "zeros", 0)
