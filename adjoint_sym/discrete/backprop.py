"""Direct backpropagation through an explicit Runge-Kutta solve (discretize-then-optimize).

The forward map is an explicit Runge-Kutta scheme ``(A, b, c)`` on a fixed grid: per
segment ``[a, e]`` between observation times, fractions ``0 = s_0 < ... < s_K = 1`` give
``t_k = a + s_k (e - a)``, ``dt_k = (s_{k+1} - s_k)(e - a)`` and

    Y_j = y_k + dt_k sum_{l<j} A_jl K_l,   K_j = f(t_k + c_j dt_k, Y_j, theta),
    y_{k+1} = y_k + dt_k sum_j b_j K_j.

:func:`backprop_gradient` propagates the discrete adjoint back through every stage with
the vector-Jacobian products ``[a^T f_h, a^T f_theta, a^T f_t]`` of
:mod:`adjoint_sym.numeric.kernels`.  The result is the exact gradient of the discrete
computation, ``t0`` and the observation times entering through the grid (the fractions
``s_k`` stay fixed): it equals complex-step applied to :func:`discrete_loss` to rounding,
and tends to the continuous gradient as the steps shrink (the source note's "direct
backprop").

A running cost ``int g dt`` is discretized with the state: the scheme integrates the
augmented ``[h, q]`` with ``q' = g`` (``q(t0) = 0``) on the same grid, ``L = Phi + q(t_N)``,
and the stage products gain ``c_q [g_h, g_theta, g_t]`` (SymPy's entry-wise derivatives of
``g``, :func:`~adjoint_sym.reference.loss_derivative.expression_partials`).

Grids: ``steps=N`` gives ``N`` equal steps (shared among segments in proportion to their
length); ``steps=None`` records the steps of an adaptive ``solve_ivp`` run of the same
scheme at ``rtol``/``atol`` (``"RK23"``, ``"RK45"`` = Dormand-Prince 5(4), ``"DOP853"``),
so the discrete gradient is accurate to about the solver tolerance.
"""

from __future__ import annotations

import itertools
import time as _time
from dataclasses import dataclass

import numpy as np
from scipy.integrate import DOP853, RK23, RK45

from ..errors import InvalidModelError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import EXPLICIT, integrate
from ..reference.finite_difference import gradient_from_vector, input_vector, split_inputs
from ..reference.loss_derivative import expression_partials


@dataclass(frozen=True, eq=False)
class Tableau:
    """An explicit Runge-Kutta scheme: ``A`` (s, s) strictly lower triangular, ``b``, ``c``."""

    name: str
    A: np.ndarray
    b: np.ndarray
    c: np.ndarray
    order: int
    adaptive: bool = False

    @property
    def stages(self) -> int:
        return len(self.b)


def _scipy_tableau(name: str, cls, order: int) -> Tableau:
    s = cls.n_stages
    A = np.zeros((s, s))
    A[:, : cls.A.shape[1]] = cls.A[:s]
    return Tableau(name, A, np.asarray(cls.B[:s], float), np.asarray(cls.C[:s], float), order, adaptive=True)


_RK4 = Tableau(
    "rk4",
    np.array([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1.0, 0]]),
    np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    np.array([0, 0.5, 0.5, 1.0]),
    4,
)

#: Schemes by name; the adaptive ones are scipy's own tableaus.
TABLEAUS: dict[str, Tableau] = {
    "euler": Tableau("euler", np.zeros((1, 1)), np.ones(1), np.zeros(1), 1),
    "rk4": _RK4,
    "RK23": _scipy_tableau("RK23", RK23, 3),
    "RK45": _scipy_tableau("RK45", RK45, 5),
    "DOP853": _scipy_tableau("DOP853", DOP853, 8),
}
TABLEAUS["dopri5"] = TABLEAUS["RK45"]


def tableau(scheme: str) -> Tableau:
    if scheme not in TABLEAUS:
        raise InvalidModelError(f"unknown scheme {scheme!r}; choose one of {', '.join(TABLEAUS)}")
    return TABLEAUS[scheme]


