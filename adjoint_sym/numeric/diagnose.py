"""Why a solve stopped, in words a user can act on.

:mod:`adjoint_sym.numeric.solve` steps a scipy solver; when it stops early this module
says why, from what the solve saw:

* **domain**: the right-hand side came out NaN at a finite, moderate state (``sqrt`` or
  ``log`` of a negative value, ``0/0``), at the start or along the way;
* **blow-up**: the state or the right-hand side grew without bound;
* **stiffness**: an explicit method's step is held at its stability limit by a large
  eigenvalue of ``df/dh`` (``h |lambda|`` near the method's stability boundary), which the
  spectrum at the stopping point shows;
* **budget**: the step budget or the time limit ran out (or would, at the pace so far).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

#: ``h |lambda|`` on the negative real axis at which each explicit method turns unstable
#: (measured on ``y' = -L y``: the step size settles there whatever the tolerance).
STABILITY_BOUNDARY = {"RK23": 2.5, "RK45": 3.3, "DOP853": 6.4}

#: A step held above this fraction of the boundary is limited by stability, not accuracy.
_HELD = 0.5

#: A state this large, or this many times larger than where it started, is blowing up.
_HUGE = 1e100
_GROWTH = 1e12

STIFF_SOLVERS = "use solver='LSODA', 'BDF' or 'Radau'"


class Record:
    """The last non-finite evaluation of the right-hand side (filled by the guard).

    ``now`` is the number of accepted steps, kept current by the stepping loop, so that
    ``step`` says how recent the record is: a NaN in a trial stage the solver rejected
    long ago explains nothing about a failure now.
    """

    __slots__ = ("error", "now", "out", "step", "t", "y")

    def __init__(self) -> None:
        self.t = self.y = self.out = self.error = None
        self.step = -1
        self.now = 0

    def note(self, t: float, y: np.ndarray, out: np.ndarray | None, error: BaseException | None = None) -> None:
        y = np.array(y)
        if self.recent(0) and not np.all(np.isfinite(y)):
            return  # a later stage of the same step fed with the NaN: the first note says more
        self.t, self.y, self.out, self.error, self.step = t, y, out, error, self.now

    def recent(self, within: int = 20) -> bool:
        return self.t is not None and self.now - self.step <= within


def short(y: np.ndarray | None) -> str:
    if y is None:
        return "unknown"
    return np.array2string(np.asarray(y)[:6], precision=4) + (" ..." if np.size(y) > 6 else "")


def entries(out: np.ndarray | None, labels: Sequence[str] | None, limit: int = 4) -> str:
    """``f[x] = nan, f[y] = inf`` for the non-finite entries of ``out``."""
    if out is None:
        return ""
    out = np.asarray(out)
    bad = np.flatnonzero(~np.isfinite(out))
    names = [labels[i] if labels is not None and i < len(labels) else str(i) for i in bad[:limit]]
    text = ", ".join(f"f[{name}] = {out[i]}" for name, i in zip(names, bad[:limit]))
    return text + (f" and {bad.size - limit} more" if bad.size > limit else "")


def _huge(y: np.ndarray | None, start: float) -> bool:
    if y is None:
        return False
    y = np.asarray(y)
    if not np.all(np.isfinite(y)):
        return True
    size = float(np.max(np.abs(y))) if y.size else 0.0
    return size > _HUGE or size > _GROWTH * max(start, 1.0)


def classify(record: Record, y0: np.ndarray, y_end: np.ndarray | None) -> str | None:
    """``"domain"``, ``"blow-up"`` or None (neither explains the stop).

    A recent non-finite evaluation at a moderate state is a domain error (NaN from sqrt of
    a negative value, inf from log(0)), whatever garbage the solver then accepted; at a
    huge state it is a blow-up, as is a huge or non-finite state without such a record.
    """
    start = float(np.max(np.abs(y0))) if np.size(y0) else 0.0
    if record.recent():
        if record.error is not None or not _huge(record.y, start):
            return "domain"
        return "blow-up"
    return "blow-up" if _huge(y_end, start) else None


def domain_message(what: str, record: Record, labels: Sequence[str] | None, at_start: bool) -> str:
    where = "at the start, t = " if at_start else "at t = "
    if record.error is not None:
        detail = f"{type(record.error).__name__}: {record.error}"
    else:
        detail = entries(record.out, labels)
    remedy = (
        "an expression is evaluated outside its domain there (log or a negative power of 0, sqrt or log "
        "of a negative number, 0/0): change h0 or t0, or the model"
        if at_start
        else "an expression left its domain (sqrt or log of a negative value, a division by zero), e.g. a "
        "state crossing zero: if the exact solution reaches that edge, shorten the time span, or write the "
        "model so that it stays defined (sqrt(Max(x, 0)))"
    )
    return (
        f"{what}: the right-hand side is not finite {where}{record.t:.6g} (state {short(record.y)}): {detail}; {remedy}"
    )


def spectral_radius(fun: Callable, jac: Callable | None, t: float, y: np.ndarray) -> float | None:
    """``max |lambda|`` of ``df/dy`` at ``(t, y)``: from ``jac``, else by finite differences."""
    y = np.asarray(y, dtype=float)
    n = y.size
    try:
        with np.errstate(all="ignore"):
            if jac is not None:
                J = jac(t, y)
                J = J.toarray() if hasattr(J, "toarray") else np.asarray(J, dtype=float)
            elif n <= 100:
                f0 = np.asarray(fun(t, y), dtype=float)
                J = np.empty((n, n))
                for j in range(n):
                    step = 1.5e-8 * max(1.0, abs(y[j]))
                    e = y.copy()
                    e[j] += step
                    J[:, j] = (np.asarray(fun(t, e), dtype=float) - f0) / step
            else:
                return _power_iteration(fun, t, y)
            if not np.all(np.isfinite(J)):
                return None
            return float(np.max(np.abs(np.linalg.eigvals(J)))) if n <= 400 else _power_matrix(J)
    except (ArithmeticError, ValueError, np.linalg.LinAlgError):
        return None


def _power_iteration(fun: Callable, t: float, y: np.ndarray, iterations: int = 30) -> float | None:
    f0 = np.asarray(fun(t, y), dtype=float)
    v = np.random.default_rng(0).standard_normal(y.size)
    v /= np.linalg.norm(v)
    scale = 1.5e-8 * max(1.0, float(np.linalg.norm(y)))
    norm = 0.0
    for _ in range(iterations):
        w = (np.asarray(fun(t, y + scale * v), dtype=float) - f0) / scale
        norm = float(np.linalg.norm(w))
        if not np.isfinite(norm) or norm == 0.0:
            return None if not np.isfinite(norm) else 0.0
        v = w / norm
    return norm


def _power_matrix(J: np.ndarray, iterations: int = 50) -> float:
    v = np.random.default_rng(0).standard_normal(J.shape[0])
    norm = 0.0
    for _ in range(iterations):
        w = J @ v
        norm = float(np.linalg.norm(w))
        if norm == 0.0:
            return 0.0
        v = w / norm
    return norm


def stiffness(solver: str, h: float | None, rho: float | None) -> str | None:
    """A sentence saying the explicit method is held at its stability limit, or None."""
    boundary = STABILITY_BOUNDARY.get(solver)
    if boundary is None or h is None or rho is None or h <= 0:
        return None
    if h * rho < _HELD * boundary:
        return None
    return (
        f"the problem is stiff: an eigenvalue of df/dh of magnitude {rho:.3g} holds the step of {solver} at "
        f"h = {h:.3g}, near its stability limit (h*|lambda| = {h * rho:.3g}, the limit is about {boundary:g}); "
        + STIFF_SOLVERS
    )


__all__ = ["STABILITY_BOUNDARY", "STIFF_SOLVERS", "Record", "spectral_radius", "stiffness"]
