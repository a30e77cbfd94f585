"""Small text reports of the engine (the paper's Table 4 layout)."""

from __future__ import annotations

from .backbone import Backbone


def parameter_table(backbone: Backbone, lengths=(1, 5, 20, 100, 150)) -> str:
    """Trainable / total parameters per prompt length, as in the paper's Table 4."""
    total = sum(p.numel() for p in backbone.model.parameters())
    rows = ["| prompt length | trainable | total | trainable % |", "|---:|---:|---:|---:|"]
    for p in lengths:
        trainable = p * backbone.embed_dim
        rows.append(f"| {p} | {trainable:,} | {total + trainable:,} | {100 * trainable / (total + trainable):.4f}% |")
    rows.append(f"| model tuning | {total:,} | {total:,} | 100% |")
    return f"{backbone.name} (embedding dim {backbone.embed_dim})\n" + "\n".join(rows)
