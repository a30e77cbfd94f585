"""Precision: bf16 where the hardware computes it natively, fp32 elsewhere.

A frozen backbone is held in bf16 while the trained prompt stays an fp32 parameter (cast to bf16 as
it enters the model), so optimizer state and updates keep full precision. Model tuning trains every
weight and therefore stays in fp32 under "auto".
"""

from __future__ import annotations

import warnings

import torch

DTYPES = ("auto", "float32", "bfloat16")


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """True on CUDA devices with bf16 and on CPUs with AVX512-BF16 or AMX (bf16 matmuls in hardware)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    return False


def resolve_device(name: str = "auto") -> str:
    """"auto" -> "cuda" when PyTorch sees a GPU, else "cpu"; other names unchanged."""
    if name != "auto":
        return name
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_problem(name: str) -> str | None:
    """Why `--device name` cannot run here (a one-line message), or None."""
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        return f"--device must be 'auto', 'cpu' or a GPU such as 'cuda' / 'cuda:1', not {name!r}"
    if device.type == "cuda" and not torch.cuda.is_available():
        return f"--device {name}: PyTorch sees no GPU here (use --device cpu, or auto)"
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        return f"--device {name}: only {torch.cuda.device_count()} GPU(s) are visible"
    return None


def resolve_dtype(name: str, device: str | torch.device = "cpu", mode: str = "prompt") -> str:
    """"auto" -> "bfloat16" for a frozen backbone on bf16 hardware, else "float32" (with a warning where a
    CPU lacks bf16, since the times the docs report assume it); others unchanged."""
    if name != "auto":
        return name
    if mode != "prompt":
        return "float32"
    if native_bf16(device):
        return "bfloat16"
    if torch.device(device).type == "cpu":
        warnings.warn("this CPU has no native bf16 (AVX512-BF16 or AMX), so the frozen backbone runs in fp32: "
                      "slower than bf16 on a CPU with it (~4x per prompt-tuning step; docs/benchmarks.md)", stacklevel=2)
    return "float32"


def use_fast_attention_for_training(model) -> None:
    """On CPU in bf16, eager attention trains ~1.3× faster than SDPA, whose CPU flash-attention backward
    took ~30% of a step (SmolLM2, batch 8: 1.02 → 0.80 s per step); the math is the same."""
    weight = model.get_input_embeddings().weight
    if weight.device.type == "cpu" and weight.dtype == torch.bfloat16 and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
