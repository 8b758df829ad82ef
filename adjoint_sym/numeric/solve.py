"""``solve_ivp`` with the system's kernels: dense output kept, failures made clear.

Stiff methods (BDF, Radau, LSODA) receive the symbolic Jacobian: entry-wise for scalar
systems, from one batched matrix-level forward-mode JVP for matrix-level ones (never from
the adjoint's VJP, so a reference that solves through here shares nothing with it).  The
solver classes are stepped here (as ``solve_ivp`` does) so that every solve keeps to the
step budget and the time limit of :func:`adjoint_sym.limits`, reports progress on a
terminal, and, when it stops early, says why (:mod:`adjoint_sym.numeric.diagnose`): an
expression leaving its domain, a blow-up, stiffness, or the budget, with the time, the
state and a remedy, as a :class:`SolverFailedError`.  A non-finite trial stage is no
failure: the solver rejects it.
"""

from __future__ import annotations

import cmath
import contextlib
import contextvars
import numbers
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import scipy.integrate
from scipy.integrate import OdeSolution

from .._limits import current_limits, how_to_raise
from ..errors import InvalidModelError, SolverFailedError
from .diagnose import Record, classify, domain_message, short, spectral_radius, stiffness

EXPLICIT = ("RK23", "RK45", "DOP853")
IMPLICIT = ("BDF", "Radau", "LSODA")
SOLVERS = EXPLICIT + IMPLICIT


@dataclass(frozen=True)
class SolveResult:
    """A trajectory: the solver's steps and its dense interpolant."""

    t: np.ndarray
    y: np.ndarray  # (dim, steps)
    sol: OdeSolution | None
    nfev: int
    njev: int
    n_steps: int

    def at(self, times: np.ndarray) -> np.ndarray:
        """States at ``times``, shape (len(times), dim); endpoints exact."""
        if self.sol is None:
            if len(self.t) == 1:  # zero-length span
                return np.repeat(self.y[:, :1].T, len(times), axis=0)
            index = {float(t): i for i, t in enumerate(self.t)}
            missing = [t for t in times if float(t) not in index]
            if missing:
                raise ValueError(f"no dense output and {missing[0]} is not a kept time")
            return self.y[:, [index[float(t)] for t in times]].T.copy()
        out = np.asarray(self.sol(times)).T.copy()
        for i, t in enumerate(times):
            if t == self.t[-1]:
                out[i] = self.y[:, -1]
            elif t == self.t[0]:
                out[i] = self.y[:, 0]
        return out


def check_solver(solver: str) -> str:
    if solver not in SOLVERS:
        raise InvalidModelError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    return solver


def check_tolerance(value: object, name: str) -> float:
    """A tolerance as the spec loader takes it: a finite number in ``(0, 1)``.

    Examples
    --------
    >>> check_tolerance(1e-8, "rtol")
    1e-08
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidModelError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    out = float(value)
    if not 0.0 < out < 1.0:
        raise InvalidModelError(f"{name}: a tolerance must lie in (0, 1), got {out}")
    return out


# -- progress on a terminal ---------------------------------------------------------------
_reporter: contextvars.ContextVar[Callable[[str], None] | None] = contextvars.ContextVar(
    "adjoint_sym_progress", default=None
)

#: Seconds between two progress reports of one solve.
PROGRESS_EVERY = 1.0


@contextlib.contextmanager
def reporting(callback: Callable[[str], None] | None) -> Iterator[None]:
    """Send a line about each long solve (``t`` reached, steps) to ``callback`` about once a second."""
    token = _reporter.set(callback)
    try:
        yield
    finally:
        _reporter.reset(token)


def guarded(fun: Callable, record: Record) -> Callable:
    """Wrap a right-hand side so a non-finite value is noted (time, state, value) for the diagnosis.

    A non-finite trial stage is not a failure: the solver rejects that step and retries a
    shorter one.  Only if the solve then stops does the note explain why.  Python's float
    arithmetic raises where numpy's returns inf or nan (``0.0**-0.5`` at ``t = 0``); that
    counts as a non-finite value too.
    """

    def rhs(t, y):
        try:
            out = fun(t, y)
        except (ZeroDivisionError, OverflowError) as exc:
            record.note(t, y, None, exc)
            return np.full(np.shape(y), np.nan)
        # One dot product and a scalar test: NaN and inf propagate into it, and it
        # costs a fraction of np.isfinite(out).all() on the per-step hot path.
        if not cmath.isfinite(out.dot(out)) and not np.isfinite(out).all():
            record.note(t, y, out.copy())
        return out

    return rhs


class _BadJacobian(Exception):
    def __init__(self, t: float, y: np.ndarray, detail: str) -> None:
        self.t, self.y, self.detail = t, np.array(y), detail


def _guarded_jacobian(jac: Callable) -> Callable:
    """A Jacobian that is not finite cannot be factorised: stop with where, not scipy's LU error."""

    def wrapped(t, y):
        try:
            out = jac(t, y)
        except (ZeroDivisionError, OverflowError) as exc:
            raise _BadJacobian(t, y, f"{type(exc).__name__}: {exc}") from None
        if not np.all(np.isfinite(out)):
            raise _BadJacobian(t, y, "it has non-finite entries")
        return out

    return wrapped


