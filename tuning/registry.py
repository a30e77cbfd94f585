"""The prompt registry: the one place that knows its layout, its file names and its one-length rule.

Layout: `<root>/<task>/<name>.safetensors`. The sweep writes it (`PromptRegistry.register`), the Serve
bank and the bf16 guard read it (`PromptRegistry.files`); both sides take the rule that a task serves
one prompt length from `keep_one_length`, so what is registered is what is served. Plain Python, no Ray.
"""

from __future__ import annotations

import fcntl
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from .artifact import SUFFIX, PromptArtifact, save_prompt

LOCK_FILE = ".register.lock"

T = TypeVar("T")


def _component(value: str, what: str) -> str:
    # A task or prompt name is one path component: no escaping the registry, no clash with the
    # dot-files (lock, atomic-write temporaries) that live next to the prompts.
    if not value or "/" in value or "\0" in value or value.startswith("."):
        raise ValueError(f"{what} {value!r} cannot name a registry entry (empty, a path, or a dot-file)")
    return value


def file_name(name: str) -> str:
    """The file a prompt called `name` is stored in."""
    return _component(name, "prompt name") + SUFFIX


def name_of(path: str | Path) -> str:
    """The prompt name of a registry file (inverse of `file_name`)."""
    return Path(path).name.removesuffix(SUFFIX)


def keep_one_length(items: Iterable[T], length_of: Callable[[T], int],
                    length: int | None = None) -> tuple[list[T], list[tuple[T, str]]]:
    """Split `items` into those of one prompt length and the others, each with why it was left out.

    The bank stacks a task's prompts into one [N, p, d] tensor, so a task serves one length. `length`
    is that length when the caller knows it (the sweep: its winner's); by default it is the most common
    one, ties going to the shortest so that the choice does not depend on listing order.
    """
    items = list(items)
    if not items:
        return [], []
    if length is None:
        counts = Counter(length_of(i) for i in items)
        length = min(counts, key=lambda n: (-counts[n], n))
    kept = [i for i in items if length_of(i) == length]
    refused = [(i, f"length {length_of(i)} differs from the task's {length}") for i in items if length_of(i) != length]
    return kept, refused


class PromptRegistry:
    """A registry directory; paths, listing and registration go through here."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"PromptRegistry({str(self.root)!r})"

    def task_dir(self, task: str) -> Path:
        return self.root / _component(task, "task")

    def path_for(self, task: str, name: str) -> Path:
        return self.task_dir(task) / file_name(name)

    def key(self, path: str | Path) -> str:
        """`<task>/<file>`: how reports and refusals name a registry file."""
        path = Path(path)
        return f"{path.parent.name}/{path.name}"

    def files(self, task: str | None = None) -> list[Path]:
        """The prompt files of one task, or of all tasks, sorted by (task, file name).

        Listing all tasks raises OSError when the root cannot be read, so a server can keep its last good
        prompts; a task without a directory simply has none."""
        if task is not None:
            return sorted(self.task_dir(task).glob(f"*{SUFFIX}"))
        dirs = sorted(d for d in self.root.iterdir() if d.is_dir())
        return [p for d in dirs for p in sorted(d.glob(f"*{SUFFIX}"))]

    def register(self, task: str, named_artifacts: Sequence[tuple[str, PromptArtifact]]) -> list[Path]:
        """Make `named_artifacts` the task's prompts: write them, then delete the task's other prompt files.

        Replacement is atomic per file and ordered: new files are written (each atomically) before the
        stale ones are deleted, so a server reloading midway sees old + new prompts, never none. A lock
        file per task serialises concurrent registrations. Returns the written paths, in order."""
        named_artifacts = list(named_artifacts)
        if not named_artifacts:
            raise ValueError(f"nothing to register for task {task!r}: refusing to empty it")
        wrong = sorted({a.task for _, a in named_artifacts} - {task})
        if wrong:
            raise ValueError(f"prompts of task(s) {wrong} cannot be registered under {task!r}")
        _, refused = keep_one_length(named_artifacts, lambda na: na[1].length, named_artifacts[0][1].length)
        if refused:  # the bank would serve only some of them
            (name, _), why = refused[0]
            raise ValueError(f"task {task!r} serves one prompt length; {name!r}: {why}")
        paths = [self.path_for(task, name) for name, _ in named_artifacts]
        if len(set(paths)) != len(paths):
            raise ValueError(f"duplicate prompt names for task {task!r}")
        task_dir = self.task_dir(task)
        task_dir.mkdir(parents=True, exist_ok=True)
        # One registration per task at a time: two registrations interleaving write-then-delete would delete
        # each other's new files and leave the task empty; serialised, the last one wins whole.
        with open(task_dir / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            written = [save_prompt(a, p) for (_, a), p in zip(named_artifacts, paths)]
            keep = {p.name for p in written}
            for stale in self.files(task):
                if stale.name not in keep:
                    stale.unlink(missing_ok=True)
        return written
