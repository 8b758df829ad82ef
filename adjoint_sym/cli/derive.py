"""``adjoint-sym derive``: the dynamics, the augmented system and the adjoint ODEs."""

from __future__ import annotations

import argparse
import re

import sympy as sp

from ..symbolic.names import escape
from .common import EXIT_CODES, EXIT_OK, Progress, formatter, limit_overrides
from .spec import Spec, load_spec


def _plain(expr: object) -> str:
    """A SymPy expression as one line of text, ``a_{x}`` written ``a_x``."""
    return re.sub(r"_\{(\w+)\}", r"_\1", sp.sstr(expr))


def _entries(symbol: sp.Basic, rhs: sp.Basic) -> list[tuple[str, sp.Basic]]:
    """One ``(name, expression)`` per scalar entry of an adjoint block."""
    if isinstance(symbol, sp.MatrixBase):
        return [(_plain(s), r) for s, r in zip(symbol, rhs)]
    if isinstance(rhs, sp.MatrixExpr | sp.MatrixBase):
        explicit = rhs.as_explicit()
        rows, cols = explicit.shape
        return [(f"{_plain(symbol)}[{i},{j}]", explicit[i, j]) for i in range(rows) for j in range(cols)]
    return [(_plain(symbol), rhs)]


def derive_text(spec: Spec, form: str = "vjp") -> str:
    """The dynamics, augmented system and adjoint of a spec as plain text."""
    system, problem = spec.system, spec.problem
    adj = system.adjoint(form=form)
    aug = adj.augmented
    t = system.t
    label = escape(spec.name) or "system"  # user text on a terminal: control characters escaped
    lines = [label, "=" * max(6, len(label)), "", "Dynamics:"]
    lines += [f"  d{s}/d{t} = {_plain(f)}" for s, f in zip(system.state, system.rhs)]
    state = ", ".join(_plain(s) for s in aug.state)
    lines += ["", "Augmented state z = [h, theta, t] with dz/dt = [f, 0, 1]:"]
    lines += [f"  d/d{t} [{state}]", f"    = [{', '.join(_plain(r) for r in aug.rhs)}]"]
    lines += ["", f"Augmented adjoint ({form} form), integrated backward from {t}1 to {t}0:"]
    for symbol, rhs in adj.blocks():
        lines += [f"  d{name}/d{t} = {_plain(r)}" for name, r in _entries(symbol, rhs)]
    lines += ["", "Terminal conditions:", f"  a({t}1) = dL/dh({t}1),  a_theta({t}1) = 0,  a_{t}({t}1) = -dL/d{t}1"]
    if not problem.is_final_loss:
        lines.append(f"  at each observation time {t}_i: a += dL/dh({t}_i), a_{t} -= dL/d{t}_i")
    lines += ["", "Loss:", f"  {describe_loss(spec)}"]
    lines += [
        "",
        "Gradients:",
        f"  dL/dh0 = a({t}0),  dL/dtheta = a_theta({t}0),  dL/d{t}0 = a_{t}({t}0) (h0 held fixed)",
    ]
    return "\n".join(lines) + "\n"


def describe_loss(spec: Spec) -> str:
    problem = spec.problem
    exprs = problem.loss.expressions(problem.system, len(problem.times))
    t = problem.system.t
    if problem.is_final_loss:
        return f"L = {_plain(exprs[0])} at {t}1 = {problem.t1:g}"
    times = ", ".join(f"{x:g}" for x in problem.times)
    if getattr(problem.loss, "targets", None) is not None:
        return f"L = sum_i ||h({t}_i) - y_i||^2 over {t}_i in [{times}]"
    if len(set(exprs)) == 1:
        return f"L = sum_i [{_plain(exprs[0])}] at {t}_i in [{times}]"
    return "L = " + " + ".join(f"[{_plain(e)}]({t}={x:g})" for e, x in zip(exprs, problem.times))


def cmd_derive(args: argparse.Namespace, progress: Progress) -> int:
    progress.step(f"reading and validating {args.spec}")
    spec = load_spec(args.spec, limit_overrides=limit_overrides(args))
    progress.step("deriving the adjoint")
    if args.latex:
        print(spec.system.adjoint(form=args.form).latex())
    elif args.markdown:
        print(spec.system.adjoint(form=args.form).markdown(), end="")
    else:
        print(derive_text(spec, form=args.form), end="")
    return EXIT_OK


def register(sub, common: argparse.ArgumentParser, solver: argparse.ArgumentParser) -> None:
    """Add the ``derive`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "derive",
        parents=[common],
        formatter_class=formatter,
        help="print the augmented system and the adjoint ODEs",
        description="Print the dynamics, the augmented state [h, theta, t] and the augmented adjoint ODEs "
        "(Chen et al. 2018) as plain text, LaTeX or Markdown.",
        epilog="examples:\n"
        "  adjoint-sym derive examples/lotka_volterra.toml\n"
        "  adjoint-sym derive examples/sir.toml --latex > sir_adjoint.tex\n"
        "  adjoint-sym derive examples/exponential_decay.json --markdown --form jacobian\n\n" + EXIT_CODES,
    )
    p.add_argument("spec", help="problem spec file (.toml or .json)")
    style = p.add_mutually_exclusive_group()
    style.add_argument("--latex", action="store_true", help="an amsmath align block")
    style.add_argument("--markdown", action="store_true", help="Markdown with $$ display maths")
    p.add_argument("--form", choices=("vjp", "jacobian"), default="vjp", help="how a^T df/d. is formed")
    p.set_defaults(func=cmd_derive)
