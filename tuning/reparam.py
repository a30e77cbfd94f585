"""Residual reparameterisation of a soft prompt (Razdaibiedina et al., 2023; not in Lester et al.).

The prompt P is trained through a small shared network: prompt = P + LayerNorm(MLP(P)). The MLP
couples the prompt's tokens, which its authors found to learn faster and more stably than P alone,
most of all for small models. It is a training device only: what a run saves, serves and ensembles
is the prompt it outputs, a plain [p, d] tensor, so prompt files and the engine do not change.

The LayerNorm's gain starts at zero, so the reparameterised prompt starts exactly at its
initialisation (§3.2: class labels, sampled vocabulary or random uniform) and the paper's inits keep
their meaning; the gain and the MLP learn from the first step on.
"""

from __future__ import annotations

import torch
from torch import nn

REPARAMETERIZATIONS = ("none", "residual_mlp")


class ResidualMLP(nn.Module):
    """prompt = P + LayerNorm(W2 relu(W1 P)), one network per prompt, shared by its tokens."""

    def __init__(self, prompt: torch.Tensor, bottleneck: int):
        super().__init__()
        dim = prompt.shape[-1]
        self.raw = nn.Parameter(prompt.detach().clone())
        self.mlp = nn.Sequential(nn.Linear(dim, bottleneck), nn.ReLU(), nn.Linear(bottleneck, dim))
        self.norm = nn.LayerNorm(dim)
        nn.init.zeros_(self.norm.weight)
        self.to(prompt.device)

    def forward(self) -> torch.Tensor:
        return self.raw + self.norm(self.mlp(self.raw))


class PlainPrompt(nn.Module):
    """The paper's parameterisation: the prompt is the parameter (§2)."""

    def __init__(self, prompt: torch.Tensor):
        super().__init__()
        self.raw = nn.Parameter(prompt.detach().clone())

    def forward(self) -> torch.Tensor:
        return self.raw


def parameterize(prompt: torch.Tensor, kind: str, bottleneck: int) -> nn.Module:
    """A module whose output is the trained prompt, starting at `prompt`."""
    if kind == "none":
        return PlainPrompt(prompt)
    if kind == "residual_mlp":
        return ResidualMLP(prompt, bottleneck)
    raise ValueError(f"unknown reparameterization {kind!r}: choose one of {', '.join(REPARAMETERIZATIONS)}")
