"""``adjoint-sym derive``: the derivation of a spec's gradient, as text, LaTeX or Markdown.

The dynamics, the loss, the augmented system, the adjoint ODEs, their terminal values and
the jumps at observation times, and the gradient with the loss's explicit terms; one
derivation (:mod:`adjoint_sym.symbolic.document`) printed by each format's renderer.
"""

from __future__ import annotations

import argparse

from ..symbolic.loss_terms import LossTerms, loss_terms
from ..symbolic.names import escape
from ..symbolic.text import derivation_text, expression_text
from .common import EXIT_CODES, EXIT_OK, Progress, formatter, limit_overrides
from .spec import Spec, load_spec


def derive_text(spec: Spec, form: str = "vjp") -> str:
    """The derivation of a spec's gradient as plain text (no LaTeX)."""
    adj = spec.system.adjoint(form=form)
    return derivation_text(adj, _terms(spec), title=spec.name or "system")


def _terms(spec: Spec) -> LossTerms:
    """The spec's loss with its summands and partial derivatives (and the end time)."""
    problem = spec.problem
    return loss_terms(problem.system, problem.loss, t1=problem.t1)


def describe_loss(spec: Spec) -> str:
    """The loss in one line of plain text."""
    problem = spec.problem
    g, t = problem.running_cost, problem.system.t
    running = "" if g is None else f"int_{t}0^{t}1 [{expression_text(g)}] d{t}"
    point = _describe_point(problem)
    if g is not None and problem.is_final_loss and _point_exprs(problem)[0] == 0:  # a running cost alone
        return f"L = {running} over [{problem.t0:g}, {problem.t1:g}]"
    return f"L = {point}" + ("" if g is None else f" + {running}")


def _point_exprs(problem) -> list:
    return problem.point_loss.expressions(problem.system, len(problem.times))


def _describe_point(problem) -> str:
    point = problem.point_loss
    exprs = _point_exprs(problem)
    t = problem.system.t
    if problem.is_final_loss:
        return f"{expression_text(exprs[0])} at {t}1 = {problem.t1:g}"
    times = ", ".join(f"{x:g}" for x in problem.times)
    if getattr(point, "targets", None) is not None:
        return f"sum_i ||h({t}_i) - y_i||^2 over {t}_i in [{times}]"
    if len(set(exprs)) == 1:
        return f"sum_i [{expression_text(exprs[0])}] at {t}_i in [{times}]"
    return " + ".join(f"[{expression_text(e)}]({t}={x:g})" for e, x in zip(exprs, problem.times))


def cmd_derive(args: argparse.Namespace, progress: Progress) -> int:
    progress.step(f"reading and validating {args.spec}")
    spec = load_spec(args.spec, limit_overrides=limit_overrides(args))
    progress.step("deriving the adjoint")
    if args.order == 2:  # the second-order adjoint lives with the hvp command
        from .hvp import print_second_order

        return print_second_order(spec.system, args, running_cost=spec.problem.running_cost)
    if args.latex:
        text = spec.system.adjoint(form=args.form).latex(loss=_terms(spec)) + "\n"
    elif args.markdown:
        text = spec.system.adjoint(form=args.form).markdown(loss=_terms(spec))
    else:
        text = derive_text(spec, form=args.form)
    print(escape(text), end="")  # user text (the label) reaches a terminal: control characters escaped
    return EXIT_OK


def register(sub, common: argparse.ArgumentParser, solver: argparse.ArgumentParser) -> None:
    """Add the ``derive`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "derive",
        parents=[common],
        formatter_class=formatter,
        help="print the derivation: augmented system, adjoint ODEs, terminal values, gradient",
        description="Print the derivation of the spec's gradient (Chen et al. 2018) as plain text, LaTeX or\n"
        "Markdown: the dynamics, the loss, the augmented state [h, theta, t], the augmented adjoint ODEs,\n"
        "their terminal values and the jumps at observation times, and the gradient with the loss's\n"
        "explicit terms (dL/dtheta = a_theta(t0) + dl/dtheta, dL/dt1 = dl/dh . f + dl/dt).",
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
    p.add_argument("--order", type=int, choices=(1, 2), default=1, help="2: tangent system and second-order adjoint")
    p.set_defaults(func=cmd_derive)
