"""Forward sensitivities: the tangent-linear equations integrated with the state.

With ``S = dh/d(h0, theta, t0)`` (shape ``n x (n + p + 1)``),

    dS/dt = f_h S + [0 | f_theta | 0],      S(t0) = [I | 0 | -f(h0, t0)],

the last column being the sensitivity to ``t0`` with ``h0`` held fixed (the initial
value is imposed at the moved time, so ``h(t0 + d) = h0`` gives ``S_t0(t0) = -f``).
The loss then follows by the chain rule at each observation time ``t_i``:

    dL/dx = sum_i dL/dh(t_i) S(t_i) + explicit terms,
    dL/dt_i = dL/dh(t_i) . f(h(t_i), t_i) + dL/dt_i|explicit.

The Jacobians come from the numeric layer's own derivations
(:mod:`adjoint_sym.numeric.kernels`), never from the vector-Jacobian products the adjoint
uses: ``f_h S`` entry-wise for scalar systems and as one batched forward-mode JVP at
matrix level, ``f_theta`` entry-wise.  The loss's partial derivatives come from
:mod:`adjoint_sym.reference.loss_derivative` (the complex step of the loss value), not
from the loss-gradient kernel the adjoint reads.  The result is exact up to the solver
tolerance, and the natural reference when ``p`` is small (the cost grows like
``n (n + p)``).  ``stats["accuracy"]`` claims ``rtol``: the joint solve controls ``S``
(columns scaled to the size of the state) in the same norm as ``h``.

A running cost ``int_{t0}^{t1} g dt`` joins as the quadrature state ``q`` and its
sensitivity row ``s_q = dq/d(h0, theta, t0)`` (:func:`with_running_cost`):

    dq/dt = g,   ds_q/dt = g_h S + [0 | g_theta | 0],   q(t0) = 0,   s_q(t0) = [0 | 0 | -g(h0, t0)],

so ``dL/dx`` gains ``s_q(t_N)``, ``L`` gains ``q(t_N)`` and ``dL/dt_N`` gains ``g(h(t_N), t_N)``.
``g_h`` and ``g_theta`` are SymPy's derivatives of ``g`` entry by entry
(:func:`~adjoint_sym.reference.loss_derivative.expression_partials`), not the adjoint's.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable

import numpy as np

from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import IMPLICIT, check_solver, integrate
from .inputs import gradient_from_vector
from .loss_derivative import expression_partials, loss_partials


def forward_gradient(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
) -> Gradient:
    """Every derivative by forward sensitivities (see the module docstring).

    Parameters
    ----------
    problem : Problem
    solver : str
        A ``solve_ivp`` method; implicit ones get the block-diagonal Jacobian.
    rtol, atol : float
        Tolerances of the joint solve of ``[h, S]``.

    Returns
    -------
    Gradient
        ``stats["growth"]`` is ``max_i ||dh(t_i)/dh0||_2``, how much the flow amplifies
        perturbations of the initial state (the checker's conditioning estimate).

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> g = forward_gradient(prob, rtol=1e-10, atol=1e-12)
    >>> round(float(g.dh0[0]), 8)  # 2 x0 exp(-2 k T)
    0.73575888
    """
    check_solver(solver)
    started = _time.perf_counter()
    k = problem.kernels
    n, p = problem.system.n, problem.system.n_params
    m = n + p + 1
    theta = problem.theta
    f = k.f.fn
    # Columns are integrated as sensitivities to the scaled inputs theta_j / s_j (s_j =
    # max(|theta_j|, 1), likewise for t0), so every column has the units and size of the
    # state and atol means the same for all: dh/dk2 ~ 1e-13 for Robertson's k2 = 3e7 would
    # otherwise sit below any atol and go uncontrolled.
    col = np.ones(m)
    col[n : n + p] = np.maximum(np.abs(theta), 1.0)
    col[-1] = max(abs(problem.t0), 1.0)
    rhs, jac = sensitivity_equations(problem, col)
    cost = problem.running_cost is not None
    if cost:
        rhs, jac = with_running_cost(problem, col, rhs, jac)
    if solver not in IMPLICIT:
        jac = None

    S0 = np.zeros((n, m))
    S0[:, :n] = np.eye(n)
    S0[:, -1] = -f(problem.t0, problem.h0, theta) * col[-1]
    z = np.concatenate([problem.h0, S0.reshape(-1)])
    if cost:  # q(t0) = 0; s_q(t0) = [0 | 0 | -g(h0, t0)]: the integral starts where t0 moves to
        s_q0 = np.zeros(m)
        s_q0[-1] = -problem.running_value(problem.t0, problem.h0) * col[-1]
        z = np.concatenate([z, [0.0], s_q0])
    size = n * (m + 1)
    times = problem.times
    states = np.empty((len(times), n))
    sens = np.empty((len(times), n, m))
    nfev, steps, start = 0, 0, problem.t0
    for i, end in enumerate(times):
        res = integrate(
            rhs, (start, end), z, solver=solver, rtol=rtol, atol=atol, jac=jac, dense=False, what="sensitivity solve"
        )
        nfev, steps = nfev + res.nfev, steps + res.n_steps
        z = res.y[:, -1]
        states[i], sens[i] = z[:n], z[n:size].reshape(n, m) / col
        start = end
    loss = loss_partials(problem, states)  # our own derivative of the loss value, not the adjoint's kernel
    g_x = np.einsum("in,inm->m", loss.d_states, sens)
    g_x[n : n + p] += loss.d_theta
    dtimes = np.array([loss.d_states[i] @ f(t, states[i], theta) + loss.d_times[i] for i, t in enumerate(times)])
    value = loss.value
    if cost:  # the integral's value, its sensitivities, and its growth with its end t_N = t1
        value += z[size]
        g_x += z[size + 1 :] / col
        dtimes[-1] += problem.running_value(times[-1], states[-1])
    growth = max(float(np.linalg.norm(sens[i][:, :n], 2)) for i in range(len(times)))
    stats = {
        "nfev_forward": nfev,
        "steps_forward": steps,
        "solver": solver,
        "accuracy": rtol,
        "growth": growth,
        "wall_time": _time.perf_counter() - started,
    }
    return gradient_from_vector(problem, value, np.concatenate([g_x, dtimes]), "forward", stats)


def sensitivity_equations(problem: Problem, col: np.ndarray) -> tuple[Callable, Callable]:
    """The joint right-hand side of ``z = [h, S]`` and its Jacobian ``d(dz/dt)/dz``.

    ``S`` (``n x m``, ``m = n + p + 1``) is stored row-major after ``h``, its columns
    scaled by ``col`` (column ``j`` holds ``col[j] dh/dx_j``).

    Parameters
    ----------
    problem : Problem
    col : ndarray, shape (m,)
        Column scales.

    Returns
    -------
    rhs : callable
        ``rhs(t, z)``, shape ``(n (m + 1),)``.
    jac : callable
        ``jac(t, z)``, shape ``(n (m + 1), n (m + 1))``: ``f_h`` for ``h``, ``f_h (x) I_m``
        for the row-major ``S`` and the coupling ``d(dS/dt)/dh`` by central differences in
        ``h``.  The Kronecker order must match the layout of ``S``: ``I_{m+1} (x) f_h``
        (column-major) sent LSODA's Newton iteration 170k steps through Robertson and left
        ``dL/dk2`` 33% off at ``rtol = 1e-8``.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x", "y"], ["k"], "t", ["-k*x", "x - y"])
    >>> prob = Problem(sys, [1.0, 0.0], {"k": 2.0}, 0.0, 1.0, FinalLoss("y"))
    >>> rhs, jac = sensitivity_equations(prob, np.ones(4))
    >>> z = np.arange(10.0)
    >>> step = 1e-6 * np.eye(10)
    >>> fd = np.stack([(rhs(0.5, z + e) - rhs(0.5, z - e)) / 2e-6 for e in step], axis=1)
    >>> bool(np.allclose(jac(0.5, z), fd, atol=1e-8))
    True
    """
    k = problem.kernels
    n, p = problem.system.n, problem.system.n_params
    m = n + p + 1
    theta = problem.theta
    f, jt = k.f.fn, k.jac_theta.fn
    f_h_times = _state_jvp(problem)

    def sensitivity_rate(t, h, S):
        dS = f_h_times(t, h, S)
        dS[:, n : n + p] += jt(t, h, theta) * col[n : n + p]
        return dS.reshape(-1)

    def rhs(t, z):
        h = z[:n]
        return np.concatenate([f(t, h, theta), sensitivity_rate(t, h, z[n:].reshape(n, m))])

    def jac(t, z):
        h, S = z[:n], z[n:].reshape(n, m)
        Jh = k.state_jacobian(t, h, theta)
        J = np.zeros((n * (m + 1), n * (m + 1)))
        J[:n, :n] = Jh
        J[n:, n:] = np.kron(Jh, np.eye(m))  # row-major S: d(dS_ij/dt)/dS_kj = f_h[i, k]
        for j in range(n):
            d = 1e-7 * max(abs(h[j]), 1.0)
            e = np.zeros(n)
            e[j] = d
            J[n:, j] = (sensitivity_rate(t, h + e, S) - sensitivity_rate(t, h - e, S)) / (2 * d)
        return J

    return rhs, jac


def with_running_cost(problem: Problem, col: np.ndarray, rhs: Callable, jac: Callable) -> tuple[Callable, Callable]:
    """The sensitivity equations of :func:`sensitivity_equations` with ``[q, s_q]`` appended.

    ``z = [h, S, q, s_q]``, ``s_q`` scaled by ``col`` like the columns of ``S``.  The
    Jacobian's new rows: ``d(dq/dt)/dh = g_h``, ``d(ds_q/dt)/dS = g_h`` per column, and
    ``d(ds_q/dt)/dh`` by central differences in ``h`` (as for ``S``); nothing depends on ``q``.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, IntegralLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 2.0}, 0.0, 1.0, IntegralLoss("k*x**2"))
    >>> rhs, jac = with_running_cost(prob, np.ones(3), *sensitivity_equations(prob, np.ones(3)))
    >>> z = np.arange(8.0) + 1
    >>> step = 1e-6 * np.eye(8)
    >>> fd = np.stack([(rhs(0.5, z + e) - rhs(0.5, z - e)) / 2e-6 for e in step], axis=1)
    >>> bool(np.allclose(jac(0.5, z), fd, atol=1e-6))
    True
    """
    n, p = problem.system.n, problem.system.n_params
    m = n + p + 1
    size = n * (m + 1)
    theta = problem.theta
    partials, value = expression_partials(problem.system, problem.running_cost).fn, problem.running_value

    def cost_rate(t, h, S):
        d = partials(t, h, theta)
        d_s = d[:n] @ S
        d_s[n : n + p] += d[n : n + p] * col[n : n + p]
        return np.concatenate([[value(t, h, theta)], d_s])

    def full_rhs(t, z):
        return np.concatenate([rhs(t, z[:size]), cost_rate(t, z[:n], z[n:size].reshape(n, m))])

    def full_jac(t, z):
        h, S = z[:n], z[n:size].reshape(n, m)
        J = np.zeros((size + 1 + m, size + 1 + m))
        J[:size, :size] = jac(t, z[:size])
        g_h = partials(t, h, theta)[:n]
        J[size, :n] = g_h
        J[size + 1 :, n:size] = np.kron(g_h, np.eye(m))  # d(ds_q,c/dt)/dS_kc = g_h[k], S row-major
        for j in range(n):
            d = 1e-7 * max(abs(h[j]), 1.0)
            e = np.zeros(n)
            e[j] = d
            J[size + 1 :, j] = (cost_rate(t, h + e, S)[1:] - cost_rate(t, h - e, S)[1:]) / (2 * d)
        return J

    return full_rhs, full_jac


def _state_jvp(problem: Problem) -> Callable:
    """``(t, h, V) -> f_h V``: the entry-wise Jacobian, or one batched JVP at matrix level."""
    k, theta = problem.kernels, problem.theta
    if problem.system.is_matrix_level:
        jvp = k.jvp_h.fn
        return lambda t, h, V: jvp(t, h, V, theta)
    jh = k.jac_h.fn
    return lambda t, h, V: jh(t, h, theta) @ V


def state_growth(
    problem: Problem, *, solver: str = "DOP853", rtol: float = 1e-8, atol: float = 1e-10, directions: int = 3
) -> float:
    """An estimate of ``max_i ||dh(t_i)/dh0||_2`` from a few random tangent directions.

    Cheaper than :func:`forward_gradient` when only the amplification is wanted: the
    tangent-linear equation ``dv/dt = f_h v`` for ``min(n, directions)`` orthonormal
    directions (a lower bound on the norm, exact when they span the state space).

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["k*x"])  # grows like e^{kT}
    >>> prob = Problem(sys, [1.0], {"k": 2.0}, 0.0, 1.0, FinalLoss("x"))
    >>> round(state_growth(prob, rtol=1e-10, atol=1e-12), 6), round(float(np.exp(2.0)), 6)
    (7.389056, 7.389056)
    """
    k = problem.kernels
    n = problem.system.n
    r = min(n, directions)
    theta = problem.theta
    f, f_h_times = k.f.fn, _state_jvp(problem)
    rng = np.random.default_rng(0)
    V0 = np.linalg.qr(rng.standard_normal((n, r)))[0] if r < n else np.eye(n)

    def rhs(t, z):
        h = z[:n]
        V = z[n:].reshape(n, r)
        return np.concatenate([f(t, h, theta), f_h_times(t, h, V).reshape(-1)])

    z = np.concatenate([problem.h0, V0.reshape(-1)])
    growth, start = 1.0, problem.t0
    for end in problem.times:
        res = integrate(rhs, (start, end), z, solver=solver, rtol=rtol, atol=atol, dense=False, what="tangent solve")
        z = res.y[:, -1]
        growth = max(growth, float(np.linalg.norm(z[n:].reshape(n, r), 2)))
        start = end
    return growth


__all__ = ["forward_gradient", "sensitivity_equations", "state_growth", "with_running_cost"]
