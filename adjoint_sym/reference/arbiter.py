"""The arbiter: forward sensitivities by high-precision Taylor series, for small problems.

Every other reference rides a double-precision solver and its step control, so on a hard
problem they can all be wrong together (they were: complex step and backprop agreed on
16893 for ``e^10``).  The arbiter does not: it integrates the state and the sensitivity
matrix ``S = dh/d(h0, theta, t0)`` of :mod:`adjoint_sym.reference.forward`,

    dh/dt = f,   dS/dt = f_h S + [0 | f_theta | 0],   S(t0) = [I | 0 | -f(h0, t0)],

by the Taylor-series method in ``mpmath`` at ``digits`` significant digits (30 by
default).  At each step the Taylor coefficients of ``[h, S]`` up to ``order`` are computed
exactly (to the working precision) by Taylor-mode differentiation of the symbolic
right-hand side (:mod:`adjoint_sym.reference.jets`), and the step is the radius at which
the last two terms fall below ``tolerance`` times the size of ``[h, S]``:

    step = 0.5 min_{k = K-1, K} (tolerance * max(1, |z_0|) / |z_k|)^(1/k)

(Jorba & Zou, Experimental Mathematics 14 (2005)): the sensitivities are in that norm, so
a trajectory at rest (an equilibrium, a zero state) is stepped by the growth of its
tangent.  The loss's derivatives are SymPy's, evaluated in the same precision.  A running cost
``int g dt`` is one more state ``q' = g`` with its sensitivity row ``s_q' = g_h S + [0 |
g_theta | 0]``, ``s_q(t0) = [0 | 0 | -g(h0, t0)]``, expanded with the rest.  The claim
``stats["accuracy"]`` is ``max(1e-15, 10 * steps * tolerance * growth)``: the rounding of
the result to double, or the accumulated truncation amplified by the flow, whichever is
larger.  With the defaults that is 1e-15, far below any double-precision reference.

Where it does not apply
-----------------------
Cost grows like ``order^2`` times the size of the expression tree per step, in pure
Python, so the arbiter refuses with :class:`InvalidModelError` more than
``MAX_STATES`` states or ``MAX_COMPONENTS`` entries of ``[h, S]``, and stops with
:class:`SolverFailedError` after ``max_steps`` steps (a stiff problem, or one whose
solution has complex singularities near the real axis, needs tiny Taylor steps).
Non-analytic functions (``Abs``, ``Max`` ...) and a real power or ``log`` of a state that
reaches 0 have no Taylor series there and are refused by name, as is a
:class:`CallableLoss` (no symbolic expression to expand).  It is not registered in
:data:`adjoint_sym.reference.REFERENCES`: at seconds per small problem it certifies the
other references in the test suite rather than serving every check.
"""

from __future__ import annotations

import time as _time

import mpmath
import numpy as np
import sympy as sp
from mpmath import mp

from ..errors import InvalidModelError, SolverFailedError, UnsupportedExpressionError
from ..numeric.loss import CallableLoss
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from .complex_step import non_analytic_functions
from .inputs import gradient_from_vector
from .jets import Jet

#: Bounds on the cost of one arbiter run (see the module docstring).
MAX_STATES = 6
MAX_COMPONENTS = 160
MAX_ORDER = 40
MAX_DIGITS = 60
MAX_STEPS = 4000
#: The fraction of the estimated radius taken as the step.
SAFETY = 0.5


def arbiter_gradient(
    problem: Problem,
    *,
    solver: str | None = None,
    rtol: float | None = None,
    atol: float | None = None,
    digits: int = 30,
    order: int = 24,
    tolerance: float = 1e-20,
    max_steps: int = MAX_STEPS,
) -> Gradient:
    """Every derivative by high-precision Taylor-series forward sensitivities.

    Parameters
    ----------
    problem : Problem
        Small: at most ``MAX_STATES`` states and ``MAX_COMPONENTS`` entries of ``[h, S]``.
    solver, rtol, atol
        Accepted for the common signature of the references and ignored: the arbiter
        has no double-precision solver.
    digits : int
        Working precision (significant decimal digits), at most ``MAX_DIGITS``.
    order : int
        Taylor order per step, 4 to ``MAX_ORDER``.
    tolerance : float
        Local truncation error per step, relative to the size of ``[h, S]``; at least
        ``10^(5 - digits)`` so that rounding stays below it.
    max_steps : int
        Stop with :class:`SolverFailedError` beyond this many steps.

    Returns
    -------
    Gradient
        ``method == "arbiter"``; ``stats`` has ``steps``, ``order``, ``digits``,
        ``growth`` (``max_i ||dh(t_i)/dh0||_2``) and ``accuracy``.

    Raises
    ------
    InvalidModelError
        For a problem beyond the bounds, options out of range, a :class:`CallableLoss`,
        or a pole or branch point on the trajectory (``1/x``, ``sqrt(x)``, ``log(x)`` at 0).
    UnsupportedExpressionError
        For a function without a Taylor expansion here (``Abs``, ``Max`` ...).
    SolverFailedError
        After ``max_steps`` steps.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], [], "t", ["x"])
    >>> g = arbiter_gradient(Problem(sys, [0.0], {}, 0.0, 10.0, FinalLoss("x")))
    >>> float(g.dh0[0]) == float(mpmath.exp(10)), g.stats["steps"] < 50  # e^10, to the last bit
    (True, True)
    """
    _check_bounds(problem, digits, order, tolerance, max_steps)
    started = _time.perf_counter()
    with mp.workdps(digits):
        expansion = _Expansion(problem, order, mp.mpf(tolerance), max_steps)
        g, loss, growth = expansion.gradient()
    stats = {
        "steps": expansion.steps,
        "order": order,
        "digits": digits,
        "tolerance": tolerance,
        "growth": growth,
        "accuracy": max(1e-15, 10 * expansion.steps * tolerance * growth),
        "wall_time": _time.perf_counter() - started,
    }
    return gradient_from_vector(problem, loss, g, "arbiter", stats)


