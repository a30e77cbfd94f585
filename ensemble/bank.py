"""The prompt bank: every task's N prompts, loaded from a registry directory and kept in sync with it.

The registry's layout and its one-length-per-task rule belong to `tuning.registry`, which the Tune job
writes through too. A prompt trained on another backbone (fingerprint mismatch), a damaged file or
anything that is not a prompt file is refused and reported, never served, and never stops the other
files from loading.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from tuning.artifact import PromptArtifact, PromptFileError, prompt_from_bytes, read_prompt_file
from tuning.backbone import Backbone
from tuning.registry import PromptRegistry, keep_one_length, name_of
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
        self.registry = PromptRegistry(self.directory) if self.directory is not None else None
        self.tasks: dict[str, TaskPrompts] = {}
        self.refused: dict[str, str] = {}
        self.problem: str | None = None      # why the registry could not be read at the last reload
        self.version = 0
        self._files: dict[str, tuple[str, PromptArtifact]] = {}  # key -> (content digest, artifact)
        self._length_refused: dict[str, str] = {}
        if self.directory is not None:
            self.reload()

    def add(self, task: str, prompts: torch.Tensor, names: list[str] | None = None) -> None:
        """Register prompts directly (no files); used by jobs and tests."""
        names = names or [f"{task}-{i}" for i in range(len(prompts))]
        self.tasks[task] = TaskPrompts(get_task(task), names, prompts.detach().float())
        self.version += 1

    def reload(self) -> ReloadReport:
        """Re-read the registry: new files appear, deleted ones vanish, changed ones (by content) are re-read.

        Any file that cannot be served is refused with its reason while the others keep serving; a
        registry that cannot be listed keeps the last good prompts and sets `problem`."""
        report = ReloadReport()
        if self.registry is None:
            return report
        try:
            paths = self.registry.files()
        except OSError as e:
            self.problem = (f"registry {self.directory} cannot be read ({type(e).__name__}); serving the last good "
                            f"prompts ({len(self.tasks)} tasks)")
            return report
        self.problem = None
        seen: dict[str, tuple[str, PromptArtifact]] = {}
        refused: dict[str, str] = {}
        for path in paths:
            key = self.registry.key(path)
            try:
                data = read_prompt_file(path)
                digest = hashlib.sha256(data).hexdigest()
                if key in self._files and self._files[key][0] == digest:
                    seen[key] = self._files[key]
                    continue
                artifact = prompt_from_bytes(data, key, self.backbone)
                if artifact.task not in TASKS:
                    raise PromptFileError(f"unknown task {artifact.task[:100]!r}")
                seen[key] = (digest, artifact)
            except PromptFileError as e:
                refused[key] = str(e).replace(str(self.directory) + "/", "")
            except Exception as e:  # nothing in one file may stop the others from loading
                refused[key] = f"{type(e).__name__}: {str(e)[:200]}"
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
            by_task.setdefault(artifact.task, []).append((key, artifact))
        tasks, self._length_refused = {}, {}
        for task, items in by_task.items():
            items, refused = keep_one_length(items, lambda item: item[1].length)
            self._length_refused.update({key: why for (key, _), why in refused})
            tasks[task] = TaskPrompts(get_task(task), [name_of(k) for k, _ in items],
                                      torch.stack([a.prompt for _, a in items]))
        self.tasks = tasks
        self.version += 1

    def summary(self) -> dict:
        return {name: {"n_prompts": tp.n, "prompt_length": tp.length, "kind": tp.task.kind,
                       "labels": list(tp.task.verbalizers), "prompts": tp.names}
                for name, tp in sorted(self.tasks.items())}
