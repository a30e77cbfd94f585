"""Prompt artifacts: one safetensors file holding the prompt tensor and its JSON metadata.

Writes are atomic (temporary file in the same directory, fsync, rename), so a crash or a full disk
never leaves a half-written prompt where a registry or a server would read it. The metadata carries
a digest of the tensor bytes, so a file whose data was damaged is refused, not silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load as load_tensors
from safetensors.torch import save_file

from .backbone import Backbone

SUFFIX = ".safetensors"
_META_KEY = "prompt_tuning"


class PromptFileError(ValueError):
    """A prompt file that cannot be used: damaged, or made for another backbone."""


@dataclass
class PromptArtifact:
    prompt: torch.Tensor                     # [length, dim], float32
    task: str
    backbone: str
    fingerprint: str
    init: str = ""
    verbalizers: tuple[str, ...] = ()
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)

    @property
    def length(self) -> int:
        return self.prompt.shape[0]

    def meta(self) -> dict:
        return {"task": self.task, "length": self.length, "dim": self.prompt.shape[1], "init": self.init,
                "verbalizers": list(self.verbalizers), "metrics": self.metrics, "config": self.config,
                "backbone": self.backbone, "fingerprint": self.fingerprint, "created": self.created,
                "sha256": _digest(self.prompt)}

    def check_backbone(self, backbone: Backbone, source: str = "prompt") -> None:
        if self.fingerprint != backbone.fingerprint:
            raise PromptFileError(f"{source} was trained on backbone {self.backbone!r} (fingerprint {self.fingerprint}), "
                                  f"not on the loaded {backbone.name!r} (fingerprint {backbone.fingerprint}): "
                                  f"serve it with that backbone or retrain it")
        if self.prompt.shape[1] != backbone.embed_dim:
            raise PromptFileError(f"{source} has dim {self.prompt.shape[1]}, the backbone embeds in {backbone.embed_dim}")


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest()


def atomic_write(path: str | Path, write) -> Path:
    """`write(tmp)` to a temp file beside `path`, then rename it over `path`: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_prompt(artifact: PromptArtifact, path: str | Path) -> Path:
    path = Path(path)
    if path.suffix != SUFFIX:
        path = path.with_suffix(SUFFIX)
    tensor = artifact.prompt.detach().float().cpu().contiguous()
    meta = {_META_KEY: json.dumps(artifact.meta())}
    return atomic_write(path, lambda tmp: save_file({"prompt": tensor}, tmp, metadata=meta))


MAX_FILE_BYTES = 64 << 20  # a prompt of 1,000 tokens × 8,192 dims in fp32 is 32 MiB


