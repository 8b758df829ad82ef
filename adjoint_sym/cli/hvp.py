"""``adjoint-sym hvp``: a Hessian-vector product of the loss in ``(h0, theta)``, or its check.

Also prints the second-order equations for ``adjoint-sym derive --order 2``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence

from ..errors import InvalidModelError, SolverFailedError
from .common import EXIT_CODES, EXIT_MISMATCH, EXIT_OK, Progress, formatter, json_default, load

DIRECTION_HELP = (
    "the direction v over (h0, theta): numbers in the order [h0, theta] (theta flattened in the order the "
    'params are declared, matrices row-major), e.g. "--direction 1 0 0.5" or "1,0,0.5"; a JSON object '
    '\'{"dh0": [1, 0], "dparams": {"k": 0.5}}\' (missing entries are zero) or a JSON array; '
    'or "random" (seeded, each entry scaled by its input\'s size)'
)

METHODS = ("adjoint", "complex-step", "finite-difference", "forward-hessian")


def parse_direction(tokens: Sequence[str]) -> list[float] | dict | str:
    """The ``--direction`` tokens as a flat list, a mapping, or ``"random"`` (checked later
    against the problem by :func:`~adjoint_sym.numeric.second_order.direction_vector`).

    Examples
    --------
    >>> parse_direction(["1,0", "0.5"])
    [1.0, 0.0, 0.5]
    >>> parse_direction(['{"dparams": {"k": 1}}'])
    {'dparams': {'k': 1}}
    """
    text = " ".join(tokens).strip()
    if text == "random":
        return text
    if text.startswith(("{", "[")):  # a JSON object (by name) or array (flat)
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidModelError(f"--direction: not valid JSON ({exc.msg} at character {exc.pos})") from None
    numbers = []
    for piece in text.replace(",", " ").split():
        try:
            numbers.append(float(piece))
        except ValueError:
            raise InvalidModelError(
                f"--direction: {piece!r} is not a number; give numbers, a JSON object or 'random'"
            ) from None
    if not numbers:
        raise InvalidModelError("--direction is empty; give one number per entry of [h0, theta]")
    return numbers


def cmd_hvp(args: argparse.Namespace, progress: Progress) -> int:
    from ..verify.hessian import check_hvp, hvp, random_direction  # the numeric stack loads only here

    spec, settings = load(args, progress)
    problem = spec.problem
    direction = parse_direction(args.direction)
    v = random_direction(problem) if direction == "random" else direction
    options = {"solver": settings.method, "rtol": settings.rtol, "atol": settings.atol}
    if args.check:
        progress.step(f"comparing Hessian-vector products ({settings.method}, rtol={settings.rtol:g})")
        report = check_hvp(problem, v, **options)
        print(json.dumps(report.as_dict(), default=json_default) if args.json else report.markdown(), end="\n")
        if not report.ok:
            print("adjoint-sym: verification failed: the HVP routes disagree beyond their tolerances", file=sys.stderr)
            return EXIT_MISMATCH
        return EXIT_OK
    progress.step(f"computing H v by {args.method!r} ({settings.method}, rtol={settings.rtol:g})")
    result = hvp(problem, v, args.method, **options)
    quantities = result.quantities(spec.system.state_names)
    bad = [q for q, x in quantities.items() if not math.isfinite(x)]
    if bad:
        raise SolverFailedError(
            f"H v by {args.method!r}: non-finite result for {', '.join(bad)}; the solution may blow up"
        )
    if args.json:
        print(json.dumps(result.as_dict(), allow_nan=False))
        return EXIT_OK
    print(
        f"{spec.name}: H v by {result.method}, solver {settings.method}, rtol {settings.rtol:g}, atol {settings.atol:g}"
    )
    print(f"v = [{', '.join(f'{x:g}' for x in result.direction)}]   (t0, t1 held fixed)")
    print(f"L = {result.loss:.15g}")
    width = max(len(q) for q in quantities)
    for name, value in quantities.items():
        print(f"  {name:<{width}}  {value: .15g}")
    return EXIT_OK


def print_second_order(system, args: argparse.Namespace, running_cost=None) -> int:
    """``adjoint-sym derive --order 2``: the tangent system and the second-order adjoint (a running cost's too)."""
    from ..symbolic.second_order import SecondOrderAdjoint

    if args.form != "vjp":
        raise InvalidModelError("--order 2 derives the tangent adjoint from the vjp form; drop --form jacobian")
    so = SecondOrderAdjoint.of(system, running_cost=running_cost)
    text = so.latex() if args.latex else so.markdown() if args.markdown else so.text()
    print(text, end="" if text.endswith("\n") else "\n")
    return EXIT_OK


def register(sub, common: argparse.ArgumentParser, solver: argparse.ArgumentParser) -> None:
    """Add the ``hvp`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "hvp",
        parents=[common, solver],
        formatter_class=formatter,
        help="a Hessian-vector product by the second-order adjoint (or check it)",
        description="Compute H v, the Hessian of L with respect to (h0, theta) times a direction v, by the\n"
        "second-order adjoint (forward tangent, backward tangent adjoint) or a reference. t0 and t1 are held\n"
        "fixed. With --check, compare the adjoint against independent references and run the order-3 Taylor\n"
        "test. With --json, stdout is one JSON object with the keys\n"
        "  loss, Hv_h0, Hv_params, direction, gradient, method, stats   (with --check: the report).",
        epilog="examples:\n"
        "  adjoint-sym hvp examples/exponential_decay.json --direction 0 1\n"
        "  adjoint-sym hvp examples/lotka_volterra.toml --direction random --check\n"
        '  adjoint-sym hvp examples/sir.toml --direction \'{"dparams": {"beta": 1}}\' --json\n\n' + EXIT_CODES,
    )
    p.add_argument("spec", help="problem spec file (.toml or .json)")
    p.add_argument("--direction", nargs="+", required=True, metavar="V", help=DIRECTION_HELP)
    p.add_argument("--method", choices=METHODS, default="adjoint", help="how H v is computed (default: adjoint)")
    p.add_argument("--check", action="store_true", help="compare routes and run the Taylor test; exit 1 on failure")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=cmd_hvp)
