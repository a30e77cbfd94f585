"""Paper-style result tables (markdown + CSV) and PNG plots, shared by every job.

Scores are 0-1 fractions in code and shown as percentages (one decimal, "mean ± std" over seeds) as
in the paper's tables. A cell whose dataset is missing reads "n/a (dataset unavailable)".
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

NA = "n/a (dataset unavailable)"


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value); NaN mean for no values."""
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def pct(value: float | None) -> str:
    return NA if value is None or math.isnan(value) else f"{100 * value:.1f}"


def pct_mean_std(values: Sequence[float]) -> str:
    """"83.2±1.1" in percent; a lone value has no spread to show."""
    m, s = mean_std(values)
    if math.isnan(m):
        return NA
    return f"{100 * m:.1f}" if len(values) == 1 else f"{100 * m:.1f}±{100 * s:.1f}"


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |",
                 "|" + "|".join("---" for _ in self.columns) + "|"]
        lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in self.rows]
        if self.notes:
            lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict]) -> Path:
    """Machine-readable rows (raw 0-1 numbers, empty where unavailable)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if v is None or (isinstance(v, float) and math.isnan(v)) else v)
                             for k, v in row.items()})
    return path


def write_report(results_dir: str | Path, stem: str, table: Table, csv_rows: list[dict],
                 raw: dict | None = None) -> dict[str, Path]:
    """<stem>.md, <stem>.csv and (if given) <stem>.json in `results_dir`; prints the table."""
    out = Path(results_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"md": out / f"{stem}.md", "csv": write_csv(out / f"{stem}.csv", csv_rows)}
    paths["md"].write_text(table.markdown())
    if raw is not None:
        paths["json"] = out / f"{stem}.json"
        paths["json"].write_text(json.dumps(raw, indent=2, default=_jsonable))
    print(table.markdown(), flush=True)
    print(f"results written to {out.resolve()}", flush=True)
    return paths


def _jsonable(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def grouped_bars(path: str | Path, title: str, groups: Sequence[str], series: dict[str, tuple[list, list]],
                 ylabel: str = "score (%)") -> Path:
    """One cluster of bars per group, one bar per series with a ±std error bar; NaN bars are
    left out and the group is labelled n/a."""
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * len(groups) * max(1, len(series)) / 2 + 2), 3.6))
    width = 0.8 / max(1, len(series))
    for j, (label, (means, stds)) in enumerate(series.items()):
        keep = [i for i, v in enumerate(means) if not _missing(v)]
        xs = [i + (j - (len(series) - 1) / 2) * width for i in keep]
        ax.bar(xs, [100 * means[i] for i in keep], width, yerr=[100 * (stds[i] or 0.0) for i in keep],
               capsize=3, label=label, color=f"C{j}")
    labels = [g if any(not _missing(series[k][0][i]) for k in series) else f"{g}\n(n/a)" for i, g in enumerate(groups)]
    ax.set_xticks(range(len(groups)), labels, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))
