"""Choose the best N prompts of a task's sweep and register them where Serve reads them (`tuning.registry`).

Every packed prompt of every trial is a candidate, ranked by its best dev primary metric. A task serves
one prompt length (`keep_one_length`), so the N are taken among candidates of the winner's length.
`registered.json` in the experiment directory records what was registered, for the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tuning.artifact import PromptArtifact
from tuning.registry import PromptRegistry, keep_one_length
from tuning.tasks import get_task

REGISTERED_FILE = "registered.json"


@dataclass
class Candidate:
    trial_id: str
    k: int
    artifact: PromptArtifact

    @property
    def score(self) -> float:
        return float(self.artifact.metrics.get(get_task(self.artifact.task).primary_metric, float("-inf")))

    @property
    def name(self) -> str:
        return f"{self.artifact.task}-{self.trial_id}-k{self.k}"


def candidates_from_results(result_grid) -> list[Candidate]:
    """Every packed prompt of every trial that left a checkpoint (stopped trials included): Tune's, or the
    Ray Train group's that a --workers trial reports as `checkpoint_path`."""
    from tuning.checkpoint import load_checkpoint_prompts
    out = []
    for result in result_grid:
        if result.checkpoint is not None:
            with result.checkpoint.as_directory() as d:
                artifacts = load_checkpoint_prompts(d)
        elif path := result.metrics.get("checkpoint_path"):  # a --workers trial: its Ray Train group's last checkpoint
            artifacts = load_checkpoint_prompts(path)
        else:
            continue
        trial_id = str(result.metrics.get("trial_id") or Path(result.path).name)
        out += [Candidate(trial_id, k, a) for k, a in enumerate(artifacts)]
    return out


def select(candidates: list[Candidate], n: int) -> list[Candidate]:
    ranked = sorted(candidates, key=lambda c: (-c.score, c.trial_id, c.k))
    if not ranked:
        return []
    kept, _ = keep_one_length(ranked, lambda c: c.artifact.length, ranked[0].artifact.length)
    return kept[:n]


def register(task: str, chosen: list[Candidate], registry: str | Path, experiment_dir: str | Path | None = None) -> list[Path]:
    """Make `chosen` the task's registered prompts (`PromptRegistry.register`) and record them in the experiment."""
    if not chosen:
        raise ValueError(f"no trial of task {task!r} left a checkpoint: nothing to register")
    written = PromptRegistry(registry).register(task, [(c.name, c.artifact) for c in chosen])
    if experiment_dir is not None:
        record = [{"trial_id": c.trial_id, "k": c.k, "score": c.score, "length": c.artifact.length,
                   "path": str(p)} for c, p in zip(chosen, written)]
        (Path(experiment_dir) / REGISTERED_FILE).write_text(json.dumps(record, indent=2))
    return written