def read_prompt_file(path: str | Path) -> bytes:
    """The file's bytes; only a regular file is opened (a FIFO would block, a device never end)."""
    path = Path(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        what = "a dangling symlink" if path.is_symlink() else "no prompt file"
        raise PromptFileError(f"{path} is {what}") from None
    except OSError as e:
        raise PromptFileError(f"{path} cannot be read ({type(e).__name__}: {e})") from None
    if not stat.S_ISREG(st.st_mode):
        raise PromptFileError(f"{path} is not a regular file")
    if st.st_size > MAX_FILE_BYTES:
        raise PromptFileError(f"{path} has {st.st_size} bytes, more than a prompt file's {MAX_FILE_BYTES}")
    try:
        return path.read_bytes()
    except OSError as e:
        raise PromptFileError(f"{path} cannot be read ({type(e).__name__}: {e})") from None


def _field(meta: dict, key: str, kind, source: str, default=...):
    value = meta.get(key, default)
    if value is ...:
        raise PromptFileError(f"{source}: metadata lacks {key!r}")
    if not isinstance(value, kind):
        raise PromptFileError(f"{source}: metadata {key!r} should be {getattr(kind, '__name__', kind)}, "
                              f"not {type(value).__name__}")
    return value


def prompt_from_bytes(data: bytes, source: str, backbone: Backbone | None = None) -> PromptArtifact:
    """Parse and check a prompt file's bytes: every way a file can be wrong is a `PromptFileError`."""
    try:
        prompt = load_tensors(data).get("prompt")
        header_len = int.from_bytes(data[:8], "little")
        raw = (json.loads(data[8:8 + header_len]).get("__metadata__") or {})[_META_KEY]
        meta = json.loads(raw)
    except (SafetensorError, KeyError, ValueError, RuntimeError, TypeError, AttributeError) as e:
        raise PromptFileError(f"{source} is not a readable prompt file ({type(e).__name__}: {str(e)[:200]}); "
                              f"it may be truncated or corrupted: retrain or restore it") from None
    if not isinstance(meta, dict):
        raise PromptFileError(f"{source}: metadata is a {type(meta).__name__}, not an object")
    if prompt is None or prompt.dim() != 2 or not prompt.is_floating_point() or 0 in prompt.shape:
        what = "no 'prompt' tensor" if prompt is None else f"a {prompt.dim()}-D {prompt.dtype} tensor of shape {tuple(prompt.shape)}"
        raise PromptFileError(f"{source} holds {what}, not a [length, dim] float prompt")
    if not torch.isfinite(prompt).all():
        raise PromptFileError(f"{source}: the prompt holds NaN or infinite values")
    if _digest(prompt) != _field(meta, "sha256", str, source):
        raise PromptFileError(f"{source}: prompt data does not match its recorded digest (corrupted file)")
    verbalizers = _field(meta, "verbalizers", list, source, [])
    artifact = PromptArtifact(prompt=prompt.float(), task=_field(meta, "task", str, source),
                              backbone=_field(meta, "backbone", str, source),
                              fingerprint=_field(meta, "fingerprint", str, source),
                              init=_field(meta, "init", str, source, ""),
                              verbalizers=tuple(str(v) for v in verbalizers),
                              metrics=_field(meta, "metrics", dict, source, {}),
                              config=_field(meta, "config", dict, source, {}),
                              created=float(_field(meta, "created", (int, float), source, 0.0)))
    if backbone is not None:
        artifact.check_backbone(backbone, source=source)
    return artifact


def load_prompt(path: str | Path, backbone: Backbone | None = None) -> PromptArtifact:
    """Read a prompt file; with `backbone`, refuse a prompt trained on another one."""
    return prompt_from_bytes(read_prompt_file(path), str(path), backbone)


# ---- PEFT interoperability ----------------------------------------------------------------------

def export_peft(artifact: PromptArtifact, directory: str | Path, backbone: Backbone) -> Path:
    """Write PEFT's prompt-tuning adapter (adapter_config.json + adapter_model.safetensors).

    For T5 we set num_transformer_submodules=1: PEFT would otherwise also prompt the decoder, which
    the paper does not (§2).
    """
    artifact.check_backbone(backbone)
    directory = Path(directory)
    cfg = backbone.model.config
    config = {
        "peft_type": "PROMPT_TUNING",
        "task_type": "SEQ_2_SEQ_LM" if backbone.is_encoder_decoder else "CAUSAL_LM",
        "num_virtual_tokens": artifact.length,
        "token_dim": artifact.prompt.shape[1],
        "num_transformer_submodules": 1,
        "num_attention_heads": getattr(cfg, "num_attention_heads", getattr(cfg, "num_heads", None)),
        "num_layers": getattr(cfg, "num_hidden_layers", getattr(cfg, "num_layers", None)),
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "tokenizer_name_or_path": None,
        "base_model_name_or_path": backbone.name,
        "inference_mode": True,
        "revision": None,
        "modules_to_save": None,
    }
    directory.mkdir(parents=True, exist_ok=True)
    tensor = artifact.prompt.detach().float().contiguous()
    meta = {_META_KEY: json.dumps(artifact.meta())}  # ours rides in the weights file: PEFT ignores it there
    atomic_write(directory / "adapter_model.safetensors",
                  lambda tmp: save_file({"prompt_embeddings": tensor}, tmp, metadata=meta))
    atomic_write(directory / "adapter_config.json", lambda tmp: Path(tmp).write_text(json.dumps(config, indent=2)))
    return directory


def import_peft(directory: str | Path, backbone: Backbone, task: str = "") -> PromptArtifact:
    """Read a PEFT prompt-tuning adapter as a prompt for `backbone` (encoder part only for T5)."""
    directory = Path(directory)
    try:
        config = json.loads((directory / "adapter_config.json").read_text())
        with safe_open(directory / "adapter_model.safetensors", "pt") as f:
            weights = {k: f.get_tensor(k) for k in f.keys()}
            ours = json.loads((f.metadata() or {}).get(_META_KEY, "{}"))
    except (OSError, ValueError, SafetensorError) as e:
        raise PromptFileError(f"{directory} is not a PEFT adapter directory ({e})") from e
    if config.get("peft_type") != "PROMPT_TUNING":
        raise PromptFileError(f"{directory} holds a {config.get('peft_type')} adapter, not PROMPT_TUNING")
    tensor = weights.get("prompt_embeddings")
    if tensor is None:
        raise PromptFileError(f"{directory}/adapter_model.safetensors has no 'prompt_embeddings' tensor")
    prompt = tensor[: config["num_virtual_tokens"]].float()  # first block: the encoder's (or the only) prompt
    artifact = PromptArtifact(prompt=prompt, task=task or ours.get("task", ""), backbone=backbone.name,
                              fingerprint=backbone.fingerprint, init=ours.get("init", "peft"),
                              verbalizers=tuple(ours.get("verbalizers", ())), metrics=ours.get("metrics", {}))
    artifact.check_backbone(backbone, source=str(directory))
    return artifact
