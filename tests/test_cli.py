"""`python -m tuning`: one-line errors that name the fix, and a full local run on a tiny model."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tuning.artifact import load_prompt
from tuning.cli import main


@pytest.mark.parametrize("argv, fragment", [
    (["train", "--init", "zeros"], "--init must be one of"),
    (["train", "--task", "nosuch"], "unknown task"),
    (["train", "--task", "qqp", "--model", "{llama}"], "QQP"),
    (["train", "--model", "/no/such/model"], "cannot load model"),
    (["train", "--batch-size", "6", "--grad-accum", "4"], "multiple of --grad-accum"),
])
def test_bad_arguments_give_one_line_errors(argv, fragment, capsys, tiny_dirs):
    argv = [a.format(llama=tiny_dirs["llama"]) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and fragment in err and "\n" not in err


def test_train_command_writes_artifacts_and_prints_metrics(tmp_path, tiny_dirs):
    cmd = [sys.executable, "-m", "tuning", "train", "--model", str(tiny_dirs["llama"]), "--task", "rte",
           "--prompt-length", "3", "--steps", "2", "--batch-size", "2", "--eval-every", "2",
           "--train-examples", "8", "--eval-examples", "4", "--num-prompts", "2", "--output-dir", str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("rte dev")]
    assert len(lines) == 2 and "accuracy=" in lines[0]
    files = sorted((tmp_path / "rte").glob("*.safetensors"))
    assert len(files) == 2
    art = load_prompt(files[0])
    assert art.length == 3 and art.task == "rte" and "accuracy" in art.metrics
