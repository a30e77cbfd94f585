"""A training checkpoint directory, as Tune trials and Ray Train workers write it (plain files, no Ray).

`prompt_<k>.safetensors`: the best prompt of each packed run so far, as servable prompt files, so
registration never retrains; `trainer.pt`: the `Trainer`'s whole state, so a retried or resumed run
continues from this evaluation; `state.json`: the step, the best metrics and the last report.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from .artifact import PromptArtifact, load_prompt, save_prompt

STATE_FILE = "state.json"
TRAINER_FILE = "trainer.pt"


def prompt_file(k: int) -> str:
    return f"prompt_{k}.safetensors"


def evaluation_report(step: int, metrics: list[dict], best: list[dict], primary: str, final: bool) -> dict:
    """What an evaluation reports (Tune and Ray Train alike): per packed prompt k, `prompt_k/<metric>`
    (now), `prompt_k/best_score` and `prompt_k/best_step`; `score` (the best current primary metric
    across the K prompts: what ASHA compares) and `best_score` (the best so far across them)."""
    report = {"step": step, "score": max(m[primary] for m in metrics),
              "best_score": max(b[primary] for b in best), "finished": final}
    for k, (m, b) in enumerate(zip(metrics, best)):
        report.update({f"prompt_{k}/{name}": value for name, value in m.items()})
        report[f"prompt_{k}/best_score"] = b[primary]
        report[f"prompt_{k}/best_step"] = b["step"]
    return report


def write_checkpoint(directory: str | Path, trainer, report: dict, finished: bool) -> None:
    """Write `trainer`'s best prompts, its state and `report` into `directory` (which exists)."""
    directory = Path(directory)
    for k, artifact in enumerate(trainer.best_artifacts()):
        save_prompt(artifact, directory / prompt_file(k))
    torch.save(trainer.state_dict(), directory / TRAINER_FILE)
    (directory / STATE_FILE).write_text(json.dumps(
        {"step": trainer.step_count, "best": trainer.best, "finished": finished, "metrics": report}))


def read_state(directory: str | Path) -> dict:
    return json.loads((Path(directory) / STATE_FILE).read_text())


def read_trainer_state(directory: str | Path) -> dict:
    """What `Trainer.load_state_dict` takes (tensors and plain values only: loaded with weights_only)."""
    return torch.load(Path(directory) / TRAINER_FILE, weights_only=True)


def load_checkpoint_prompts(directory: str | Path) -> list[PromptArtifact]:
    """The K prompt artifacts a checkpoint holds, in packed order."""
    directory = Path(directory)
    return [load_prompt(p) for p in sorted(directory.glob("prompt_*.safetensors"), key=lambda p: int(p.stem.split("_")[1]))]