def integrate(
    fun: Callable,
    t_span: tuple[float, float],
    y0: np.ndarray,
    *,
    solver: str,
    rtol: float,
    atol: float,
    jac: Callable | None = None,
    what: str = "forward solve",
    blowup_remedy: str = "the solution may blow up in finite time: shorten the time span or check parameters",
    dense: bool = True,
    t_eval: np.ndarray | None = None,
    max_step: float = np.inf,
    labels: Sequence[str] | None = None,
) -> SolveResult:
    """Integrate ``dy/dt = fun(t, y)`` over ``t_span``; raise a clear error on failure.

    With ``t_eval`` given (and ``dense=False``), only the states at ``t_eval`` are kept,
    so memory does not grow with the number of steps.  Every solve runs within the
    budgets of :func:`adjoint_sym.limits` (``max_steps``, ``time_limit``); ``labels`` name
    the components in messages.
    """
    check_solver(solver)
    rtol, atol = check_tolerance(rtol, "rtol"), check_tolerance(atol, "atol")
    t0, t1 = t_span
    y0 = np.asarray(y0)
    if t0 == t1:
        return SolveResult(np.array([t0]), y0[:, None].copy(), None, 0, 0, 0)
    options = {"rtol": rtol, "atol": atol, "max_step": max_step}
    if solver in IMPLICIT and jac is not None:
        options["jac"] = _guarded_jacobian(jac)
    t_eval = None if t_eval is None else np.asarray(t_eval, dtype=float)
    # Overflow is reported below as a clear error; numpy's warnings would only repeat it.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        run = _Run(fun, jac, (t0, t1), y0, solver, what, blowup_remedy, labels)
        try:
            return run.go(options, dense, t_eval)
        except _Replay:
            # The fast run evaluated f unguarded and failed: replay it step for step with
            # the guard on (same steps: the guard changes no value that the solver keeps),
            # so that the diagnosis sees the non-finite evaluation that explains the stop.
            replay = _Run(fun, jac, (t0, t1), y0, solver, what, blowup_remedy, labels, guard_every_call=True)
            return replay.go(options, dense, t_eval)


class _Replay(Exception):
    """A solve run without the per-evaluation guard failed: run it again guarded."""


def _final(error: SolverFailedError) -> SolverFailedError:
    """Mark a failure that a guarded replay would only repeat (a budget spent, not a value gone
    non-finite): replaying it would double the cost of every over-budget solve."""
    error._no_replay = True
    return error


