"""`python -m ensemble evaluate --registry DIR --task T`: score a registered N-prompt ensemble on dev.

Prints, per task, the average single prompt, the best single prompt and the ensemble (paper §6,
Table 3), all from ONE batched pass of the examples replicated across the N prompts; then how often
the prompts agree and the vote's gain over them with a 95% paired-bootstrap interval
(ensemble/diagnostics.py), so that a gain or loss smaller than the dev set's noise reads as such.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from tqdm.auto import tqdm

from tuning.backbone import DEFAULT_MODEL

from .diagnostics import describe
from .vote import VOTINGS


def evaluate(registry: str, tasks: list[str] | None, model: str, examples: int | None, batch_size: int,
             voting: str, data_dir: str | None, split: str = "validation", bootstrap: int = 1000) -> str:
    """The Table 3 markdown table, then a blank line and the diagnostics (none with `bootstrap=0`)."""
    from tuning.backbone import load_backbone

    from .bank import PromptBank
    from .engine import EnsembleEngine

    if bootstrap < 0:
        raise ValueError("--bootstrap must be 0 (no diagnostics) or a number of resamples")
    bank = PromptBank(load_backbone(model), registry)
    if not bank.tasks:
        raise ValueError(f"no prompts in {registry} for this backbone (refused: {len(bank.refused)}); "
                         f"train some first: python -m tuning.sweep --registry {registry}")
    engine = EnsembleEngine(bank, max_rows=32)
    lines = ["| task | N | metric | average single prompt | best single prompt (by the first metric) | ensemble |", "|---|---:|---|---:|---:|---:|"]
    notes = []
    for name in tasks or sorted(bank.tasks):
        if name not in bank.tasks:
            raise ValueError(f"no prompts for task {name!r} in {registry}; registered: {', '.join(sorted(bank.tasks))}")
        tp = bank.tasks[name]
        dev = tp.task.load(split, data_dir, limit=examples)
        preds = []
        for i in tqdm(range(0, len(dev), batch_size), desc=f"ensemble {name}", file=sys.stderr):
            preds += engine.predict([(name, e.input_text) for e in dev[i:i + batch_size]], voting=voting)
        singles = [tp.task.score([p.answers[k] for p in preds], dev) for k in range(tp.n)]
        ens = tp.task.score([p.prediction for p in preds], dev)
        primary = tp.task.primary_metric
        best = max(singles, key=lambda s: s[primary])  # Table 3's "best": the best prompt by the primary metric
        for key in [primary] + [k for k in ens if k != primary]:  # the primary metric first, then the rest
            single = [s[key] for s in singles]
            spread = statistics.stdev(single) if len(single) > 1 else 0.0
            lines.append(f"| {name} | {tp.n} | {key} | {statistics.mean(single):.4f} ± {spread:.4f} | "
                         f"{best[key]:.4f} | **{ens[key]:.4f}** |")
        if bootstrap and tp.n > 1:
            notes += describe(tp.task, dev, preds, singles.index(best), bootstrap)
    return "\n".join(lines + ([""] + notes if notes else []))


def build_parser() -> argparse.ArgumentParser:
    from tuning.cli import HelpFormatter

    parser = argparse.ArgumentParser(prog="python -m ensemble", description=__doc__, formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="dev metrics of each registered task's ensemble", formatter_class=HelpFormatter)
    ev.add_argument("--registry", default="registry", help="<registry>/<task>/*.safetensors, as the sweep writes them")
    ev.add_argument("--task", action="append", help="task to evaluate, repeatable; none given: every registered task")
    ev.add_argument("--model", default=DEFAULT_MODEL, help="backbone the prompts were trained on: default name, "
                                                             "hub id or local directory")
    ev.add_argument("--examples", type=int, default=None, help="first n dev examples (None: all)")
    ev.add_argument("--batch-size", type=int, default=8, help="dev examples per batched pass (each runs on all N prompts)")
    ev.add_argument("--voting", default="majority", choices=VOTINGS,
                    help="how the N prompts' answers combine (§6: majority)")
    ev.add_argument("--split", default="validation", help="split to score; it must be labelled (GLUE's and SuperGLUE's "
                                                          "test splits are not: scoring them is refused)")
    ev.add_argument("--bootstrap", type=int, default=1000,
                    help="resamples of the dev set for the vote's 95%% intervals over its prompts (0: no diagnostics)")
    ev.add_argument("--data-dir", default=None, help="benchmark files; None: $PROMPT_TUNING_DATA, else ../shared/data")
    return parser


def main(argv: list[str] | None = None) -> int:
    from tuning.cli import run_command

    args = build_parser().parse_args(argv)
    return run_command(lambda: print(evaluate(args.registry, args.task, args.model, args.examples, args.batch_size,
                                              args.voting, args.data_dir, args.split, args.bootstrap)))


if __name__ == "__main__":
    sys.exit(main())
