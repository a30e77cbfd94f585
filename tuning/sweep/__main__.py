"""`python -m tuning.sweep [flags]`: train N prompts per task with Ray Tune and register the best N.
`python -m tuning.sweep report <experiment dir>`: (re)write the sweep's static HTML report.

Without --address or $RAY_ADDRESS a local Ray starts (dashboard on 127.0.0.1); under
`ray job submit` the job's RAY_ADDRESS points at the cluster.
"""

from __future__ import annotations

import argparse
import sys

from tuning.cli import add_config_args, config_from_args

from .config import SweepConfig

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tuning.sweep", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(parser, SweepConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    from tuning.artifact import PromptFileError
    from tuning.backbone import BackboneError
    from tuning.tasks import DatasetUnavailable

    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv and argv[0] == "report":
            report = argparse.ArgumentParser(prog="python -m tuning.sweep report",
                                             description="write <experiment dir>/report.html from Tune's result files")
            report.add_argument("experiment_dir")
            args = report.parse_args(argv[1:])
            from .report import write_report
            print(f"report: {write_report(args.experiment_dir)}")
            return 0
        args = build_parser().parse_args(argv)
        config = config_from_args(args, SweepConfig).validate()
        from .job import run_sweep
        outcome = run_sweep(config)
    except (ValueError, PromptFileError, BackboneError, DatasetUnavailable, KeyError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"error: {message}", file=sys.stderr)
        return 2
    missing = [t for t in config.task_list if t not in outcome.registered] if config.register else []
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
