"""``adjoint-sym verify-derivation SPEC``: decide the claimed adjoint pieces of a spec's ``[claim]`` table."""

from __future__ import annotations

import argparse
import json

from ..errors import InvalidModelError
from ..verify.derivation import verify_derivation
from .common import Progress, formatter, json_default, load

#: Exit codes of this command (a verdict, not a measurement): 0, 1, 4, and 2 for bad input.
EXIT_HELP = "exit codes: 0 every piece holds, 1 some piece fails, 4 some piece undecided (none fails), 2 invalid spec"

_EXAMPLE = """\
example spec (a problem spec plus a [claim] table):
  state = ["x", "y"]
  rhs = ["a*x - b*x*y", "d*x*y - c*y"]
  h0 = [1.0, 1.0]
  t1 = 2.0
  [params]
  a = 1.5
  b = 1.0
  c = 3.0
  d = 1.0
  [loss]
  kind = "final"
  expr = "x**2 + y**2"
  [claim]
  adjoint  = ["-a_x*(a - b*y) - a_y*d*y", "a_x*b*x - a_y*(d*x - c)"]   # da_<state>/dt
  terminal = ["2*x", "2*y"]                                            # a_<state>(t1)
  # also: jumps, param_integrand (+ param_limits), terminal_param, adjoint_time,
  # terminal_time, dL_dt0, dL_dt1; <piece>_latex = [...] for LaTeX; adjoint_symbols = [...]
"""


def cmd_verify_derivation(args: argparse.Namespace, progress: Progress) -> int:
    spec, _ = load(args, progress)
    if spec.claim is None:
        raise InvalidModelError(f"{spec.source}: no [claim] table; state the derivation's pieces under [claim]")
    progress.step(f"deciding the claimed pieces of {spec.name}")
    try:
        verdict = verify_derivation(spec.problem, spec.claim, name=spec.name, points=args.points, budget=args.budget)
    except InvalidModelError as exc:
        message = str(exc)
        raise InvalidModelError(message if message.startswith(spec.source) else f"{spec.source}: {message}") from None
    if args.json:
        print(json.dumps(verdict.as_dict(), default=json_default))
    elif args.markdown:
        print(verdict.markdown(), end="")
    elif args.latex:
        print(verdict.latex(), end="")
    else:
        print(verdict.text(), end="")
    return verdict.exit_code


def register(sub, common: argparse.ArgumentParser, solver: argparse.ArgumentParser) -> None:
    """Add the ``verify-derivation`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "verify-derivation",
        parents=[common],
        formatter_class=formatter,
        help="decide a claimed adjoint derivation ([claim] table): proof or counterexample per piece",
        description="Decide each piece of the derivation stated in the spec's [claim] table: holds (symbolic\n"
        "residual 0), fails (a point where it is nonzero, and a problem on which the integrated claim's\n"
        "gradient is rejected by the forward and complex-step references), or undecided (said so).",
        epilog="examples:\n"
        "  adjoint-sym verify-derivation derivations/corpus/chen2018_eq4_adjoint.toml\n"
        "  adjoint-sym verify-derivation mine.toml --markdown\n"
        "  adjoint-sym verify-derivation mine.toml --json\n\n" + _EXAMPLE + "\n" + EXIT_HELP + "\n",
    )
    p.add_argument("spec", help="problem spec with a [claim] table (.toml or .json)")
    p.add_argument("--json", action="store_true", help="one JSON object: holds, pieces [...], experiment")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", action="store_true", help="a Markdown table of the pieces")
    fmt.add_argument("--latex", action="store_true", help="a LaTeX tabular of the pieces")
    p.add_argument("--points", type=int, default=12, help="points the pieces are compared at (default 12)")
    p.add_argument("--budget", type=float, default=1.0, help="CPU seconds of simplification per piece (default 1)")
    p.set_defaults(func=cmd_verify_derivation)


__all__ = ["EXIT_HELP", "cmd_verify_derivation", "register"]
