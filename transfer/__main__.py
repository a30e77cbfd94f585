"""`python -m transfer squad-mrqa|paraphrase|ensemble|interpret|study [--flags]`: the paper's transfer,
ensembling and interpretability experiments (§5-§7), and the learning study. Add `--ray` (or `--address`) to run the
trainings as Ray tasks; inside `ray job submit` the cluster address comes from RAY_ADDRESS.
"""

from __future__ import annotations

import argparse
import sys

from tuning.cli import add_config_args, config_from_args, run_command

from .config import JOBS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m transfer", description=__doc__)
    sub = parser.add_subparsers(dest="job", required=True)
    for name, cls in JOBS.items():
        p = sub.add_parser(name, help=(cls.__doc__ or "").splitlines()[0])
        add_config_args(p, cls)
        p.set_defaults(config_cls=cls)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args, args.config_cls)

    def job() -> None:  # the job's result dict is for callers in Python, not an exit status
        config.validate()
        _job(args.job)(config)

    return run_command(job)


def _job(name: str):
    if name == "squad-mrqa":
        from .squad_mrqa import run
    elif name == "paraphrase":
        from .paraphrase import run
    elif name == "ensemble":
        from .ensembling import run
    elif name == "study":
        from .study import run
    else:
        from .interpret import run
    return run


if __name__ == "__main__":
    sys.exit(main())
