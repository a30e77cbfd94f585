"""`python -m tuning`: one-line errors that name the fix, a full local run on a tiny model, and every CLI's -h."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys

import pytest
import torch

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
    # ... and its learning curve, which `plot` draws (a bad baseline is a one-line error).
    (history,) = (tmp_path / "rte").glob("*.history.jsonl")
    assert main(["plot", str(history), "--baseline", "majority class=0.5"]) == 0
    assert history.with_name(history.name.replace(".history.jsonl", ".png")).stat().st_size > 1000
    assert main(["plot", str(history), "--baseline", "majority"]) == 2
    # Several runs compare on one axis: their mean curves, one legend name each.
    twin = history.with_name("twin.history.jsonl")
    twin.write_text(history.read_text())
    compared = tmp_path / "compared.png"
    assert main(["plot", str(history), str(twin), "--label", "a", "--label", "b", "--out", str(compared)]) == 0
    assert compared.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["plot", str(history), str(twin), "--label", "a", "--out", str(compared)]) == 2


def test_a_stopped_train_command_resumes_where_it_stopped(tmp_path, tiny_dirs, capsys):
    """`--resume` continues from the last evaluation's saved state: 2 steps, then 2 more, end like 4 in one go."""
    from tuning.history import read_history

    def run(out, steps, *extra):
        assert main(["train", "--model", str(tiny_dirs["llama"]), "--task", "rte", "--prompt-length", "3",
                     "--batch-size", "2", "--eval-every", "2", "--train-examples", "8", "--eval-examples", "4",
                     "--no-progress", "--output-dir", str(out), "--steps", str(steps), *extra]) == 0
        return capsys.readouterr().out

    run(tmp_path / "whole", 4)
    assert "resuming" not in run(tmp_path / "parts", 2, "--resume")      # nothing saved yet: starts afresh
    assert "resuming from step 2" in run(tmp_path / "parts", 4, "--resume")
    (whole,), (parts,) = ((tmp_path / d / "rte").glob("*.safetensors") for d in ("whole", "parts"))
    assert torch.equal(load_prompt(whole).prompt, load_prompt(parts).prompt)
    histories = [read_history(next((tmp_path / d / "rte").glob("*.history.jsonl"))) for d in ("whole", "parts")]
    assert [r["step"] for r in histories[1]] == [1, 2, 3, 4]
    assert [r["loss"] for r in histories[1]] == [r["loss"] for r in histories[0]]
    assert "resuming" not in run(tmp_path / "parts", 4)                  # without --resume: over from step 1


def _cli_parsers():
    """(name, parser) of every CLI parser whose flags users read with -h, built in-process (no model, no Ray)."""
    from deployments.__main__ import build_parser as deployments_parser
    from ensemble.__main__ import build_parser as ensemble_parser
    from transfer.__main__ import build_parser as transfer_parser
    from tuning.cli import build_parser as tuning_parser
    from tuning.sweep.__main__ import build_parser as sweep_parser
    from tuning.sweep.__main__ import build_report_parser

    def subparsers(prog, parser):
        (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        return [(f"{prog} {name}", p) for name, p in sub.choices.items()]

    return [*subparsers("tuning", tuning_parser()), ("tuning.sweep", sweep_parser()),
            ("tuning.sweep report", build_report_parser()), *subparsers("transfer", transfer_parser()),
            ("deployments", deployments_parser()), *subparsers("ensemble", ensemble_parser())]


def test_every_cli_flag_has_help_and_shows_its_default():
    """Issue 12: `-h` explains every flag and shows its default (config fields carry metadata["help"])."""
    names = [name for name, _ in _cli_parsers()]
    assert {"tuning train", "tuning.sweep", "deployments", "ensemble evaluate"} <= set(names)
    assert {f"transfer {job}" for job in ("ensemble", "squad-mrqa", "paraphrase", "interpret", "study")} <= set(names)
    problems = []
    for name, parser in _cli_parsers():
        formatter = parser._get_formatter()
        parser.format_help()  # renders (a stray % in a help string would raise here)
        for action in parser._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            flag = action.option_strings[0]
            own = re.sub(r"\s*\(?default: %\(default\)s\)?", "", action.help or "").strip()
            shown = " ".join(formatter._expand_help(action).split())
            if not own:
                problems.append(f"{name} {flag}: no help text")
            if f"default: {action.default}" not in shown:
                problems.append(f"{name} {flag}: default {action.default!r} not shown in {shown!r}")
    assert not problems, "\n".join(problems)


def test_every_config_field_carries_help_metadata():
    """The flags' help comes from the fields (tuning/fields.py `opt`), PEFT-style, not from comments."""
    import dataclasses

    from deployments.config import ServeConfig
    from transfer.config import JOBS
    from tuning.config import TrainConfig
    from tuning.sweep.config import SweepConfig

    for cls in (TrainConfig, SweepConfig, *JOBS.values(), ServeConfig):
        bare = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("help", "").strip()]
        assert not bare, f"{cls.__name__} fields without metadata['help']: {bare}"


