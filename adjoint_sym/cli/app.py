"""The ``adjoint-sym`` command line: derive, differentiate and verify a problem stated in a spec file.

Commands (see ``adjoint-sym COMMAND --help``)::

    adjoint-sym derive SPEC [--latex | --markdown]     augmented system and adjoint ODEs
    adjoint-sym gradient SPEC [--method M] [--json]    loss and gradient
    adjoint-sym check SPEC [--json] [--methods ...]    every method side by side, verdict
    adjoint-sym report SPEC -o DIR                     Markdown report with equations, table, plots
    adjoint-sym derivations --out DIR [--quick]        run every script in derivations/

Exit codes: 0 ok, 1 verification failed, 2 invalid spec or usage (message on stderr),
3 numerical failure (where and why on stderr).  A user mistake never prints a traceback.
Spec files are described in :mod:`adjoint_sym.cli.spec`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TextIO

import numpy as np
import sympy as sp

from .._version import __version__
from ..errors import AdjointSymError, GradientMismatchError, InvalidModelError, SolverFailedError
from ..numeric.solve import check_solver
from .spec import SolverSettings, Spec, load_spec, positive_tolerance

EXIT_OK, EXIT_MISMATCH, EXIT_INVALID, EXIT_NUMERICAL = 0, 1, 2, 3

SEMANTICS = """\
semantics of the time derivatives:
  dL_dt0    derivative in the start time t0 with h0 held fixed: the initial value is
            imposed at the moved t0, so dL/dt0 = -a(t0) . f(h0, t0); observation times
            stay where they are.
  dL_dt1    final losses: moving t1 moves where the loss reads the state, so
            dL/dt1 = dL/dh(t1) . f(h(t1), t1) + the explicit t-dependence of L.
            Observation losses: dL_dt1 is null and dL_dtimes[i] = dL/dt_i, each
            observation time moved alone.