def make_grids(
    problem: Problem,
    scheme: Tableau,
    steps: int | None,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> list[np.ndarray]:
    """Step fractions ``s_k`` in [0, 1] of each segment ``[t_{i-1}, t_i]`` (``t_{-1} = t0``).

    ``steps=N``: ``N`` equal steps in all, each segment getting at least one.
    ``steps=None``: the steps an adaptive ``solve_ivp`` run of ``scheme`` takes.
    A segment of length zero (an observation at ``t0``) gets one step of length zero,
    so that moving its ends still moves the state, by ``f`` per unit time, as in the
    continuous problem.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, ObservationLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 2.0, ObservationLoss([0.5, 2.0], expr="x"))
    >>> [g.tolist() for g in make_grids(prob, tableau("rk4"), 4)]
    [[0.0, 1.0], [0.0, 0.3333333333333333, 0.6666666666666666, 1.0]]
    """
    bounds = np.concatenate([[problem.t0], problem.times])
    lengths = np.diff(bounds)
    if steps is None:
        if not scheme.adaptive:
            raise InvalidModelError(
                f"scheme {scheme.name!r} has no error estimate to choose steps; pass steps=N "
                f"or use an adaptive scheme ({', '.join(EXPLICIT)})"
            )
        return _recorded_grids(problem, scheme.name, bounds, rtol, atol)
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise InvalidModelError(f"steps must be a positive integer (or None for adaptive steps), got {steps!r}")
    total = float(np.sum(np.abs(lengths)))
    grids = []
    for length in lengths:
        count = max(1, round(steps * abs(length) / total)) if total else 1
        grids.append(np.linspace(0.0, 1.0, count + 1))
    return grids


def _recorded_grids(problem: Problem, solver: str, bounds: np.ndarray, rtol: float, atol: float) -> list[np.ndarray]:
    f = problem.kernels.f.fn
    theta = problem.theta

    def fun(t, y):
        return f(t, y, theta)

    grids, y = [], problem.h0
    for a, e in itertools.pairwise(bounds):
        if a == e:
            grids.append(np.array([0.0, 1.0]))  # one step of length 0: carries d/d(t_i) = f
            continue
        res = integrate(fun, (a, e), y, solver=solver, rtol=rtol, atol=atol, dense=False, what="recorded solve")
        s = (res.t - a) / (e - a)
        s[0], s[-1] = 0.0, 1.0
        grids.append(s)
        y = res.y[:, -1]
    return grids


@dataclass
class _Step:
    t: object
    dt: object
    y: np.ndarray
    Y: list
    K: list


def _dynamics(problem: Problem):
    """``(rate, products, size)``: ``f`` (with ``g`` appended under a running cost), its stage
    products ``[c^T rate_y, c^T rate_theta, c^T rate_t]`` and the discrete state's size."""
    f, products, n = problem.kernels.f.fn, _stage_products(problem), problem.system.n
    if problem.running_cost is None:
        return f, products, n
    g, partials = problem.running_value, expression_partials(problem.system, problem.running_cost).fn

    def rate(t, y, theta):
        return np.concatenate([f(t, y[:n], theta), [g(t, y[:n], theta)]])

    def augmented(t, y, c, theta):
        out = products(t, y[:n], c[:n], theta) + c[n] * partials(t, y[:n], theta)
        return np.concatenate([out[:n], [0.0], out[n:]])  # nothing depends on q

    return rate, augmented, n + 1


def _forward(problem: Problem, scheme: Tableau, grids, h0, theta, t0, times, record: bool):
    f, _, size = _dynamics(problem)
    A, b, c = scheme.A, scheme.b, scheme.c
    y = np.asarray(h0)
    if size > len(y):  # the running cost's quadrature state starts at 0
        y = np.concatenate([y, np.zeros(size - len(y), dtype=y.dtype)])
    states = np.empty((len(times), len(y)), dtype=np.result_type(y, theta, t0, times, float))
    tape: list[list[_Step]] = []
    start = t0
    for i, (end, s) in enumerate(zip(times, grids)):
        length = end - start
        seg: list[_Step] = []
        for k in range(len(s) - 1):
            tk, dt = start + s[k] * length, (s[k + 1] - s[k]) * length
            Ys, Ks = [], []
            for j in range(scheme.stages):
                Yj = y
                for l in range(j):
                    if A[j, l] != 0:
                        Yj = Yj + dt * A[j, l] * Ks[l]
                Ys.append(Yj)
                Ks.append(f(tk + c[j] * dt, Yj, theta))
            if record:
                seg.append(_Step(tk, dt, y, Ys, Ks))
            y = y + dt * sum(b[j] * Ks[j] for j in range(scheme.stages) if b[j] != 0)
        tape.append(seg)
        states[i] = y
        start = end
    return states, tape


def discrete_loss(problem: Problem, x: np.ndarray, *, scheme: str = "rk4", grids: list[np.ndarray]):
    """The loss of the discrete solve on ``grids`` at inputs ``x`` (real or complex).

    ``x`` is laid out as :func:`~adjoint_sym.reference.finite_difference.input_vector`;
    complex ``x`` lets a test complex-step the discrete computation itself.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> float(discrete_loss(prob, input_vector(prob), scheme="euler", grids=[np.array([0.0, 0.5, 1.0])]))
    0.5625
    """
    h0, theta, t0, times = split_inputs(problem, np.asarray(x))
    states, _ = _forward(problem, tableau(scheme), grids, h0, theta, t0, times, record=False)
    n = problem.system.n
    integral = states[-1, n] if problem.running_cost is not None else 0.0
    return problem.evaluate_loss(states[:, :n], theta=theta, times=times).value + integral


def backprop_gradient(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    scheme: str | None = None,
    steps: int | None = None,
) -> Gradient:
    """The exact gradient of a discrete Runge-Kutta solve (see the module docstring).

    Parameters
    ----------
    problem : Problem
    solver : str
        Default scheme when ``scheme`` is not given (an implicit solver maps to DOP853).
    rtol, atol : float
        Tolerances of the adaptive run that records the steps (``steps=None``).
    scheme : {"euler", "rk4", "RK23", "RK45", "dopri5", "DOP853"}, optional
    steps : int, optional
        Number of equal steps; ``None`` records adaptive steps.

    Returns
    -------
    Gradient
        ``stats["steps"]`` is the number of steps taken; ``stats["fixed_steps"]`` marks
        a fixed grid (its error follows the step size, not ``rtol``).

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> g = backprop_gradient(prob, scheme="euler", steps=1)  # L = (1 - k)^2
    >>> g.loss, g.dparams["k"]
    (0.25, -1.0)
    """
    started = _time.perf_counter()
    name = scheme or (solver if solver in EXPLICIT else "DOP853")
    tab = tableau(name)
    grids = make_grids(problem, tab, steps, rtol=rtol, atol=atol)
    states, tape = _forward(problem, tab, grids, problem.h0, problem.theta, problem.t0, problem.times, record=True)
    n = problem.system.n
    loss = problem.evaluate_loss(states[:, :n])
    jumps = np.zeros(states.shape)  # dL/d(discrete state) at each observation
    jumps[:, :n] = loss.d_states
    value = loss.value
    if problem.running_cost is not None:
        jumps[-1, n] = 1.0  # L = Phi + q(t_N)
        value += states[-1, n]
    g = _reverse(problem, tab, grids, tape, loss, jumps)
    stats = {
        "scheme": tab.name,
        "steps": sum(len(s) - 1 for s in grids),
        "nfev_forward": tab.stages * sum(len(s) - 1 for s in grids),
        "solver": solver,
        "wall_time": _time.perf_counter() - started,
    }
    if steps is None:
        stats["accuracy"] = rtol  # adaptive steps: the discrete gradient is as accurate as the solve
    else:
        stats["fixed_steps"] = True  # accuracy set by the step, not by rtol
    return gradient_from_vector(problem, value, g, "backprop", stats)


def _reverse(problem: Problem, scheme: Tableau, grids, tape, loss, jumps: np.ndarray) -> np.ndarray:
    """The discrete adjoint: cotangents of every stage, last step first (``jumps``: dL/dy(t_i))."""
    _, vjp, n = _dynamics(problem)
    p = problem.system.n_params
    A, b, c = scheme.A, scheme.b, scheme.c
    theta, times = problem.theta, problem.times
    y_bar = np.zeros(n)
    theta_bar = loss.d_theta.astype(float).copy()
    time_bar = np.asarray(loss.d_times, dtype=float).copy()  # cotangents of t_0 .. t_N ...
    t0_bar = 0.0
    for i in range(len(times) - 1, -1, -1):
        y_bar = y_bar + jumps[i]
        start_bar, length_bar = 0.0, 0.0
        s = grids[i]
        for k in range(len(tape[i]) - 1, -1, -1):
            step = tape[i][k]
            dt = step.dt
            K_bar = [dt * b[j] * y_bar for j in range(scheme.stages)]
            dt_bar = sum(b[j] * (step.K[j] @ y_bar) for j in range(scheme.stages))
            tk_bar = 0.0
            y_prev_bar = y_bar.copy()
            for j in range(scheme.stages - 1, -1, -1):
                if not np.any(K_bar[j]):
                    continue
                out = vjp(step.t + c[j] * dt, step.Y[j], K_bar[j], theta)
                Y_bar, th_bar, T_bar = out[:n], out[n : n + p], out[n + p]
                theta_bar += th_bar
                tk_bar += T_bar
                dt_bar += c[j] * T_bar
                y_prev_bar += Y_bar
                for l in range(j):
                    if A[j, l] != 0:
                        K_bar[l] = K_bar[l] + dt * A[j, l] * Y_bar
                        dt_bar += A[j, l] * (step.K[l] @ Y_bar)
            y_bar = y_prev_bar
            # t_k = start + s_k L and dt_k = (s_{k+1} - s_k) L with L = end - start
            start_bar += tk_bar
            length_bar += s[k] * tk_bar + (s[k + 1] - s[k]) * dt_bar
        time_bar[i] += length_bar
        if i > 0:
            time_bar[i - 1] += start_bar - length_bar
        else:
            t0_bar = start_bar - length_bar
    return np.concatenate([y_bar[: problem.system.n], theta_bar, [t0_bar], time_bar])


def _stage_products(problem: Problem):
    """``[c^T f_h, c^T f_theta, c^T f_t]`` at a stage, from the entry-wise Jacobians.

    Backprop differentiates each stage with the numeric layer's own Jacobians, never
    with the adjoint's vector-Jacobian product, so an error in that product cannot
    make the two routes agree.
    """
    k = problem.kernels
    jac_h, jac_theta, f_t = k.jac_h.fn, k.jac_theta.fn, k.f_t.fn

    def products(t, y, c, theta):
        return np.concatenate([c @ jac_h(t, y, theta), c @ jac_theta(t, y, theta), [c @ f_t(t, y, theta)]])

    return products


def complex_step_discrete(problem: Problem, *, scheme: str, grids: list[np.ndarray], step: float = 1e-30) -> np.ndarray:
    """``dL/dx`` of :func:`discrete_loss` by the complex step: the check of :func:`backprop_gradient`.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> grids = make_grids(prob, tableau("euler"), 2)
    >>> complex_step_discrete(prob, scheme="euler", grids=grids)  # x1 = (1 - k/2)^2
    array([ 0.5625, -0.75  ,  0.375 , -0.375 ])
    """
    x = input_vector(problem)
    g = np.empty(len(x))
    for j in range(len(x)):
        xc = x.astype(complex)
        xc[j] += 1j * step
        g[j] = np.imag(discrete_loss(problem, xc, scheme=scheme, grids=grids)) / step
    return g


__all__ = [
    "TABLEAUS",
    "Tableau",
    "backprop_gradient",
    "complex_step_discrete",
    "discrete_loss",
    "make_grids",
    "tableau",
]
