"""Tiny random T5 and Llama checkpoints (~50k parameters) for fast offline tests and CI.

They are saved like any Hugging Face checkpoint, so every code path loads them by directory, exactly
as it would load a hub model.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

_CORPUS = [
    "sentence1: the cat sat on the mat sentence2: a cat was sitting on a mat equivalent not_equivalent",
    "question: who wrote the book context: the book was written by an author in the year",
    "premise: the man turned on the faucet hypothesis: water flowed entailment not_entailment",
    "True False duplicate not_duplicate choice1 choice2 neutral contradiction passage query entities",
    "paraphrase same different yes no positive negative the of and to in is was for on that with",
]


def _tokenizer(vocab_size: int) -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(_CORPUS * 20, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")


def build_tiny(kind: str, directory: str | Path, seed: int = 0, d_model: int = 32) -> Path:
    """Write a tiny random `kind` ("llama" or "t5") checkpoint + tokenizer into `directory`."""
    torch.manual_seed(seed)
    tokenizer = _tokenizer(vocab_size=400)
    vocab = len(tokenizer)
    if kind == "t5":
        config = T5Config(vocab_size=vocab, d_model=d_model, d_kv=8, d_ff=2 * d_model, num_layers=2,
                          num_decoder_layers=2, num_heads=4, pad_token_id=0, eos_token_id=1,
                          decoder_start_token_id=0, feed_forward_proj="gated-gelu", tie_word_embeddings=False)
        model = T5ForConditionalGeneration(config)
    elif kind == "llama":
        config = LlamaConfig(vocab_size=vocab, hidden_size=d_model, intermediate_size=2 * d_model,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=512, pad_token_id=0, eos_token_id=1, bos_token_id=None,
                             tie_word_embeddings=True)
        model = LlamaForCausalLM(config)
    else:
        raise ValueError(f"unknown tiny model kind {kind!r} (use 'llama' or 't5')")
    with torch.no_grad():  # wider than HF's 0.02 default, so the prompt visibly steers a 2-layer model
        for param in model.parameters():
            if param.dim() > 1:
                param.normal_(0.0, 0.2)
    directory = Path(directory)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
