"""What every command shares: exit codes, help texts, progress lines, loading a spec."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

import numpy as np

from .._limits import LIMIT_NAMES, Limits, limits
from ..errors import InvalidModelError
from ..numeric.solve import check_solver
from ..symbolic.names import escape
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
exit codes: 0 ok, 1 verification failed, 2 invalid spec or usage (or a size limit exceeded),
            3 numerical failure (or the step budget or time limit used up: --max-steps, --time-limit, --limit),
            4 inconclusive (the references disagree among themselves; no method failed)
"""

#: The longest message printed on stderr; a longer one is cut (its start says what and where).
MAX_MESSAGE = 4000

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
        self.stage = "starting"
        self._pending = False  # an update line waits to be overwritten

    def step(self, message: str) -> None:
        """A line for a new stage of the work."""
        self.stage = message
        if self.enabled:
            self._end_update()
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:6.2f}s] {escape(message)}", file=self.stream, flush=True)

    def update(self, message: str) -> None:
        """Where a long solve stands, rewritten in place on one line."""
        if self.enabled:
            elapsed = time.perf_counter() - self.start
            print(f"\r[{elapsed:6.2f}s]   {escape(message)}\033[K", end="", file=self.stream, flush=True)
            self._pending = True

    def _end_update(self) -> None:
        if self._pending:
            print(file=self.stream, flush=True)
            self._pending = False

    def close(self) -> None:
        if self.enabled:
            self._end_update()


def limit_overrides(args: argparse.Namespace) -> dict:
    """The limits given on the command line (``--max-steps``, ``--time-limit``, ``--limit``)."""
    out: dict = {}
    for item in getattr(args, "limit", None) or []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in LIMIT_NAMES:
            raise InvalidModelError(
                f"--limit {escape(item[:60])}: expected NAME=VALUE with NAME one of {', '.join(LIMIT_NAMES)}"
            )
        out[name] = _limit_value(name, value.strip(), f"--limit {name}")
    if getattr(args, "max_steps", None) is not None:
        out["max_steps"] = _limit_value("max_steps", args.max_steps, "--max-steps")
    if getattr(args, "time_limit", None) is not None:
        out["time_limit"] = _limit_value("time_limit", args.time_limit, "--time-limit")
    return out


def _limit_value(name: str, text: str, where: str) -> int | float | None:
    try:
        value: int | float | None
        if name == "time_limit":
            value = None if text.lower() == "none" else float(text)
        else:
            value = int(text.replace("_", ""))
        Limits(**{name: value})
    except (ValueError, InvalidModelError):
        kind = "a positive number of seconds" if name == "time_limit" else "a positive integer"
        raise InvalidModelError(f"{where}: expected {kind}, got {escape(str(text)[:60])!r}") from None
    return value


def load(args: argparse.Namespace, progress: Progress) -> tuple[Spec, SolverSettings]:
    """Read the spec under the command line's limits, and keep its ``[limits]`` for the run."""
    progress.step(f"reading and validating {args.spec}")
    overrides = limit_overrides(args)
    spec = load_spec(args.spec, limit_overrides=overrides)
    stack = getattr(args, "limit_stack", None)
    if stack is not None:  # in force until the command returns (app.main closes the stack)
        stack.enter_context(limits(**spec.limits))
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
    """The options every command takes (``--quiet``, the budgets) and those of commands that solve."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    budget = common.add_argument_group("budgets (see adjoint_sym.limits; a spec's [limits] table sets them too)")
    budget.add_argument(
        "--max-steps", metavar="N", help=f"steps per solve before giving up (default {Limits().max_steps})"
    )
    budget.add_argument("--time-limit", metavar="SECONDS", help="wall-clock limit of the whole command (default none)")
    budget.add_argument(
        "--limit",
        action="append",
        metavar="NAME=VALUE",
        help="any other limit: " + ", ".join(n for n in LIMIT_NAMES if n not in ("max_steps", "time_limit")),
    )
    solver = argparse.ArgumentParser(add_help=False)
    solver.add_argument("--solver", help="solve_ivp method, overrides [solver] method (DOP853, RK45, LSODA, BDF, ...)")
    solver.add_argument("--rtol", type=float, help="relative tolerance, overrides [solver] rtol")
    solver.add_argument("--atol", type=float, help="absolute tolerance, overrides [solver] atol")
    return common, solver
