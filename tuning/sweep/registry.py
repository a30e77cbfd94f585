"""Register the best N prompts of a task where the Serve deployment reads them: `<registry>/<task>/*.safetensors`.

Every packed prompt of every trial is a candidate, ranked by its best dev primary metric. The prompt
bank serves one prompt length per task, so the N are taken among candidates of the winner's length.
Replacement is atomic per file and ordered: new files are written (each atomically) before the
task's stale files are deleted, so a server reloading midway sees old + new prompts, never none; a
lock file per task serialises concurrent registrations.
"""

from __future__ import annotations

import fcntl
import json
from dataclasses import dataclass
from pathlib import Path

from tuning.artifact import SUFFIX, PromptArtifact, save_prompt
from tuning.tasks import get_task

REGISTERED_FILE = "registered.json"
LOCK_FILE = ".register.lock"


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
    """Every packed prompt of every trial that left a checkpoint (stopped trials included)."""
    from .trainable import load_checkpoint_prompts
    out = []
    for result in result_grid:
        if result.checkpoint is None:
            continue
        trial_id = str(result.metrics.get("trial_id") or Path(result.path).name)
        with result.checkpoint.as_directory() as d:
            out += [Candidate(trial_id, k, a) for k, a in enumerate(load_checkpoint_prompts(d))]
    return out


def select(candidates: list[Candidate], n: int) -> list[Candidate]:
    ranked = sorted(candidates, key=lambda c: (-c.score, c.trial_id, c.k))
    if not ranked:
        return []
    length = ranked[0].artifact.length
    return [c for c in ranked if c.artifact.length == length][:n]


def register(task: str, chosen: list[Candidate], registry: str | Path, experiment_dir: str | Path | None = None) -> list[Path]:
    """Write the chosen prompts to `<registry>/<task>/`, then delete the task's other prompt files."""
    if not chosen:
        raise ValueError(f"no trial of task {task!r} left a checkpoint: nothing to register")
    task_dir = Path(registry) / task
    task_dir.mkdir(parents=True, exist_ok=True)
    # One registration per task at a time: two sweeps interleaving write-then-delete would delete each other's
    # new files and leave the task empty; serialised, the last one wins whole.
    with open(task_dir / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        written = [save_prompt(c.artifact, task_dir / f"{c.name}{SUFFIX}") for c in chosen]
        keep = {p.name for p in written}
        for stale in task_dir.glob(f"*{SUFFIX}"):
            if stale.name not in keep:
                stale.unlink(missing_ok=True)
    if experiment_dir is not None:
        record = [{"trial_id": c.trial_id, "k": c.k, "score": c.score, "length": c.artifact.length,
                   "path": str(p)} for c, p in zip(chosen, written)]
        (Path(experiment_dir) / REGISTERED_FILE).write_text(json.dumps(record, indent=2))
    return written