def _check_bounds(problem: Problem, digits: int, order: int, tolerance: float, max_steps: int) -> None:
    system = problem.system
    n, p = system.n, system.n_params
    components = (n + (problem.running_cost is not None)) * (n + p + 2)
    if isinstance(problem.point_loss, CallableLoss):
        raise InvalidModelError("the arbiter expands symbolic losses only; a CallableLoss has no expression")
    bad = non_analytic_functions(problem)
    if bad:
        names = "; ".join(f"{fn} in {where}" for where, fn in bad)
        raise UnsupportedExpressionError(
            f"the arbiter expands real-analytic functions only, but the problem uses {names}; use 'forward' or "
            "'finite-difference'"
        )
    if n > MAX_STATES or components > MAX_COMPONENTS:
        raise InvalidModelError(
            f"the arbiter is for small problems: {n} states and {p} parameters make {components} entries of "
            f"[h, S] (at most {MAX_STATES} states and {MAX_COMPONENTS} entries); use 'forward' or 'complex-step'"
        )
    if not 4 <= order <= MAX_ORDER:
        raise InvalidModelError(f"arbiter order must be between 4 and {MAX_ORDER}, got {order}")
    if not 20 <= digits <= MAX_DIGITS:
        raise InvalidModelError(f"arbiter digits must be between 20 and {MAX_DIGITS}, got {digits}")
    if not 10.0 ** (5 - digits) <= tolerance < 1e-12:
        raise InvalidModelError(
            f"arbiter tolerance must lie in [1e{5 - digits}, 1e-12) for {digits} digits, got {tolerance}"
        )
    if not 1 <= max_steps <= 100 * MAX_STEPS:
        raise InvalidModelError(f"arbiter max_steps must be between 1 and {100 * MAX_STEPS}, got {max_steps}")