def test_job_configs_compose_a_train_config_and_keep_their_flags():
    """Issue 12: a job's training fields live in its `train: TrainConfig` (with the job's defaults), and its
    flags keep their names: --model, --steps, --prompt-lr (train.lr) ... land in `.train`."""
    import dataclasses

    from transfer.__main__ import build_parser as transfer_parser
    from transfer.config import JOBS, EnsembleConfig
    from tuning.cli import config_from_args
    from tuning.config import TrainConfig
    from tuning.fields import compose
    from tuning.sweep.__main__ import build_parser as sweep_parser
    from tuning.sweep.config import SweepConfig

    for cls in (SweepConfig, *JOBS.values()):
        assert isinstance(cls().train, TrainConfig), cls.__name__
    for job, cls in JOBS.items():  # no flags: the job's own defaults, nested included
        args = transfer_parser().parse_args([job])
        assert config_from_args(args, cls) == cls(), job
    assert config_from_args(sweep_parser().parse_args([]), SweepConfig) == SweepConfig()

    args = transfer_parser().parse_args(["ensemble", "--model", "m", "--steps", "7", "--prompt-lr", "0.1",
                                         "--num-prompts", "3", "--eval-every", "2", "--seeds", "4", "5"])
    config = config_from_args(args, EnsembleConfig)
    assert (config.train.model, config.train.steps, config.train.lr, config.train.num_prompts) == ("m", 7, 0.1, 3)
    assert config.eval_every == 2 and config.seeds == (4, 5) and config.train.batch_size == 8  # the job's default
    from transfer.common import train_config
    run = train_config(config, "rte", "prompt", 4)
    assert run == dataclasses.replace(config.train, task="rte", seed=4, eval_every=2, eval_examples=200)

    with pytest.raises(ValueError, match="--prompt-lr and --lr-per-embedding-rms must be positive"):
        compose(EnsembleConfig, prompt_lr=-1.0).validate()  # TrainConfig's message, naming the job's flag
    with pytest.raises(TypeError, match="--lr"):
        compose(EnsembleConfig, lr=0.1)  # the job has --prompt-lr, not --lr

    sweep = config_from_args(sweep_parser().parse_args(["--model", "m", "--eval-every", "50", "--steps", "9",
                                                        "--num-prompts", "2", "--optimizer", "adamw"]), SweepConfig)
    assert (sweep.train.model, sweep.train.eval_every, sweep.train.num_prompts, sweep.train.optimizer) == ("m", 50, 2, "adamw")
    assert sweep.steps == 9  # a pin of the search space, not the train config's
    # What the space sets per trial, or the sweep for every trial, has no flag of its own.
    flags = {o for a in sweep_parser()._actions for o in a.option_strings}
    assert not flags & {"--scale-parameter", "--task", "--mode", "--output-dir", "--progress"}
    # The lr schedule is pinned like --steps: a field of the sweep, not of its train config.
    pinned = config_from_args(sweep_parser().parse_args(["--decay-factor", "0.7", "--steps-per-decay", "600"]), SweepConfig)
    assert (pinned.decay_factor, pinned.steps_per_decay, pinned.train.decay_factor) == (0.7, 600, None)
    # --workers is the sweep's (a Ray Train group per trial), never the train config's (one process per trial).
    sweep = config_from_args(sweep_parser().parse_args(["--workers", "2"]), SweepConfig)
    assert (sweep.workers, sweep.train.workers) == (2, 1)
