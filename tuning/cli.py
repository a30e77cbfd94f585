"""`python -m tuning train|export-peft|import-peft|params`: local prompt tuning, no Ray needed."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .config import TrainConfig


class CliError(Exception):
    """A one-line error that names the fix."""


def _add_config_args(parser: argparse.ArgumentParser, config_cls=TrainConfig) -> None:
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        if isinstance(default, bool) or "bool" in str(f.type):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        else:
            annotation = str(f.type)  # e.g. "int | None"
            kind = float if "float" in annotation else int if "int" in annotation else str
            parser.add_argument(flag, type=kind, default=default, metavar=f.name.upper())


def _config(args: argparse.Namespace, config_cls=TrainConfig):
    return config_cls(**{f.name: getattr(args, f.name) for f in dataclasses.fields(config_cls)})


def cmd_train(args) -> None:
    from .artifact import save_prompt
    from .train import train

    config = _config(args).validate()
    result = train(config)
    task_dir = Path(config.output_dir) / config.task
    paths = []
    if config.mode == "prompt":
        for k, artifact in enumerate(result.artifacts(config)):
            paths.append(save_prompt(artifact, task_dir / f"{config.task}-p{config.prompt_length}-{config.init}-s{config.seed + k}"))
    else:
        out = task_dir / f"model-tuned-s{config.seed}"
        result.backbone.model.save_pretrained(out)
        result.backbone.tokenizer.save_pretrained(out)
        paths.append(out)
    for metrics, path in zip(result.best_metrics, paths):
        shown = " ".join(f"{k}={v:.4f}" for k, v in metrics.items() if k != "step")
        print(f"{config.task} dev (best at step {metrics['step']}): {shown} -> {path}")


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
    _add_config_args(train)
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
