"""``adjoint-sym report``: a Markdown report with the equations, the verdict and the plots.

The output folder is written safely: ``-o ''`` is refused, nothing is written through a
symbolic link (a planted ``DIR/report.md -> ~/.bashrc`` stays untouched), and existing
files are kept unless ``--force``; all of this is checked before any work is done.  User
text in the report (the label, the spec's path) is escaped for Markdown and HTML.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np

from ..errors import InvalidModelError
from ..symbolic.loss_terms import loss_terms
from ..symbolic.names import escape, markdown_code, markdown_text, shown
from .common import EXIT_CODES, SEMANTICS, Progress, formatter, load
from .compute import run_check, verdict_exit_code
from .derive import describe_loss
from .spec import SolverSettings, Spec

#: The files a report writes into its folder.
OUTPUTS = ("report.md", "trajectories.png", "adjoint.png")


def cmd_report(args: argparse.Namespace, progress: Progress) -> int:
    out = output_folder(args.output, OUTPUTS, force=args.force)
    spec, settings = load(args, progress)
    out.mkdir(parents=True, exist_ok=True)
    progress.step("deriving the adjoint")
    adj = spec.system.adjoint()
    parts = [
        f"# {markdown_text(spec.name)}",
        f"Spec: {markdown_code(spec.source)}; solver {settings.method}, rtol {settings.rtol:g}, "
        f"atol {settings.atol:g}.",
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
    plots = _plot_trajectories(spec, settings, out, progress, args.force)
    parts += ["## Plots", plots]
    with open_output(out / "report.md", args.force, "w", encoding="utf-8") as f:
        f.write("\n\n".join(parts) + "\n")
    print(escape(str(out / "report.md")))
    return verdict_exit_code(report)


def output_folder(path: str, names: tuple[str, ...], *, force: bool) -> Path:
    """The output folder, refused if empty, a symbolic link, or holding a file we would overwrite."""
    if not path or not path.strip():
        raise InvalidModelError("-o/--output: the output folder is empty; name a folder (it is created if missing)")
    out = Path(path)
    if out.is_symlink():
        raise InvalidModelError(
            f"-o {shown(path, limit=300)}: the output folder is a symbolic link; give the folder it points to"
        )
    if out.exists() and not out.is_dir():
        raise InvalidModelError(f"-o {shown(path, limit=300)}: exists and is not a folder")
    for name in names:
        target = out / name
        if target.is_symlink():
            raise InvalidModelError(
                f"-o {shown(path, limit=300)}: {name} is a symbolic link; it is never written through (remove it first)"
            )
        if target.exists() and not force:
            raise InvalidModelError(
                f"-o {shown(path, limit=300)}: {name} exists; pass --force to overwrite it, or choose another folder"
            )
    return out


def open_output(path: Path, force: bool, mode: str, **kwargs):
    """Open ``path`` for writing without following a symbolic link (and, without ``force``,
    without replacing a file that appeared meanwhile)."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | (os.O_TRUNC if force else os.O_EXCL)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        raise InvalidModelError(f"{shown(str(path), limit=300)} exists; pass --force to overwrite it") from None
    except OSError:
        if path.is_symlink():
            raise InvalidModelError(
                f"{shown(str(path), limit=300)} is a symbolic link; it is never written through"
            ) from None
        raise
    return os.fdopen(fd, mode, **kwargs)


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
            f"- loss: {markdown_code(describe_loss(spec))}",
        ]
    )


def _plot_trajectories(spec: Spec, settings: SolverSettings, out: Path, progress: Progress, force: bool) -> str:
    """Save the state and adjoint trajectories next to the report; a note instead without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        return "Plots skipped: matplotlib is not installed (`pip install 'adjoint_sym[plot]'`)."
    from .. import plot  # draws on pyplot-free Figures (the Agg canvas): no display needed

    progress.step("plotting the state and adjoint trajectories")
    options = {"solver": settings.method, "rtol": settings.rtol, "atol": settings.atol}
    for name, figure in (("trajectories.png", plot.trajectories), ("adjoint.png", plot.adjoint_trajectories)):
        with open_output(out / name, force, "wb") as f:
            figure(spec.problem, **options).savefig(f, format="png", dpi=120)
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
    p.add_argument("--force", action="store_true", help="overwrite an existing report in DIR (never via a symlink)")
    p.set_defaults(func=cmd_report)