class _Expansion:
    """The Taylor jets of ``[h, S]`` and of the loss terms, and the stepping loop."""

    def __init__(self, problem: Problem, order: int, tolerance, max_steps: int) -> None:
        self.problem = problem
        self.order, self.tolerance, self.max_steps = order, tolerance, max_steps
        self.steps = 0
        system = problem.system
        n, p = system.n, system.n_params
        self.n, self.p, self.m = n, p, n + p + 1
        theta = [mp.mpf(float(v)) for v in problem.theta]
        self.constants = dict(zip(system.flat_params, theta))
        # Columns scaled as in the forward reference: every column has the size of the state.
        self.col = [mp.one] * n + [max(abs(v), mp.one) for v in theta] + [max(abs(mp.mpf(problem.t0)), mp.one)]
        rhs = list(system.explicit_rhs)
        J, F = system.jacobian_h, system.jacobian_theta
        S = [[sp.Dummy(f"s{i}_{c}") for c in range(self.m)] for i in range(n)]
        dS = []
        for i in range(n):
            for c in range(self.m):
                terms = [J[i, k] * S[k][c] for k in range(n) if J[i, k] != 0]
                if n <= c < n + p and F[i, c - n] != 0:
                    terms.append(F[i, c - n] * sp.Float(self.col[c], mp.dps))
                dS.append(sp.Add(*terms))
        self.variables = [system.t, *system.flat_state, *[s for row in S for s in row]]
        outputs = [*rhs, *dS]
        self.cost = problem.running_cost
        if self.cost is not None:  # q' = g and s_q' = g_h S + [0 | g_theta | 0] after [h, S]
            g_h = [self.cost.diff(x) for x in system.flat_state]
            g_theta = [self.cost.diff(q) for q in system.flat_params]
            outputs.append(self.cost)
            for c in range(self.m):
                terms = [g_h[k] * S[k][c] for k in range(n) if g_h[k] != 0]
                if n <= c < n + p and g_theta[c - n] != 0:
                    terms.append(g_theta[c - n] * sp.Float(self.col[c], mp.dps))
                outputs.append(sp.Add(*terms))
            self.variables += [sp.Dummy("q"), *[sp.Dummy(f"sq_{c}") for c in range(self.m)]]
            self.cost_jet = Jet([self.cost], [system.t, *system.flat_state], self.constants)
        self.flow_jet = Jet(outputs, self.variables, self.constants)
        self.rhs_jet = Jet(rhs, [system.t, *system.flat_state], self.constants)
        self._loss_jets: dict = {}

    # -- integration ----------------------------------------------------------------------
    def flow(self, z: list, start, end) -> list:
        t = start
        while t != end:
            self.steps += 1
            if self.steps > self.max_steps:
                raise SolverFailedError(
                    f"arbiter: more than {self.max_steps} Taylor steps before t = {float(end):.6g} (reached "
                    f"{float(t):.6g}); the problem is stiff or its solution has nearby complex singularities: "
                    "use 'forward' with solver='Radau', or raise max_steps",
                    t=float(t),
                )
            z, t = self._step(z, t, end)
        return z

    def _step(self, z: list, t, end) -> tuple[list, object]:
        K, jet = self.order, self.flow_jet
        jet.start([t, *z])
        clock, state = jet.variables[0], jet.variables[1:]
        clock.c = [t, mp.one] + [mp.zero] * K
        for k in range(K):
            jet.order(k)
            for v, out in zip(state, jet.outputs):
                v.c.append(out.at(k) / (k + 1))
        size = max(mp.one, max(abs(x) for x in z))
        radius = mp.inf
        for k in (K - 1, K):
            top = max(abs(v.c[k]) for v in state)
            if top > 0:
                radius = min(radius, mpmath.root(self.tolerance * size / top, k))
        remaining = end - t
        h = remaining if SAFETY * radius >= abs(remaining) else mpmath.sign(remaining) * SAFETY * radius
        new = [mpmath.polyval(v.c[K::-1], h) for v in state]
        return new, (end if h == remaining else t + h)

    # -- the gradient -------------------------------------------------------------------
    def gradient(self) -> tuple[np.ndarray, float, float]:
        prob, n, p, m = self.problem, self.n, self.p, self.m
        h0 = [mp.mpf(float(v)) for v in prob.h0]
        t0 = mp.mpf(float(prob.t0))
        f0 = self._rhs(t0, h0)
        S0 = [[(mp.one if c == i else mp.zero) for c in range(m)] for i in range(n)]
        for i in range(n):
            S0[i][m - 1] = -f0[i] * self.col[m - 1]
        z = h0 + [s for row in S0 for s in row]
        size = len(z)
        if self.cost is not None:  # q(t0) = 0; s_q(t0) = [0 | 0 | -g(h0, t0)] (scaled like S)
            z += [mp.zero] * m + [-self._value(self.cost_jet, t0, h0) * self.col[m - 1]]
        exprs = prob.point_loss.expressions(prob.system, len(prob.times))
        g = [mp.zero] * m
        dtimes, loss, growth, start = [], mp.zero, mp.one, t0
        for i, ti in enumerate(prob.times):
            t = mp.mpf(float(ti))
            z = self.flow(z, start, t)
            start = t
            h = z[:n]
            S = [[z[n + r * m + c] / self.col[c] for c in range(m)] for r in range(n)]
            value, d_h, d_theta, d_t = self._loss(exprs[i], t, h)
            loss += value
            for c in range(m):
                g[c] += mpmath.fsum(d_h[r] * S[r][c] for r in range(n))
            for j in range(p):
                g[n + j] += d_theta[j]
            f = self._rhs(t, h)
            dtimes.append(mpmath.fsum(d_h[r] * f[r] for r in range(n)) + d_t)
            growth = max(growth, float(np.linalg.norm(np.array([[float(s) for s in row[:n]] for row in S]), 2)))
        if self.cost is not None:  # the integral, its sensitivities, and its growth with t_N = t1
            loss += z[size]
            for c in range(m):
                g[c] += z[size + 1 + c] / self.col[c]
            dtimes[-1] += self._value(self.cost_jet, start, z[:n])
        vector = np.array([float(v) for v in g + dtimes])
        return vector, float(loss), float(growth)

    def _rhs(self, t, h) -> list:
        jet = self.rhs_jet
        jet.start([t, *h])
        jet.order(0)
        return [out.at(0) for out in jet.outputs]

    @staticmethod
    def _value(jet: Jet, t, h):
        jet.start([t, *h])
        jet.order(0)
        return jet.outputs[0].at(0)

    def _loss(self, expr: sp.Basic, t, h):
        system = self.problem.system
        if expr not in self._loss_jets:
            wrt = [*system.flat_state, *system.flat_params, system.t]
            outputs = [expr, *[expr.diff(v) for v in wrt]]
            self._loss_jets[expr] = Jet(outputs, [system.t, *system.flat_state], self.constants)
        jet = self._loss_jets[expr]
        jet.start([t, *h])
        jet.order(0)
        out = [o.at(0) for o in jet.outputs]
        n, p = self.n, self.p
        return out[0], out[1 : 1 + n], out[1 + n : 1 + n + p], out[1 + n + p]


__all__ = ["MAX_COMPONENTS", "MAX_DIGITS", "MAX_ORDER", "MAX_STATES", "MAX_STEPS", "arbiter_gradient"]
