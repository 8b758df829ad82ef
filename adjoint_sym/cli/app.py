"""The ``adjoint-sym`` command line: derive, differentiate and verify a problem stated in a spec file.

Commands (see ``adjoint-sym COMMAND --help``)::

    adjoint-sym derive SPEC [--latex | --markdown]     augmented system and adjoint ODEs
    adjoint-sym gradient SPEC [--method M] [--json]    loss and gradient
    adjoint-sym check SPEC [--json] [--methods ...]    every method side by side, verdict
    adjoint-sym hvp SPEC --direction V [--check]       Hessian-vector product (second-order adjoint)
    adjoint-sym report SPEC -o DIR                     Markdown report with equations, table, plots
    adjoint-sym derivations --out DIR [--quick]        run every script in derivations/
    adjoint-sym verify-derivation SPEC [--json]        decide a claimed adjoint derivation

Exit codes: 0 ok, 1 verification failed, 2 invalid spec or usage (message on stderr),
3 numerical failure (where and why on stderr), 4 undecided (verify-derivation).
A user mistake never prints a traceback.
Spec files are described in :mod:`adjoint_sym.cli.spec`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from .._version import __version__
from ..errors import AdjointSymError, GradientMismatchError, SolverFailedError
from . import compute, derivations, derive, hvp, report, verify_derivation
from .common import (
    EXIT_CODES,
    EXIT_INVALID,
    EXIT_MISMATCH,
    EXIT_NUMERICAL,
    EXIT_OK,
    SEMANTICS,
    Progress,
    formatter,
    parent_parsers,
)
from .derive import derive_text

#: The commands, in the order ``--help`` lists them; each module adds its own parser.
COMMANDS = (derive, compute, hvp, report, derivations, verify_derivation)


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
        return args.func(args, progress)
    except SolverFailedError as exc:
        print(f"adjoint-sym: numerical failure: {exc}", file=sys.stderr)
        return EXIT_NUMERICAL
    except GradientMismatchError as exc:
        print(f"adjoint-sym: verification failed: {exc}", file=sys.stderr)
        return EXIT_MISMATCH
    except AdjointSymError as exc:
        print(f"adjoint-sym: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # the reader left (``| head``): not an error; keep exit quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:
        print(f"adjoint-sym: error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("adjoint-sym: interrupted", file=sys.stderr)
        return 130


__all__ = ["Progress", "build_parser", "derive_text", "main"]
