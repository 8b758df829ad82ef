"""``adjoint-sym campaign``: thousands of drawn problems judged, one JSON line per verdict.

The command is :func:`adjoint_sym.campaign.run_campaign` on the command line: it prints
the summary on stdout (``--json``: one JSON object), a progress line on stderr when
stderr is a terminal, and exits 0 when no problem failed or crashed, 1 otherwise, so a
nightly job notices.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from .common import EXIT_MISMATCH, EXIT_OK, Progress, formatter
from .spec import positive_tolerance

EXAMPLES = """\
examples:
  adjoint-sym campaign --problems 1000 --seed 0 --out results.jsonl
  adjoint-sym campaign --problems 1000 --seed 0 --out results.jsonl --resume
  adjoint-sym campaign --problems 200 --families stiff neural --methods adjoint forward --out s.jsonl
  adjoint-sym campaign --problems 500 --function mypackage.grads:my_adjoint --out nightly.jsonl
  adjoint-sym campaign --problems 10000 --scheduler tcp://10.0.0.5:8786 --out big.jsonl

Problem i of seed S is the same on every machine; the families take turns.  Each record
holds the problem's spec (for expression systems a spec file of `adjoint-sym check`),
its family and index, the verdict, the failures with their causes and the timings.
exit codes: 0 no failure or crash, 1 a problem failed or crashed, 2 invalid usage, 130 interrupted
"""


#: The families of :data:`adjoint_sym.campaign.FAMILIES`, named here so that ``--help`` need not load
#: the numeric stack (a test checks that the two lists agree).
FAMILY_NAMES = ("equilibrium", "long_span", "growing", "stiff", "neural", "observation", "backward", "integral")


class CampaignProgress:
    """One progress line on stderr, rewritten per record (only when stderr is a terminal)."""

    def __init__(self, progress: Progress) -> None:
        self.enabled, self.stream = progress.enabled, progress.stream
        self.counts: dict[str, int] = {}
        self.todo = self.done = 0
        self.clock = time.perf_counter()

    def start(self, engine: str, todo: int, done: int) -> None:
        self.todo, self.clock = todo, time.perf_counter()
        if self.enabled:
            already = f" ({done} already done)" if done else ""
            print(f"campaign: {todo} problems to judge{already}; {engine}", file=self.stream, flush=True)

    def record(self, record: dict) -> None:
        self.done += 1
        self.counts[record["verdict"]] = self.counts.get(record["verdict"], 0) + 1
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.clock
        rate = 60 * self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.todo - self.done) * elapsed / self.done
        counts = "  ".join(f"{v} {self.counts.get(v, 0)}" for v in ("ok", "fail", "inconclusive", "crash"))
        line = f"\r  {self.done}/{self.todo}  {counts}  {rate:.1f}/min  eta {eta // 60:.0f}m{eta % 60:02.0f}s"
        print(line, end="", file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.done:
            print(file=self.stream, flush=True)


def cmd_campaign(args: argparse.Namespace, progress: Progress) -> int:
    from ..campaign import dask_available, run_campaign  # the numeric stack loads only when asked for

    function_rtol = positive_tolerance(args.function_rtol, "--function-rtol")
    workers = args.workers
    if workers != 0 and args.scheduler is None and not dask_available():
        print("adjoint-sym campaign: note: dask.distributed is not installed; running in one process "
              "(pip install 'adjoint_sym[campaign]' for worker processes)", file=sys.stderr)  # fmt: skip
        workers = 0
    bar = CampaignProgress(progress)
    try:
        summary = run_campaign(
            args.problems,
            args.out,
            seed=args.seed,
            families=args.families,
            methods=args.methods,
            function=args.function,
            function_rtol=function_rtol,
            workers=workers,
            scheduler=args.scheduler,
            resume=args.resume,
            timeout=args.timeout if args.timeout > 0 else None,
            on_start=bar.start,
            on_record=bar.record,
        )
    except KeyboardInterrupt:
        bar.close()
        print(f"adjoint-sym campaign: interrupted; the finished verdicts are in {args.out}: continue with --resume",
              file=sys.stderr)  # fmt: skip
        return 130
    bar.close()
    print(json.dumps(summary.as_dict()) if args.json else summary.text())
    return EXIT_OK if summary.ok else EXIT_MISMATCH


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a finite number of seconds >= 0, got {text}")
    return value


def register(sub, common: argparse.ArgumentParser, solver: argparse.ArgumentParser) -> None:
    """Add the ``campaign`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "campaign",
        parents=[common],
        formatter_class=formatter,
        help="judge thousands of drawn problems (locally or on a Dask cluster), one JSON line each",
        description="Draw problems 0..N-1 from a seed over families covering the hard regimes (equilibria,\n"
        "long spans, growing modes, stiff, neural, observation and integral losses, backward spans), judge\n"
        "each with the checker (or judge your gradient function with --function) and append one JSON\n"
        "record per verdict to --out as it completes.  --resume continues an interrupted run.",
        epilog=EXAMPLES,
    )
    p.add_argument("--problems", required=True, type=_count, metavar="N", help="how many problems (indices 0..N-1)")
    p.add_argument(
        "--seed", type=_count, default=0, metavar="S", help="the seed the problems are drawn from (default 0)"
    )
    p.add_argument("--out", required=True, metavar="RESULTS.jsonl", help="results file, one JSON record per line")
    p.add_argument(
        "--families",
        nargs="+",
        metavar="F",
        help="problem families among " + ", ".join(FAMILY_NAMES) + " (default: all, taking turns)",
    )
    p.add_argument(
        "--methods",
        nargs="+",
        metavar="M",
        help="methods to check (with --function: the references; default complex-step)",
    )
    p.add_argument(
        "--function", metavar="MODULE:CALLABLE", help="campaign your gradient function instead of the library"
    )
    p.add_argument(
        "--function-rtol", type=float, default=1e-6, metavar="TAU", help="the accuracy --function is judged at (1e-6)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--workers", type=_count, metavar="W", help="local worker processes (default: one per CPU; 0: here)"
    )
    where.add_argument("--scheduler", metavar="ADDRESS", help="an existing Dask scheduler, e.g. tcp://10.0.0.5:8786")
    p.add_argument("--resume", action="store_true", help="continue RESULTS.jsonl: skip the problems it holds")
    p.add_argument(
        "--timeout", type=_seconds, default=300.0, metavar="SEC", help="seconds per problem (default 300; 0: none)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object on stdout")
    p.set_defaults(func=cmd_campaign)


__all__ = ["CampaignProgress", "cmd_campaign", "register"]
