"""``adjoint-sym gradient`` and ``adjoint-sym check``: one route, or every route and a verdict."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from ..errors import SolverFailedError
from ..symbolic.names import escape
from .common import (
    EXIT_CODES,
    EXIT_INCONCLUSIVE,
    EXIT_MISMATCH,
    EXIT_OK,
    METHODS_HELP,
    SEMANTICS,
    Progress,
    formatter,
    json_default,
    load,
)
from .spec import SolverSettings, Spec


def compute_gradient(spec: Spec, settings: SolverSettings, method: str, progress: Progress):
    from ..verify import gradient  # the numeric stack loads only for commands that compute

    progress.step(f"computing the gradient by {method!r} ({settings.method}, rtol={settings.rtol:g})")
    g = gradient(spec.problem, method, solver=settings.method, rtol=settings.rtol, atol=settings.atol)
    bad = [name for name, value in g.quantities(spec.system.state_names).items() if not math.isfinite(value)]
    if not math.isfinite(float(g.loss)):
        bad.insert(0, "L")
    if bad:
        raise SolverFailedError(
            f"gradient by {method!r}: non-finite result for {', '.join(bad)}; the solution may blow up: "
            "shorten the time span, check the parameters or tighten the tolerances"
        )
    return g


def cmd_gradient(args: argparse.Namespace, progress: Progress) -> int:
    spec, settings = load(args, progress)
    g = compute_gradient(spec, settings, args.method, progress)
    if args.json:
        print(json.dumps(g.as_dict(), allow_nan=False))
        return EXIT_OK
    label = escape(spec.name)  # user text on a terminal: control characters escaped
    print(f"{label}: method {g.method}, solver {settings.method}, rtol {settings.rtol:g}, atol {settings.atol:g}")
    print(f"L = {float(g.loss):.15g}")
    quantities = g.quantities(spec.system.state_names)
    width = max(len(k) for k in quantities)
    for name, value in quantities.items():
        print(f"  {name:<{width}}  {value: .15g}")
    return EXIT_OK


def run_check(spec: Spec, settings: SolverSettings, methods: Sequence[str] | None, progress: Progress):
    from ..verify import check
    from ..verify.routes import observing

    progress.step(f"comparing gradient methods ({settings.method}, rtol={settings.rtol:g})")
    options = {"solver": settings.method, "rtol": settings.rtol, "atol": settings.atol}
    if methods:
        options["methods"] = list(methods)
    with observing(_progress_lines(progress)):  # one line as each method starts and ends
        return check(spec.problem, **options)


def _progress_lines(progress: Progress):
    def tell(event: str, method: str, seconds: float | None) -> None:
        progress.step(f"  {method} ..." if event == "start" else f"  {method} done in {seconds:.2f} s")

    return tell


def cmd_check(args: argparse.Namespace, progress: Progress) -> int:
    spec, settings = load(args, progress)
    report = run_check(spec, settings, args.methods, progress)
    if args.json:
        print(json.dumps(report.as_dict(), default=json_default))
    else:
        print(report.markdown(), end="")
    return verdict_exit_code(report)


def verdict_exit_code(report) -> int:
    """0 for "ok", 1 for "fail", 4 for "inconclusive", saying why on stderr."""
    verdict = report.verdict
    if verdict == "fail":
        print("adjoint-sym: verification failed: the methods disagree beyond their tolerances", file=sys.stderr)
        return EXIT_MISMATCH
    if verdict == "inconclusive":
        print(
            "adjoint-sym: verification inconclusive: the references disagree among themselves (see the table's "
            "'inconclusive' list for the remedy); no method failed",
            file=sys.stderr,
        )
        return EXIT_INCONCLUSIVE
    return EXIT_OK


def register(sub, common: argparse.ArgumentParser, solver: argparse.ArgumentParser) -> None:
    """Add the ``gradient`` and ``check`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "gradient",
        parents=[common, solver],
        formatter_class=formatter,
        help="compute the loss and its gradient",
        description="Compute L and dL/dh0, dL/dtheta, dL/dt0, dL/dt1 (dL/dt_i for observation losses).\n"
        "With --json, stdout is exactly one JSON object with the keys\n"
        "  loss, dL_dh0, dL_dparams, dL_dt0, dL_dt1, dL_dtimes, method, stats,\n"
        "  requested, solver, rtol, atol, options (what was asked and how it ran).",
        epilog="examples:\n"
        "  adjoint-sym gradient examples/lotka_volterra.toml\n"
        "  adjoint-sym gradient examples/exponential_decay.json --json\n"
        "  adjoint-sym gradient examples/sir.toml --method forward --solver LSODA --rtol 1e-9\n\n"
        + SEMANTICS
        + "\n"
        + EXIT_CODES,
    )
    p.add_argument("spec", help="problem spec file (.toml or .json)")
    p.add_argument("--method", default="adjoint", help=METHODS_HELP)
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_gradient)

    p = sub.add_parser(
        "check",
        parents=[common, solver],
        formatter_class=formatter,
        help="compare every gradient method; exit 1 on disagreement, 4 when inconclusive",
        description="Compute the gradient by several methods (adjoints and independent references), show them\n"
        "side by side with their deviations, and give the verdict.",
        epilog="examples:\n"
        "  adjoint-sym check examples/lotka_volterra.toml\n"
        "  adjoint-sym check examples/exponential_decay.json --json\n"
        "  adjoint-sym check examples/sir.toml --methods adjoint backsolve forward\n\n" + EXIT_CODES,
    )
    p.add_argument("spec", help="problem spec file (.toml or .json)")
    p.add_argument("--methods", nargs="+", metavar="M", help="methods to compare (default: the checker's choice)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object on stdout")
    p.set_defaults(func=cmd_check)