class _Run:
    """One solve: the stepping loop, its budgets and, when it stops early, the diagnosis.

    The guard (:func:`guarded`) is a Python call around every evaluation of ``f``; on
    small systems it costs a tenth of a gradient.  So once the solver has evaluated
    ``f(t0, y0)`` under the guard, it calls ``f`` directly (and skips scipy's own
    ``asarray`` wrapper when ``f`` returns arrays of the state's dtype), and the accepted
    state is checked once per step.  Only when the solve fails is it replayed from the
    start with ``guard_every_call=True`` (:class:`_Replay`), so the diagnosis still sees
    the evaluation that went non-finite; the guard alters no value the solver keeps (a
    NaN stage is rejected either way), so the replay takes the same steps.
    """

    def __init__(self, fun, jac, span, y0, solver, what, blowup_remedy, labels, guard_every_call=False) -> None:
        self.fun, self.jac, self.span, self.y0 = fun, jac, span, y0
        self.solver, self.what, self.blowup_remedy, self.labels = solver, what, blowup_remedy, labels
        self.guard_every_call = guard_every_call
        self.record = Record()
        self.limits = current_limits()
        self.stepper = None
        self.stiff_before = False

    def go(self, options: dict, dense: bool, t_eval: np.ndarray | None) -> SolveResult:
        try:
            return self._go(options, dense, t_eval)
        except SolverFailedError as exc:
            if self.guard_every_call or getattr(exc, "_no_replay", False):
                raise
            raise _Replay from None

    def _probe(self, rhs: Callable) -> Callable:
        """``rhs``, noting while the solver is built whether each output is already what
        scipy's ``asarray`` wrapper would make of it."""
        dtype, shape = (np.complex128 if np.iscomplexobj(self.y0) else np.float64), np.shape(self.y0)
        self.plain: list[bool] | None = []

        def probed(t, y):
            out = rhs(t, y)
            if self.plain is not None:
                self.plain.append(type(out) is np.ndarray and out.dtype == dtype and out.shape == shape)
            return out

        return probed

    def _unguard(self, stepper) -> None:
        """Let the solver call ``f`` itself from now on, if its outputs so far needed no conversion
        (none seen yet, as with LSODA, or one that scipy converts: the guard stays)."""
        if self.plain and all(self.plain):
            stepper.fun_single = self.fun
        self.plain = None

    def _go(self, options: dict, dense: bool, t_eval: np.ndarray | None) -> SolveResult:
        t0, t1 = self.span
        rhs = guarded(self.fun, self.record)
        if not self.guard_every_call:
            rhs = self._probe(rhs)
        try:
            stepper = self.stepper = getattr(scipy.integrate, self.solver)(rhs, t0, self.y0, t1, **options)
        except _BadJacobian as bad:
            raise self._jacobian_failure(bad) from None
        if self.record.t is not None:  # the solver evaluates f(t0, h0) first: not finite there
            raise SolverFailedError(
                domain_message(f"{self.what} ({self.solver})", self.record, self.labels, at_start=True),
                t=t0,
                state=self.y0.copy(),
            )
        if not self.guard_every_call:
            self._unguard(stepper)
        direction = 1.0 if t1 >= t0 else -1.0
        ts, ys, interpolants = [t0], [self.y0], []
        kept_t, kept_y, k = [], [], 0
        while t_eval is not None and k < len(t_eval) and t_eval[k] == t0:
            kept_t.append(t0)
            kept_y.append(np.array(self.y0))
            k += 1
        max_steps, deadline, report = self.limits.max_steps, self.limits.deadline, _reporter.get()
        steps, last_report = 0, time.perf_counter()
        copy_y = self.solver == "LSODA"  # the others make a new y each step; LSODA's may be reused
        self.pace = (t0, 0)
        while stepper.status == "running":
            try:
                message = stepper.step()
            except _BadJacobian as bad:
                raise self._jacobian_failure(bad) from None
            except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:
                raise self._failure(
                    f"scipy's {self.solver} raised {type(exc).__name__}: {exc}", scipy_error=True
                ) from None
            if stepper.status == "failed":
                raise self._failure(message or "the solver failed")
            y = stepper.y
            if not cmath.isfinite(y.dot(y)) and not np.isfinite(y).all():  # y.y overflows past 1e154
                raise self._failure("the state became non-finite")
            steps += 1
            self.record.now = steps
            if t_eval is None:
                if stepper.t != ts[-1]:  # a zero-length step (LSODA) has no interpolant to keep
                    ts.append(stepper.t)
                    ys.append(y.copy() if copy_y else y)
                    if dense:
                        interpolants.append(stepper.dense_output())
            else:
                interpolant = None
                while k < len(t_eval) and (t_eval[k] - stepper.t) * direction <= 0:
                    if t_eval[k] == stepper.t:
                        kept_y.append(y.copy())
                    else:
                        interpolant = interpolant or stepper.dense_output()
                        kept_y.append(interpolant(t_eval[k]))
                    kept_t.append(t_eval[k])
                    k += 1
            if stepper.status != "running":
                break
            if steps >= max_steps:
                raise self._budget(steps, f"the step budget of {max_steps} steps (max_steps) is used up", "max_steps")
            if deadline is not None and time.perf_counter() > deadline:
                limit = self.limits.time_limit
                # never replayed (a replay would start past the deadline): report this run
                reason = f"the time limit of {limit:g} s (time_limit) is reached"
                raise _final(self._budget(steps, reason, "time_limit"))
            if steps % _PROBE == 0:
                self._check_pace(steps)
            if report is not None and steps % 32 == 0 and time.perf_counter() - last_report > PROGRESS_EVERY:
                last_report = time.perf_counter()
                report(f"{self.what} ({self.solver}): t = {stepper.t:.6g} of [{t0:.6g}, {t1:.6g}], {steps} steps")
        return self._result(ts, ys, interpolants, dense, t_eval, kept_t, kept_y, steps)

    def _result(self, ts, ys, interpolants, dense, t_eval, kept_t, kept_y, steps) -> SolveResult:
        stepper = self.stepper
        if t_eval is not None:
            y = np.array(kept_y).T if kept_y else np.zeros((len(self.y0), 0))
            return SolveResult(np.array(kept_t), y, None, int(stepper.nfev), int(stepper.njev), steps)
        sol = None
        if dense:
            try:
                sol = OdeSolution(ts, interpolants)
            except ValueError as exc:  # e.g. "ts must be strictly increasing or decreasing"
                raise self._failure(
                    f"scipy's {self.solver} returned an unusable step mesh ({exc})", scipy_error=True
                ) from None
        t = np.array(ts)
        return SolveResult(t, np.array(ys).T, sol, int(stepper.nfev), int(stepper.njev), len(t) - 1)

    # -- the budgets ----------------------------------------------------------------------
    def _check_pace(self, steps: int) -> None:
        """Stop early a solve that, at its pace so far, needs far more steps than the budget,
        or an explicit one held at its stability limit (stiff) at two probes in a row."""
        t1 = self.span[1]
        t_then, steps_then = self.pace
        t_now = self.stepper.t
        self.pace = (t_now, steps)
        if t_now == t_then:  # steps below the resolution of t (LSODA at a singularity): stalled
            raise self._failure(f"no progress in t over the last {steps - steps_then} steps")
        if steps < max(_PACE_AFTER, self.limits.max_steps // 32):
            return
        stiff = self._stiffness()
        if stiff and self.stiff_before:
            raise self._budget(
                steps, f"{stiff}; to run on with {self.solver} anyway, raise max_steps", "max_steps", cause=stiff
            )
        self.stiff_before = stiff is not None
        mean_step = abs(t_now - t_then) / (steps - steps_then)
        needed = steps + abs(t1 - t_now) / mean_step
        if needed > _PACE_FACTOR * self.limits.max_steps:
            reason = (
                f"at its pace over the last {steps - steps_then} steps (mean step {mean_step:.3g}) it needs about "
                f"{needed:.2g} steps, far more than the step budget of {self.limits.max_steps} (max_steps)"
            )
            raise self._budget(steps, reason, "max_steps")

    def _budget(self, steps: int, reason: str, limit: str, cause: str | None = None) -> SolverFailedError:
        t0, t1 = self.span
        stepper = self.stepper
        if cause is not None:  # the reason says it all
            return _final(
                SolverFailedError(
                    f"{self.what} ({self.solver}) stopped at t = {stepper.t:.6g} of [{t0:.6g}, {t1:.6g}] after "
                    f"{steps} steps (state {short(stepper.y)}): {reason} ({how_to_raise(limit)})",
                    t=float(stepper.t),
                    state=np.array(stepper.y),
                    solver_message=cause,
                )
            )
        if classify(Record(), self.y0, np.asarray(stepper.y)) == "blow-up":
            return self._failure(reason)  # replayed guarded if unguarded: the record tells where it went
        cause = self._stiffness() or (
            "it needs more steps than that: shorten the time span or loosen rtol/atol"
            if self.solver in EXPLICIT
            else "shorten the time span or loosen rtol/atol"
        )
        return _final(
            SolverFailedError(
                f"{self.what} ({self.solver}) stopped at t = {stepper.t:.6g} of [{t0:.6g}, {t1:.6g}] after {steps} "
                f"steps (state {short(stepper.y)}): {reason}; {cause}; to allow more, {how_to_raise(limit)}",
                t=float(stepper.t),
                state=np.array(stepper.y),
                solver_message=reason,
            )
        )

    # -- the diagnosis --------------------------------------------------------------------
    def _stiffness(self) -> str | None:
        if self.solver not in EXPLICIT or self.stepper is None:
            return None
        stepper = self.stepper
        rho = spectral_radius(self.fun, None, stepper.t, stepper.y)
        return stiffness(self.solver, stepper.step_size, rho)

    def _failure(self, message: str, scipy_error: bool = False) -> SolverFailedError:
        t0, t1 = self.span
        stepper, record = self.stepper, self.record
        t_end, state = float(stepper.t), np.array(stepper.y)
        kind = classify(record, self.y0, state)
        if kind == "domain":
            at_start = record.t == t0 and np.array_equal(record.y, self.y0)
            text = domain_message(f"{self.what} ({self.solver})", record, self.labels, at_start)
            return SolverFailedError(text, t=record.t, state=record.y, solver_message=message)
        if kind == "blow-up":
            remedy = self.blowup_remedy
            at = record.t if record.recent() else t_end
            shown_state = record.y if record.recent() and record.y is not None else state
            return SolverFailedError(
                f"{self.what} ({self.solver}) stopped at t = {at:.6g} of [{t0:.6g}, {t1:.6g}]: the solution grows "
                f"without bound (state {short(shown_state)}); {remedy}",
                t=at,
                state=shown_state,
                solver_message=message,
            )
        if scipy_error:
            remedy = (
                "try solver='BDF' or 'Radau'"
                if self.solver == "LSODA"
                else "try another solver (" + ", ".join(s for s in SOLVERS if s != self.solver) + ")"
            )
        else:
            remedy = self._stiffness() or (
                "the step size collapsed: the solution may blow up in finite time or have a kink or jump here "
                "(shorten the time span, or check the parameters)"
                if self.solver in EXPLICIT
                else "loosen rtol/atol or shorten the time span (the solution may blow up in finite time)"
            )
        return SolverFailedError(
            f"{self.what} ({self.solver}) stopped at t = {t_end:.6g} of [{t0:.6g}, {t1:.6g}] "
            f"(state {short(state)}): {message}; {remedy}",
            t=t_end,
            state=state,
            solver_message=message,
        )

    def _jacobian_failure(self, bad: _BadJacobian) -> SolverFailedError:
        return SolverFailedError(
            f"{self.what} ({self.solver}): the Jacobian df/dh is not finite at t = {bad.t:.6g} (state {short(bad.y)}): "
            f"{bad.detail}; an implicit solver cannot factorise it. The model is not differentiable there "
            "(sqrt or a negative power at 0): change h0, or use an explicit solver (DOP853, RK45)",
            t=bad.t,
            state=bad.y,
        )


#: Every this many steps a solve checks its pace against the step budget, once it has taken
#: at least ``_PACE_AFTER`` steps (and 1/32 of the budget); it stops when the projection
#: exceeds ``_PACE_FACTOR`` times the budget (a wide margin: step sizes may still grow, e.g.
#: after a transient), or when an explicit method is held at its stability limit twice in a
#: row: a stiff problem, which an implicit method solves in a fraction of the steps.
_PROBE = 2048
_PACE_AFTER = 4096
_PACE_FACTOR = 10


def forward(
    problem, *, solver: str = "DOP853", rtol: float = 1e-8, atol: float = 1e-10, dense: bool = True
) -> SolveResult:
    """Solve the problem's IVP from ``t0`` to ``t1``.

    ``dense=True`` keeps every step and the interpolant; ``dense=False`` keeps only the
    states at the observation times, in memory that does not grow with the steps.
    """
    k = problem.kernels
    theta = problem.theta
    fun = k.f.bind(theta)  # theta's blocks unpacked once per solve, not at every evaluation
    jac = None
    if solver in IMPLICIT:

        def jac(t, y):
            return k.state_jacobian(t, y, theta)

    t_eval = None if dense else np.asarray(problem.times, dtype=float)
    return integrate(
        fun,
        (problem.t0, problem.t1),
        problem.h0,
        solver=solver,
        rtol=rtol,
        atol=atol,
        jac=jac,
        dense=dense,
        t_eval=t_eval,
        labels=problem.system.state_names,
    )
