"""Which optimiser settings a run gets when its config leaves them open (None).

`paper` (§3): Adafactor, lr 0.3, parameter scaling off for prompts; lr 1e-3 with T5's parameter
scaling for model tuning. It is the default for T5, the paper's model.

`auto` keeps the paper's settings for encoder-decoder backbones and for model tuning. For a
decoder-only backbone's prompt it sets the step size by the backbone's embedding scale: Adafactor
with scaling off moves each prompt element by up to `lr` per step, and 0.3 is ~2× the element RMS
of SmolLM2's embeddings (0.136), so the prompt leaves the region the model was trained on in one
step. See docs/engine.md ("Deviations and why") for the learning curves behind the constants.
"""

from __future__ import annotations

import dataclasses

import torch

from .backbone import Backbone
from .config import TrainConfig

RECIPES = ("auto", "paper")
PAPER_PROMPT_LR = 0.3     # §3
PAPER_MODEL_LR = 1e-3     # §3 (T5 library default for model tuning)
# Decoder-only prompts under "auto" (measured on SmolLM2-135M, docs/engine.md).
CAUSAL_OPTIMIZER = "adamw"
CAUSAL_LR_PER_EMBEDDING_RMS = 0.075   # lr = this × element RMS of the input embeddings (SmolLM2: 0.01)
CAUSAL_BETA2 = 0.99


@torch.no_grad()
def embedding_rms(backbone: Backbone) -> float:
    """Element RMS of the input embedding matrix: the scale prompts live on."""
    weight = backbone.model.get_input_embeddings().weight
    return float(weight.float().pow(2).mean().sqrt())


def recipe_settings(config: TrainConfig, backbone: Backbone) -> dict:
    """The optimiser fields the recipe chooses for this backbone (before the config's own overrides)."""
    if config.mode == "model":
        return {"optimizer": "adafactor", "lr": PAPER_MODEL_LR, "scale_parameter": True}
    if config.recipe == "paper" or backbone.is_encoder_decoder:
        return {"optimizer": "adafactor", "lr": PAPER_PROMPT_LR, "scale_parameter": False}
    return {"optimizer": CAUSAL_OPTIMIZER, "lr_per_embedding_rms": CAUSAL_LR_PER_EMBEDDING_RMS,
            "beta2": CAUSAL_BETA2, "scale_parameter": False}


def resolve(config: TrainConfig, backbone: Backbone) -> TrainConfig:
    """`config` with every open optimiser field filled by the recipe, `lr` made concrete and `dtype`
    set to the backbone's."""
    chosen = recipe_settings(config, backbone)
    if config.optimizer is not None and config.optimizer != chosen["optimizer"]:
        chosen = {"optimizer": config.optimizer}  # another optimiser: the recipe's lr is not for it
    if config.lr is not None or config.lr_per_embedding_rms is not None:  # the config names its own lr
        chosen = {k: v for k, v in chosen.items() if k not in ("lr", "lr_per_embedding_rms")}
    filled = {k: v for k, v in chosen.items() if getattr(config, k) is None}
    config = dataclasses.replace(config, **filled, dtype=str(backbone.dtype).removeprefix("torch."))
    if config.lr_per_embedding_rms is not None:
        return dataclasses.replace(config, lr=round(config.lr_per_embedding_rms * embedding_rms(backbone), 6))
    if config.lr is None:
        return dataclasses.replace(config, lr=PAPER_PROMPT_LR if config.mode == "prompt" else PAPER_MODEL_LR)
    return config