"""

EXIT_CODES = """\
exit codes: 0 ok, 1 verification failed, 2 invalid spec or usage, 3 numerical failure
"""

METHODS_HELP = (
    "gradient method: an adjoint (adjoint [default: interpolating for explicit solvers, quadrature for "
    "implicit ones], interpolating, backsolve, quadrature) or a reference (forward, complex-step, "
    "finite-difference, backprop)"
)


class Progress:
    """Progress lines on stderr, only when wanted and stderr is a terminal.

    Examples
    --------
    >>> import io
    >>> p = Progress(enabled=True, stream=io.StringIO())  # StringIO is not a terminal
    >>> p.step("solving"); p.stream.getvalue()
    ''
    """

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.enabled = bool(enabled and isatty is not None and isatty())
        self.start = time.perf_counter()

    def step(self, message: str) -> None:
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:6.2f}s] {message}", file=self.stream, flush=True)


# -- commands -------------------------------------------------------------------------


def _load(args: argparse.Namespace, progress: Progress) -> tuple[Spec, SolverSettings]:
    progress.step(f"reading and validating {args.spec}")
    spec = load_spec(args.spec)
    settings = spec.solver
    method = getattr(args, "solver", None) or settings.method
    rtol = settings.rtol if getattr(args, "rtol", None) is None else positive_tolerance(args.rtol, "--rtol")
    atol = settings.atol if getattr(args, "atol", None) is None else positive_tolerance(args.atol, "--atol")
    try:
        check_solver(method)
    except InvalidModelError as exc:
        raise InvalidModelError(f"--solver: {exc}") from None
    return spec, SolverSettings(method, rtol, atol)


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
    lines = [spec.name or "system", "=" * max(6, len(spec.name)), "", "Dynamics:"]
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
    lines += ["", "Loss:", f"  {_describe_loss(spec)}"]
    lines += [
        "",
        "Gradients:",
        f"  dL/dh0 = a({t}0),  dL/dtheta = a_theta({t}0),  dL/d{t}0 = a_{t}({t}0) (h0 held fixed)",
    ]
    return "\n".join(lines) + "\n"


def _describe_loss(spec: Spec) -> str:
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
    spec = load_spec(args.spec)
    progress.step("deriving the adjoint")
    if args.latex:
        print(spec.system.adjoint(form=args.form).latex())
    elif args.markdown:
        print(spec.system.adjoint(form=args.form).markdown(), end="")
    else:
        print(derive_text(spec, form=args.form), end="")
    return EXIT_OK


def _compute_gradient(spec: Spec, settings: SolverSettings, method: str, progress: Progress):
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
    spec, settings = _load(args, progress)
    g = _compute_gradient(spec, settings, args.method, progress)
    if args.json:
        print(json.dumps(g.as_dict(), allow_nan=False))
        return EXIT_OK
    print(f"{spec.name}: method {g.method}, solver {settings.method}, rtol {settings.rtol:g}, atol {settings.atol:g}")
    print(f"L = {float(g.loss):.15g}")
    quantities = g.quantities(spec.system.state_names)
    width = max(len(k) for k in quantities)
    for name, value in quantities.items():
        print(f"  {name:<{width}}  {value: .15g}")
    return EXIT_OK


def _run_check(spec: Spec, settings: SolverSettings, methods: Sequence[str] | None, progress: Progress):
    from ..verify import check

    progress.step(f"comparing gradient methods ({settings.method}, rtol={settings.rtol:g})")
    options = {"solver": settings.method, "rtol": settings.rtol, "atol": settings.atol}
    if methods:
        options["methods"] = list(methods)
    return check(spec.problem, **options)


def cmd_check(args: argparse.Namespace, progress: Progress) -> int:
    spec, settings = _load(args, progress)
    report = _run_check(spec, settings, args.methods, progress)
    if args.json:
        print(json.dumps(report.as_dict(), default=_json_default))
    else:
        print(report.markdown(), end="")
    if not report.ok:
        print("adjoint-sym: verification failed: the methods disagree beyond their tolerances", file=sys.stderr)
        return EXIT_MISMATCH
    return EXIT_OK


def _json_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def cmd_report(args: argparse.Namespace, progress: Progress) -> int:
    spec, settings = _load(args, progress)
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
        adj.markdown(),
    ]
    report = _run_check(spec, settings, None, progress)
    ok = bool(report.ok)
    verdict = "all methods agree" if ok else "**the methods disagree** (see the table)"
    parts += ["## Gradients", f"Verdict: {verdict}.", report.markdown()]
    parts += ["## Time derivatives", "```\n" + SEMANTICS + "```"]
    plots = _plot_trajectories(spec, settings, out, progress)
    parts += ["## Plots", plots]
    (out / "report.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    print(out / "report.md")
    return EXIT_OK if ok else EXIT_MISMATCH


def _gradient_markdown(g, state_names: Sequence[str]) -> str:
    rows = [f"| {name} | {value:.12g} |" for name, value in g.quantities(state_names).items()]
    head = f"Method {g.method}: L = {float(g.loss):.15g}\n\n| quantity | value |\n|---|---|\n"
    return head + "\n".join(rows)


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
            f"- loss: `{_describe_loss(spec)}`",
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


def cmd_derivations(args: argparse.Namespace, progress: Progress) -> int:
    derivations_runner = _derivations_runner()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress.step(f"running the derivations into {out}{' (quick)' if args.quick else ''}")
    verdicts = derivations_runner.run_all(out, args.quick)
    print(json.dumps(verdicts, indent=2, default=str))
    return EXIT_OK


def _derivations_runner() -> ModuleType:
    """``derivations/_runner.py`` of the source checkout this package was imported from.

    The derivation scripts are documents of the repository, not part of the installed
    package; their folder goes on ``sys.path`` so they find their shared helpers.
    """
    folder = Path(__file__).resolve().parents[2] / "derivations"
    runner = folder / "_runner.py"
    if not runner.is_file():
        raise AdjointSymError(
            f"the derivations/ folder was not found at {folder}: the derivation scripts ship with the source "
            "repository, not with the installed package; run from a checkout (pip install -e . in the repository)"
        )
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location("adjoint_sym_derivations_runner", runner)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the parser -----------------------------------------------------------------------


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``adjoint-sym``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    solver = argparse.ArgumentParser(add_help=False)
    solver.add_argument("--solver", help="solve_ivp method, overrides [solver] method (DOP853, RK45, LSODA, BDF, ...)")
    solver.add_argument("--rtol", type=float, help="relative tolerance, overrides [solver] rtol")
    solver.add_argument("--atol", type=float, help="absolute tolerance, overrides [solver] atol")

    parser = argparse.ArgumentParser(
        prog="adjoint-sym",
        formatter_class=_formatter,
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

    p = sub.add_parser(
        "derive",
        parents=[common],
        formatter_class=_formatter,
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

    p = sub.add_parser(
        "gradient",
        parents=[common, solver],
        formatter_class=_formatter,
        help="compute the loss and its gradient",
        description="Compute L and dL/dh0, dL/dtheta, dL/dt0, dL/dt1 (dL/dt_i for observation losses).\n"
        "With --json, stdout is exactly one JSON object with the keys\n"
        "  loss, dL_dh0, dL_dparams, dL_dt0, dL_dt1, dL_dtimes, method, stats.",
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
        formatter_class=_formatter,
        help="compare every gradient method; exit 1 on disagreement",
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

    p = sub.add_parser(
        "report",
        parents=[common, solver],
        formatter_class=_formatter,
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

    p = sub.add_parser(
        "derivations",
        parents=[common],
        formatter_class=_formatter,
        help="run every derivation script in derivations/ and print the claim verdicts",
        description="Run every script of the derivations/ folder (statement, symbolic proof, numeric experiment,\n"
        "verdict) and write their outputs to DIR; print the verdicts as JSON.",
        epilog="examples:\n"
        "  adjoint-sym derivations --out results/\n"
        "  adjoint-sym derivations --out /tmp/quick --quick\n\n" + EXIT_CODES,
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (created if missing)")
    p.add_argument("--quick", action="store_true", help="smaller experiments, for a fast look")
    p.set_defaults(func=cmd_derivations)
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
