"""`python -m tuning train|export-peft|import-peft|params`: local prompt tuning, no Ray needed."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing
from pathlib import Path

from .config import TrainConfig


class CliError(Exception):
    """A one-line error that names the fix."""


def _flag_type(hint):
    """(element type, is tuple) of a field annotation such as `int | None` or `tuple[str, ...]`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _flag_type(args[0])
    if typing.get_origin(hint) is tuple:
        return args[0], True
    return hint, False


def add_config_args(parser: argparse.ArgumentParser, config_cls) -> None:
    """One --flag per field of a config dataclass, typed from its annotations; help from the field's
    `metadata["help"]` where it has one, and always its default."""
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        kind, many = _flag_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        text = f.metadata.get("help", "")
        shown = f"{text} (default: %(default)s)" if text else "default: %(default)s"
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default, help=text or None)
        elif many:
            parser.add_argument(flag, type=kind, nargs="+", default=default, metavar=f.name.upper(), help=shown)
        else:
            parser.add_argument(flag, type=kind, default=default, metavar=f.name.upper(), help=shown)


def config_from_args(args: argparse.Namespace, config_cls):
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)}
    return config_cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def cmd_train(args) -> None:
    from .artifact import save_prompt
    from .history import HistoryWriter
    from .train import train

    config = config_from_args(args, TrainConfig).validate()
    task_dir = Path(config.output_dir) / config.task
    prompt_name = lambda seed: f"{config.task}-p{config.prompt_length}-{config.init}-s{seed}"  # noqa: E731
    run = f"model-tuned-s{config.seed}" if config.mode == "model" else prompt_name(config.seed)
    with HistoryWriter(task_dir / (run if config.num_prompts == 1 else f"{run}-k{config.num_prompts}")) as history:
        result = train(config, on_record=history)
    paths = []
    if config.mode == "prompt":
        for k, artifact in enumerate(result.artifacts()):
            paths.append(save_prompt(artifact, task_dir / prompt_name(config.seed + k)))
    else:
        out = task_dir / run
        result.backbone.model.save_pretrained(out)
        result.backbone.tokenizer.save_pretrained(out)
        paths.append(out)
    for metrics, path in zip(result.best_metrics, paths):
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tuning", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a prompt (or the whole model) on one task")
    add_config_args(train, TrainConfig)
    train.set_defaults(func=cmd_train)
    exp = sub.add_parser("export-peft", help="write a prompt as a PEFT prompt-tuning adapter")
    exp.add_argument("prompt")
    exp.add_argument("output")
    exp.add_argument("--model", default=TrainConfig.model)
    exp.set_defaults(func=cmd_export_peft)
    imp = sub.add_parser("import-peft", help="read a PEFT prompt-tuning adapter as a prompt file")
    imp.add_argument("adapter")
    imp.add_argument("output")
    imp.add_argument("--model", default=TrainConfig.model)
    imp.add_argument("--task", default="")
    imp.set_defaults(func=cmd_import_peft)
    params = sub.add_parser("params", help="trainable/total parameters per prompt length (paper Table 4 layout)")
    params.add_argument("--model", default=TrainConfig.model)
    params.add_argument("--lengths", type=int, nargs="+", default=[1, 5, 20, 100, 150])
    params.set_defaults(func=cmd_params)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .artifact import PromptFileError
    from .backbone import BackboneError
    from .tasks import DatasetUnavailable

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, CliError, PromptFileError, BackboneError, DatasetUnavailable, KeyError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0
