"""`python -m tuning.sweep [flags]`: train N prompts per task with Ray Tune and register the best N.
`python -m tuning.sweep report <experiment dir>`: (re)write the sweep's static HTML report.

Without --address or $RAY_ADDRESS a local Ray starts (dashboard on 127.0.0.1); under
`ray job submit` the job's RAY_ADDRESS points at the cluster.
"""

from __future__ import annotations

import argparse
import sys

from tuning.cli import HelpFormatter, add_config_args, config_from_args, run_command

from .config import SweepConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tuning.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, SweepConfig)
    return parser


def build_report_parser() -> argparse.ArgumentParser:
    report = argparse.ArgumentParser(prog="python -m tuning.sweep report", formatter_class=HelpFormatter,
                                     description="write <experiment dir>/report.html from Tune's result files")
    report.add_argument("experiment_dir", help="<storage>/<name> of a sweep")
    return report


def _report(args) -> int:
    from .report import write_report
    print(f"report: {write_report(args.experiment_dir)}")
    return 0


def _sweep(args) -> int:
    config = config_from_args(args, SweepConfig).validate()
    from .job import run_sweep
    outcome = run_sweep(config)
    missing = [t for t in config.task_list if t not in outcome.registered] if config.register else []
    return 1 if missing else 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "report":
        args = build_report_parser().parse_args(argv[1:])
        return run_command(lambda: _report(args))
    args = build_parser().parse_args(argv)
    return run_command(lambda: _sweep(args))


if __name__ == "__main__":
    sys.exit(main())
