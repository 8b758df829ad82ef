"""Fast evaluation of a forward solve's dense output at one time after another.

The interpolating and quadrature adjoints read ``h(t)`` at every backward stage.
SciPy's ``OdeSolution.__call__`` costs about 10 us per scalar call (a search, input
checks, and for DOP853 a seven-step Python loop), more than the kernels themselves on
small systems.  Here each explicit Runge-Kutta step's interpolant is converted once
into monomial coefficients in ``x = (t - t_old)/h``, and the segment is found by a
cursor that follows the monotone backward sweep, so one evaluation is a power vector
and a small matrix product.  Interpolants of other kinds (LSODA, BDF, Radau) are
called as they are.
"""

from __future__ import annotations

import bisect

import numpy as np
from scipy.integrate import OdeSolution
from scipy.integrate._ivp.rk import Dop853DenseOutput, RkDenseOutput


def _monomial(interpolant) -> np.ndarray | None:
    """Coefficients ``C`` (degree+1, n) with ``y = sum_j C[j] x**j``, or None."""
    if isinstance(interpolant, RkDenseOutput):
        q = interpolant.Q  # y = y_old + h Q [x, x^2, ...]
        coeffs = np.empty((q.shape[1] + 1, q.shape[0]), dtype=q.dtype)
        coeffs[0] = interpolant.y_old
        coeffs[1:] = interpolant.h * q.T
        return coeffs
    if isinstance(interpolant, Dop853DenseOutput):
        coeffs = _DOP853_TO_MONOMIAL[:, : len(interpolant.F)] @ interpolant.F
        coeffs[0] += interpolant.y_old
        return coeffs
    return None


def _dop853_to_monomial(stages: int = 7) -> np.ndarray:
    """``M`` with monomial coefficients ``M @ F`` of DOP853's nested dense output.

    SciPy evaluates ``y = y_old + (((F6 x + F5)(1 - x) + F4) x + ...)``; the coefficients
    are linear in ``F``, so running that recursion once on unit rows gives the map.
    """
    columns = []
    for k in range(stages):
        unit = np.zeros(stages)
        unit[k] = 1.0
        poly = np.zeros(1)
        for i, f in enumerate(reversed(unit)):
            poly = poly.copy()
            poly[0] += f
            poly = np.convolve(poly, [0.0, 1.0] if i % 2 == 0 else [1.0, -1.0])  # times x or (1 - x)
        columns.append(poly)
    return np.stack(columns, axis=1)


_DOP853_TO_MONOMIAL = _dop853_to_monomial()


class DenseState:
    """``h(t)`` from an ``OdeSolution``, fast for sweeps in one direction.

    ``size`` keeps the first ``size`` components only (a solve of ``[h, q]`` read as ``h``).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.integrate import solve_ivp
    >>> sol = solve_ivp(lambda t, y: -y, (0, 1), [1.0], method="DOP853", dense_output=True).sol
    >>> bool(np.allclose(DenseState(sol)(0.37), sol(0.37), rtol=1e-14, atol=0))
    True
    """

    def __init__(self, sol: OdeSolution, size: int | None = None) -> None:
        self.sol = sol
        self.size = size
        interpolants = sol.interpolants if sol.ascending else sol.interpolants[::-1]
        self.breaks = [float(t) for t in sol.ts_sorted]
        self.lows = np.asarray(sol.ts_sorted[:-1], dtype=float)
        self.coeffs = [c if c is None or size is None else c[:, :size] for c in map(_monomial, interpolants)]
        self.powers = {len(c): np.arange(len(c)) for c in self.coeffs if c is not None}
        self.t_old = [float(i.t_old) for i in interpolants]
        self.h = [float(i.t - i.t_old) for i in interpolants]
        self.interpolants = interpolants
        self.last = len(interpolants) - 1
        self.cursor = self.last

    def _segment(self, t: float) -> int:
        k = self.cursor
        if self.breaks[k] <= t <= self.breaks[k + 1]:
            return k
        k = min(max(bisect.bisect_right(self.breaks, t) - 1, 0), self.last)
        self.cursor = k
        return k

    def __call__(self, t: float) -> np.ndarray:
        k = self._segment(t)
        coeffs = self.coeffs[k]
        if coeffs is None:
            out = self.interpolants[k](t)
            return out if self.size is None else out[: self.size]
        x = (t - self.t_old[k]) / self.h[k]
        return x ** self.powers[len(coeffs)] @ coeffs
