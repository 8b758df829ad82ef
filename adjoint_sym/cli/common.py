"""What every command shares: exit codes, help texts, progress lines, loading a spec."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

import numpy as np

from ..errors import InvalidModelError
from ..numeric.solve import check_solver
from .spec import SolverSettings, Spec, load_spec, positive_tolerance

EXIT_OK, EXIT_MISMATCH, EXIT_INVALID, EXIT_NUMERICAL = 0, 1, 2, 3
#: ``check`` / ``report``: the references disagree among themselves, so no method was failed.
EXIT_INCONCLUSIVE = 4

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
exit codes: 0 ok, 1 verification failed, 2 invalid spec or usage, 3 numerical failure,
            4 inconclusive (the references disagree among themselves; no method failed)
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


def load(args: argparse.Namespace, progress: Progress) -> tuple[Spec, SolverSettings]:
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


def json_default(value: object) -> object:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def parent_parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The options every command takes (``--quiet``) and those of commands that solve."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    solver = argparse.ArgumentParser(add_help=False)
    solver.add_argument("--solver", help="solve_ivp method, overrides [solver] method (DOP853, RK45, LSODA, BDF, ...)")
    solver.add_argument("--rtol", type=float, help="relative tolerance, overrides [solver] rtol")
    solver.add_argument("--atol", type=float, help="absolute tolerance, overrides [solver] atol")
    return common, solver
