"""The prompt bank: every task's N prompts, loaded from a registry directory and kept in sync with it.

Registry layout (written by the Tune job): `<registry>/<task>/<name>.safetensors`. A prompt trained
on another backbone (fingerprint mismatch) or a damaged file is refused and reported, never served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from tuning.artifact import SUFFIX, PromptArtifact, PromptFileError, load_prompt
from tuning.backbone import Backbone
from tuning.tasks import TASKS, Task, get_task


@dataclass
class TaskPrompts:
    task: Task
    names: list[str]
    prompts: torch.Tensor        # [N, p, d]

    @property
    def n(self) -> int:
        return len(self.names)

    @property
    def length(self) -> int:
        return self.prompts.shape[1]


@dataclass
class ReloadReport:
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed)


class PromptBank:
    """Tasks → stacked prompts. `version` changes whenever the set of prompts does."""

    def __init__(self, backbone: Backbone, directory: str | Path | None = None):
        self.backbone = backbone
        self.directory = Path(directory) if directory is not None else None
        self.tasks: dict[str, TaskPrompts] = {}
        self.refused: dict[str, str] = {}
        self.version = 0
        self._files: dict[str, tuple[float, PromptArtifact]] = {}
        self._length_refused: dict[str, str] = {}
        if self.directory is not None:
            self.reload()

    def add(self, task: str, prompts: torch.Tensor, names: list[str] | None = None) -> None:
        """Register prompts directly (no files); used by jobs and tests."""
        names = names or [f"{task}-{i}" for i in range(len(prompts))]
        self.tasks[task] = TaskPrompts(get_task(task), names, prompts.detach().float())
        self.version += 1

    def reload(self) -> ReloadReport:
        """Re-read the registry: new files appear, deleted ones vanish, changed ones are re-read."""
        report = ReloadReport()
        if self.directory is None:
            return report
        seen: dict[str, tuple[float, PromptArtifact]] = {}
        refused: dict[str, str] = {}
        for path in sorted(self.directory.glob(f"*/*{SUFFIX}")):
            key = str(path.relative_to(self.directory))
            try:
                mtime = path.stat().st_mtime
                if key in self._files and self._files[key][0] == mtime:
                    seen[key] = self._files[key]
                    continue
                artifact = load_prompt(path, self.backbone)
                if artifact.task not in TASKS:
                    raise PromptFileError(f"unknown task {artifact.task!r}")
                seen[key] = (mtime, artifact)
            except (PromptFileError, OSError) as e:
                refused[key] = str(e)
        report.added = sorted(set(seen) - set(self._files))
        report.removed = sorted(set(self._files) - set(seen))
        changed = [k for k in seen if k in self._files and seen[k][0] != self._files[k][0]]
        if report.added or report.removed or changed or not self.tasks and seen:
            self._files = seen
            self._rebuild()
        self.refused = report.refused = {**refused, **self._length_refused}
        return report

    def _rebuild(self) -> None:
        by_task: dict[str, list[tuple[str, PromptArtifact]]] = {}
        for key, (_, artifact) in sorted(self._files.items()):
            by_task.setdefault(artifact.task, []).append((Path(key).stem, artifact))
        tasks, self._length_refused = {}, {}
        for task, items in by_task.items():
            lengths = {a.length for _, a in items}
            if len(lengths) > 1:  # one task, one prompt length: keep the most common length
                keep = max(lengths, key=lambda n: sum(a.length == n for _, a in items))
                for name, a in items:
                    if a.length != keep:
                        self._length_refused[f"{task}/{name}{SUFFIX}"] = f"length {a.length} differs from the task's {keep}"
                items = [(n, a) for n, a in items if a.length == keep]
            tasks[task] = TaskPrompts(get_task(task), [n for n, _ in items], torch.stack([a.prompt for _, a in items]))
        self.tasks = tasks
        self.version += 1

    def summary(self) -> dict:
        return {name: {"n_prompts": tp.n, "prompt_length": tp.length, "kind": tp.task.kind,
                       "labels": list(tp.task.verbalizers), "prompts": tp.names}
                for name, tp in sorted(self.tasks.items())}
