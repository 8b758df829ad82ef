"""``adjoint-sym report``: a Markdown report with the equations, the verdict and the plots."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np

from ..symbolic.loss_terms import loss_terms
from .common import EXIT_CODES, SEMANTICS, Progress, formatter, load
from .compute import run_check, verdict_exit_code
from .derive import describe_loss
from .spec import SolverSettings, Spec


def cmd_report(args: argparse.Namespace, progress: Progress) -> int:
    spec, settings = load(args, progress)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    progress.step("deriving the adjoint")
    adj = spec.system.adjoint()
    parts = [
        f"# {spec.name}",
        f"Spec: `{spec.source}`; solver {settings.method}, rtol {settings.rtol:g}, atol {settings.atol:g}.",
        "## Problem",
        _problem_markdown(spec),
        "## Equations",
        adj.markdown(loss=loss_terms(spec.system, spec.problem.loss, t1=spec.problem.t1)),
    ]
    report = run_check(spec, settings, None, progress)
    verdict = {
        "ok": "all methods agree",
        "fail": "**the methods disagree** (see the table)",
        "inconclusive": "**inconclusive**: the references disagree among themselves (see the table)",
    }[report.verdict]
    parts += ["## Gradients", f"Verdict: {verdict}.", report.markdown()]
    parts += ["## Time derivatives", "```\n" + SEMANTICS + "```"]
    plots = _plot_trajectories(spec, settings, out, progress)
    parts += ["## Plots", plots]
    (out / "report.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(out / "report.md")
    return verdict_exit_code(report)


def _problem_markdown(spec: Spec) -> str:
    problem = spec.problem
    system = problem.system
    params = ", ".join(
        f"{k} = {v:g}" if np.ndim(v) == 0 else f"{k} = {np.asarray(v).tolist()}" for k, v in problem.params.items()
    )
    h0 = ", ".join(f"{s} = {v:g}" for s, v in zip(system.state_names, problem.h0))
    return "\n".join(
        [
            f"- initial value at t0 = {problem.t0:g}: {h0}",
            f"- parameters: {params or 'none'}",
            f"- time span: [{problem.t0:g}, {problem.t1:g}]",
            f"- loss: `{describe_loss(spec)}`",
        ]
    )


def _plot_trajectories(spec: Spec, settings: SolverSettings, out: Path, progress: Progress) -> str:
    """Save the state and adjoint trajectories next to the report; a note instead without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        return "Plots skipped: matplotlib is not installed (`pip install 'adjoint_sym[plot]'`)."
    from .. import plot  # draws on pyplot-free Figures (the Agg canvas): no display needed

    progress.step("plotting the state and adjoint trajectories")
    options = {"solver": settings.method, "rtol": settings.rtol, "atol": settings.atol}
    plot.trajectories(spec.problem, **options).savefig(out / "trajectories.png", dpi=120)
    plot.adjoint_trajectories(spec.problem, **options).savefig(out / "adjoint.png", dpi=120)
    return (
        "![state trajectories h(t)](trajectories.png)\n\n"
        "![adjoint a(t) and a_theta(t), integrated from t1 back to t0](adjoint.png)"
    )


def register(sub, common: argparse.ArgumentParser, solver: argparse.ArgumentParser) -> None:
    """Add the ``report`` command to the subparsers ``sub``."""
    p = sub.add_parser(
        "report",
        parents=[common, solver],
        formatter_class=formatter,
        help="write a Markdown report with equations, gradient table and plots",
        description="Write DIR/report.md: the problem, the equations, the gradient table of every method with the\n"
        "verdict, and (with matplotlib installed) a plot of the state trajectories, DIR/trajectories.png.\n"
        "Exits 1 when the methods disagree (the report is written all the same).",
        epilog="examples:\n"
        "  adjoint-sym report examples/lotka_volterra.toml -o reports/lv\n"
        "  adjoint-sym report examples/damped_oscillator_observations.toml -o reports/osc --quiet\n\n" + EXIT_CODES,
    )
    p.add_argument("spec", help="problem spec file (.toml or .json)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory (created if missing)")
    p.set_defaults(func=cmd_report)
