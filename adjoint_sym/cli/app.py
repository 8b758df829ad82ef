"""The ``adjoint-sym`` command line: derive, differentiate and verify a problem stated in a spec file.

Commands (see ``adjoint-sym COMMAND --help``)::

    adjoint-sym derive SPEC [--latex | --markdown]     augmented system and adjoint ODEs
    adjoint-sym gradient SPEC [--method M] [--json]    loss and gradient
    adjoint-sym check SPEC [--json] [--methods ...]    every method side by side, verdict
    adjoint-sym hvp SPEC --direction V [--check]       Hessian-vector product (second-order adjoint)
    adjoint-sym report SPEC -o DIR                     Markdown report with equations, table, plots
    adjoint-sym derivations --out DIR [--quick]        run every script in derivations/
    adjoint-sym verify-derivation SPEC [--json]        decide a claimed adjoint derivation
    adjoint-sym campaign --problems N --out R.jsonl    judge N drawn problems, one JSON line each

Exit codes: 0 ok, 1 verification failed, 2 invalid spec or usage, or a size limit exceeded
(message on stderr), 3 numerical failure, or the step budget or time limit used up (where
and why on stderr), 4 inconclusive or undecided (check, report, verify-derivation).  A user
mistake never prints a traceback; every message is printed with control and bidi
characters escaped and cut at :data:`~adjoint_sym.cli.common.MAX_MESSAGE` characters.
Every run is bounded by the budgets of :func:`adjoint_sym.limits`, which ``--max-steps``,
``--time-limit`` and ``--limit NAME=VALUE`` (or a spec's ``[limits]``) set.
Spec files are described in :mod:`adjoint_sym.cli.spec`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence

from .._limits import current_limits, how_to_raise, limits
from .._version import __version__
from ..errors import AdjointSymError, GradientMismatchError, SolverFailedError
from ..numeric.solve import reporting
from ..symbolic.names import escape
from . import campaign, compute, derivations, derive, hvp, report, verify_derivation
from .common import (
    EXIT_CODES,
    EXIT_INVALID,
    EXIT_MISMATCH,
    EXIT_NUMERICAL,
    EXIT_OK,
    MAX_MESSAGE,
    SEMANTICS,
    Progress,
    formatter,
    limit_overrides,
    parent_parsers,
)
from .derive import derive_text

#: The commands, in the order ``--help`` lists them; each module adds its own parser.
COMMANDS = (derive, compute, hvp, report, derivations, verify_derivation, campaign)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``adjoint-sym``."""
    common, solver = parent_parsers()

    parser = argparse.ArgumentParser(
        prog="adjoint-sym",
        formatter_class=formatter,
        description="State the adjoint sensitivity method of an ODE problem symbolically, run it, verify it.\n"
        "A problem is a spec file (TOML or JSON): state, rhs, params, h0, t0, t1, loss, [solver].",
        epilog="examples:\n"
        "  adjoint-sym derive examples/lotka_volterra.toml --latex\n"
        "  adjoint-sym gradient examples/exponential_decay.json --json\n"
        "  adjoint-sym check examples/sir.toml\n"
        "  adjoint-sym report examples/lotka_volterra.toml -o out/\n"
        "  adjoint-sym derivations --out results/ --quick\n\n" + SEMANTICS + "\n" + EXIT_CODES,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub, common, solver)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``adjoint-sym`` with ``argv`` (default ``sys.argv[1:]``); return the exit code.

    Examples
    --------
    >>> main(["derive", "no/such/spec.toml", "--quiet"])
    2
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors: argparse has printed
        return exc.code if isinstance(exc.code, int) else EXIT_INVALID
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_INVALID
    progress = Progress(enabled=not args.quiet)
    try:
        with contextlib.ExitStack() as stack:
            args.limit_stack = stack
            stack.enter_context(limits(**limit_overrides(args)))  # a time limit counts from here
            stack.enter_context(reporting(progress.update if progress.enabled else None))
            stack.enter_context(_alarm(progress))
            return args.func(args, progress)
    except SolverFailedError as exc:
        return _fail(progress, "numerical failure", exc, EXIT_NUMERICAL)
    except GradientMismatchError as exc:
        return _fail(progress, "verification failed", exc, EXIT_MISMATCH)
    except AdjointSymError as exc:
        return _fail(progress, "error", exc, EXIT_INVALID)
    except _TimeUp as up:
        message = f"the time limit ({up.seconds:g} s) was reached while {progress.stage}; {how_to_raise('time_limit')}"
        return _fail(progress, "numerical failure", message, EXIT_NUMERICAL)
    except BrokenPipeError:  # the reader left (``| head``): not an error; keep exit quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        return _fail(progress, "error", exc, EXIT_INVALID)
    except KeyboardInterrupt:
        return _fail(progress, "interrupted", "", 130)
    finally:
        progress.close()


def _fail(progress: Progress, kind: str, exc: object, code: int) -> int:
    """Print the message escaped (no terminal control from user text) and bounded."""
    progress.close()
    text = escape(str(exc))
    if len(text) > MAX_MESSAGE:
        text = text[:MAX_MESSAGE] + f"... ({len(text) - MAX_MESSAGE} more characters)"
    print(f"adjoint-sym: {kind}: {text}" if text else f"adjoint-sym: {kind}", file=sys.stderr)
    return code


class _TimeUp(BaseException):
    """The time limit ran out outside a solve (parsing, deriving, compiling)."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds


#: Seconds past the time limit before the alarm interrupts: a solve checks the limit itself
#: and says where it stopped, which is the better message.
_ALARM_GRACE = 1.0


@contextlib.contextmanager
def _alarm(progress: Progress) -> Iterator[None]:
    """Interrupt symbolic work that outlives the time limit (solves check it themselves)."""
    active = current_limits()
    left = active.seconds_left()
    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if left is None or not usable:
        yield
        return

    def ring(signum, frame):
        raise _TimeUp(active.time_limit)

    previous = signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, max(left, 0.0) + _ALARM_GRACE)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


__all__ = ["Progress", "build_parser", "derive_text", "main"]
