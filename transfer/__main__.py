"""`python -m transfer squad-mrqa|paraphrase|ensemble|interpret [--flags]`: the paper's transfer,
ensembling and interpretability experiments (§5-§7). Add `--ray` (or `--address`) to run the
trainings as Ray tasks; inside `ray job submit` the cluster address comes from RAY_ADDRESS.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import types
import typing

from .config import JOBS


def _flag_type(hint):
    """(element type, is tuple) of a field annotation such as `int | None` or `tuple[str, ...]`."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _flag_type(args[0])
    if typing.get_origin(hint) is tuple:
        return args[0], True
    return hint, False


def add_config_args(parser: argparse.ArgumentParser, config_cls) -> None:
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        flag = "--" + f.name.replace("_", "-")
        kind, many = _flag_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=default)
        elif many:
            parser.add_argument(flag, type=kind, nargs="+", default=default, metavar=f.name.upper())
        else:
            parser.add_argument(flag, type=kind, default=default, metavar=f.name.upper())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m transfer", description=__doc__)
    sub = parser.add_subparsers(dest="job", required=True)
    for name, cls in JOBS.items():
        p = sub.add_parser(name, help=(cls.__doc__ or "").splitlines()[0])
        add_config_args(p, cls)
        p.set_defaults(config_cls=cls)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tuning.artifact import PromptFileError
    from tuning.backbone import BackboneError
    from tuning.tasks import DatasetUnavailable

    args = build_parser().parse_args(argv)
    cls = args.config_cls
    config = cls(**{f.name: (tuple(v) if isinstance(v, list) else v)
                    for f in dataclasses.fields(cls) for v in [getattr(args, f.name)]})
    try:
        config.validate()
        run = _job(args.job)
        run(config)
    except (ValueError, PromptFileError, BackboneError, DatasetUnavailable, KeyError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


def _job(name: str):
    if name == "squad-mrqa":
        from .squad_mrqa import run
    elif name == "paraphrase":
        from .paraphrase import run
    elif name == "ensemble":
        from .ensembling import run
    else:
        from .interpret import run
    return run


if __name__ == "__main__":
    sys.exit(main())
