"""`--compile`: torch.compile of the backbone's elementwise-heavy blocks, opt-in.

On the 2-core CPU in bf16 a prompt-tuning step spent ~45% of its time in unfused elementwise ops (the
RMSNorm's fp32 round trip, the MLP's SiLU gating, the attention's scaling, masking and softmax) and
~35% in matmuls. Compiling the norms, the MLPs and the eager attention function fuses those ops: a
packed step of 5 prompts at batch 8 runs ~1.2× faster after ~20 s of compiling (docs/benchmarks.md,
from benchmarks/bench_train.py). Matmuls are untouched, so results equal eager mode up to rounding.

Only blocks without per-layer state are compiled, so one graph serves every layer (a whole decoder
layer guards on its layer index: 30 recompiles). Shapes are dynamic: bucketed batches of any length
reuse the graph.
"""

from __future__ import annotations

import sys

import torch

BLOCK_SUFFIXES = ("RMSNorm", "LayerNorm", "MLP", "DenseActDense", "DenseGatedActDense")


def compile_backbone(model: torch.nn.Module) -> None:
    """Compile, in place, every norm and MLP block of `model` and, where it runs eager attention, its
    attention function (registered with transformers as "compiled_eager_<modeling module>" and selected).
    The modules stay compiled for every later user of this backbone."""
    for module in model.modules():
        if type(module).__name__.endswith(BLOCK_SUFFIXES):
            module.compile(dynamic=True)
    if getattr(model.config, "_attn_implementation", None) != "eager":
        return  # SDPA / flash kernels are fused already
    eager = getattr(sys.modules[type(model).__module__], "eager_attention_forward", None)
    if eager is None:  # e.g. T5, whose attention is written inline
        return
    from transformers import AttentionInterface, AttentionMaskInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    name = f"compiled_eager_{type(model).__module__.rsplit('.', 1)[-1]}"
    AttentionInterface.register(name, torch.compile(eager, dynamic=True))
    # The mask must stay eager's additive float mask: an unknown name would get SDPA's boolean one.
    AttentionMaskInterface.register(name, ALL_MASK_ATTENTION_FUNCTIONS["eager"])
    model.set_attn_implementation(name)
