"""`python -m tuning train|export-peft|import-peft|plot|params`: local prompt tuning (no Ray unless --workers > 1)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path

from .config import TrainConfig
from .fields import compose, dashed, flags, is_nested
from .history import HistoryWriter


class CliError(Exception):
    """A one-line error that names the fix."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Descriptions as written; every option's help ends with its default (for hand-written flags)."""


def report_error(e: BaseException) -> int:
    """Print `error: <message>` as one line on stderr; the exit status for a bad value or input (2)."""
    message = e.args[0] if isinstance(e, KeyError) and e.args else e  # str(KeyError) would add quotes
    print(f"error: {message}", file=sys.stderr)
    return 2


def run_command(fn: Callable[[], int | None]) -> int:
    """Every CLI's error boundary: run `fn` and return its exit status (None: 0); a bad config value, prompt
    file, model or dataset becomes one `error:` line and status 2 instead of a traceback."""
    from .artifact import PromptFileError
    from .backbone import BackboneError
    from .tasks import DatasetUnavailable

    try:
        return fn() or 0
    except (ValueError, CliError, PromptFileError, BackboneError, DatasetUnavailable, KeyError) as e:
        return report_error(e)


def _flag_type(hint):
    """(element type, is tuple) of a field annotation such as `int | None` or `tuple[str, ...]`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _flag_type(args[0])
    if typing.get_origin(hint) is tuple:
        return args[0], True
    return hint, False


def add_config_args(parser: argparse.ArgumentParser, config_cls) -> None:
    """One --flag per field of a config dataclass (`tuning.fields.flags`: a nested config such as a job's
    `train: TrainConfig` contributes its fields' flags, in their own argument group), typed from the
    annotations; help from the field's `metadata["help"]` (see tuning/fields.py `opt`) where it has one,
    and always its default (for a nested config: the job's default)."""
    groups = {}
    for f in dataclasses.fields(config_cls):
        if is_nested(f):
            title = f"{f.name} ({type(f.default_factory()).__name__})"
            groups[f.name] = parser.add_argument_group(title, f.metadata.get("help"))
    for fl in flags(config_cls):
        target = groups.get(fl.path[0], parser) if len(fl.path) > 1 else parser
        flag = dashed(fl.name)
        kind, many = _flag_type(fl.hint)
        shown = f"{fl.help} (default: %(default)s)" if fl.help else "default: %(default)s"
        if kind is bool:
            action = target.add_argument(flag, action=argparse.BooleanOptionalAction, default=fl.default)
            action.help = shown  # set after: some Python versions' BooleanOptionalAction append the default too
        elif many:
            target.add_argument(flag, type=kind, nargs="+", default=fl.default, metavar=fl.name.upper(), help=shown)
        else:
            target.add_argument(flag, type=kind, default=fl.default, metavar=fl.name.upper(), help=shown)


def config_from_args(args: argparse.Namespace, config_cls):
    """The config the flags of `add_config_args(parser, config_cls)` describe (lists become tuples)."""
    values = {fl.name: getattr(args, fl.name) for fl in flags(config_cls)}
    return compose(config_cls, **{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def _train(config: TrainConfig, stem: Path, resume: bool) -> tuple[list, list[dict], object, HistoryWriter]:
    """(prompt artifacts, best dev metrics of each, the model-tuned backbone or None, the written history),
    trained in this process (its state saved at each evaluation to `<stem>.trainer.pt`, which `resume`
    continues from) or, with --workers W > 1, by W Ray Train workers (which resume from their own
    checkpoints under --output-dir)."""
    if config.workers == 1:
        import torch

        from .artifact import atomic_write
        from .train import Trainer

        trainer, state = Trainer(config), stem.with_name(stem.name + ".trainer.pt")
        if resume and state.exists():
            trainer.load_state_dict(torch.load(state, weights_only=True))
            print(f"resuming from step {trainer.step_count} ({state})")
        with HistoryWriter(stem, past=trainer.history) as history:
            def save(*_):
                atomic_write(state, lambda tmp: torch.save(trainer.state_dict(), tmp))

            result = trainer.fit(on_eval=save, on_record=history)
        model_tuned = result.backbone if config.mode == "model" else None
        return (result.artifacts() if model_tuned is None else []), result.best_metrics, model_tuned, history
    from .backbone import freeze, load_backbone
    from .distributed import train_on_workers

    result = train_on_workers(config)
    with HistoryWriter(stem) as history:
        for record in result.history:
            history(record)
    if config.mode == "prompt":
        return result.artifacts, result.best_metrics, None, history
    backbone = load_backbone(config.model, trainable=True)
    backbone.model.load_state_dict(result.trainer_state["best_weights"])
    freeze(backbone.model)
    return [], result.best_metrics, backbone, history


def cmd_train(args) -> None:
    from .artifact import save_prompt
    from .registry import PromptRegistry

    config = config_from_args(args, TrainConfig).validate()
    runs = PromptRegistry(config.output_dir)
    prompt_name = lambda seed: f"{config.task}-p{config.prompt_length}-{config.init}-s{seed}"  # noqa: E731
    run = f"model-tuned-s{config.seed}" if config.mode == "model" else prompt_name(config.seed)
    stem = runs.task_dir(config.task) / (run if config.num_prompts == 1 else f"{run}-k{config.num_prompts}")
    artifacts, best_metrics, model_tuned, history = _train(config, stem, args.resume)
    paths = [save_prompt(a, runs.path_for(config.task, prompt_name(config.seed + k))) for k, a in enumerate(artifacts)]
    if model_tuned is not None:
        out = runs.task_dir(config.task) / run
        model_tuned.model.save_pretrained(out)
        model_tuned.tokenizer.save_pretrained(out)
        paths.append(out)
    for metrics, path in zip(best_metrics, paths):
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "step")
        print(f"{config.task} dev (best at step {metrics['step']}): {shown} -> {path}")
    print(f"learning curve: {history.path} (TensorBoard: tensorboard --logdir {history.tensorboard_dir})")


def cmd_export_peft(args) -> None:
    from .artifact import export_peft, load_prompt
    from .backbone import load_backbone

    backbone = load_backbone(args.model)
    out = export_peft(load_prompt(args.prompt, backbone), args.output, backbone)
    print(f"PEFT adapter written to {out}")


def cmd_import_peft(args) -> None:
    from .artifact import import_peft, save_prompt
    from .backbone import load_backbone

    backbone = load_backbone(args.model)
    out = save_prompt(import_peft(args.adapter, backbone, task=args.task), args.output)
    print(f"prompt written to {out}")


def cmd_params(args) -> None:
    from .backbone import load_backbone
    from .report import parameter_table

    print(parameter_table(load_backbone(args.model), args.lengths))


def cmd_plot(args) -> None:
    from .history import plot_history, plot_runs, read_history

    histories = [Path(h) for h in args.history]
    for history in histories:
        if not history.is_file():
            raise CliError(f"{history}: no such history file (python -m tuning train writes <run>.history.jsonl)")
    if args.label and len(args.label) != len(histories):
        raise CliError(f"--label: give one per history file ({len(histories)}), or none")
    metric = args.metric
    if metric is None:
        evals = [r for r in read_history(histories[0]) if "dev" in r]
        metric = next(iter(evals[0]["dev"][0])) if evals else "accuracy"
    baselines = dict(b.split("=", 1) for b in args.baseline)
    try:
        baselines = {name: float(value) for name, value in baselines.items()}
    except ValueError:
        raise CliError("--baseline takes NAME=VALUE with VALUE a 0-1 fraction, e.g. 'majority class=0.684'") from None
    if len(histories) == 1:
        out = plot_history(histories[0], args.out or histories[0].with_name(
            histories[0].name.removesuffix(".history.jsonl") + ".png"), metric, baselines)
    else:
        if args.out is None:
            raise CliError("comparing several runs: name the picture with --out")
        out = plot_runs(histories, args.out, metric, baselines, args.label or None)
    print(f"plot: {out}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tuning", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a prompt (or the whole model) on one task")
    add_config_args(train, TrainConfig)
    train.add_argument("--resume", action="store_true", help="continue from the run's last evaluation "
                       "(<output-dir>/<task>/<run>.trainer.pt, saved at each one) instead of starting over "
                       "(default: False)")
    train.set_defaults(func=cmd_train)
    model_help = "backbone the prompt belongs to: default name, hub id or local directory"
    exp = sub.add_parser("export-peft", help="write a prompt as a PEFT prompt-tuning adapter",
                         formatter_class=HelpFormatter)
    exp.add_argument("prompt", help="prompt file (.safetensors)")
    exp.add_argument("output", help="adapter directory to write")
    exp.add_argument("--model", default=TrainConfig.model, help=model_help)
    exp.set_defaults(func=cmd_export_peft)
    imp = sub.add_parser("import-peft", help="read a PEFT prompt-tuning adapter as a prompt file",
                         formatter_class=HelpFormatter)
    imp.add_argument("adapter", help="PEFT adapter directory")
    imp.add_argument("output", help="prompt file to write")
    imp.add_argument("--model", default=TrainConfig.model, help=model_help)
    imp.add_argument("--task", default="", help="task recorded in the prompt file (empty: the adapter's own, if it has one)")
    imp.set_defaults(func=cmd_import_peft)
    plot = sub.add_parser("plot", help="a run's learning curve as a PNG (dev metric per prompt, training loss), "
                          "or several runs compared on one axis", formatter_class=HelpFormatter)
    plot.add_argument("history", nargs="+", help="<run>.history.jsonl written by `python -m tuning train`; "
                      "several: their mean curves side by side")
    plot.add_argument("--label", action="append", default=[], help="legend name of each run, in order (repeatable)")
    plot.add_argument("--out", default=None, help="PNG to write (default: beside the history file)")
    plot.add_argument("--metric", default=None, help="dev metric to plot (default: the first the run recorded)")
    plot.add_argument("--baseline", action="append", default=[], metavar="NAME=VALUE",
                      help="a horizontal reference line, e.g. 'majority class=0.684' (repeatable)")
    plot.set_defaults(func=cmd_plot)
    params = sub.add_parser("params", help="trainable/total parameters per prompt length (paper Table 4 layout)",
                            formatter_class=HelpFormatter)
    params.add_argument("--model", default=TrainConfig.model, help="backbone: default name, hub id or local directory")
    params.add_argument("--lengths", type=int, nargs="+", default=[1, 5, 20, 100, 150], help="prompt lengths, one row each")
    params.set_defaults(func=cmd_params)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: args.func(args))
