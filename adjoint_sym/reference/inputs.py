"""The loss as a function of every input: what the perturbation references differentiate.

Every reference that perturbs inputs (finite differences, complex step, the Taylor test)
sees the problem as one function ``L(x)`` of the input vector

    x = (h0 [n], theta [p], t0, t_1, ..., t_N)

where ``t_1 .. t_N`` are the observation times (for a final loss ``N = 1`` and
``t_N = t1``).  :func:`loss_at` evaluates it: the trajectory is integrated segment by
segment between observation times, each segment ``[a, b]`` mapped to ``s in [0, 1]``
by ``t = a + s (b - a)``, so that

    dy/ds = (b - a) f(a + s (b - a), y, theta).

The solver's time argument ``s`` stays real while ``a`` and ``b`` may be perturbed,
into complex values too; each segment's end is a solver endpoint, never an interpolated
value.  Moving ``t0`` keeps ``h0`` fixed; moving ``t_i`` moves only that observation: the
trajectory runs through the unmoved ``t_i`` and a short extra solve reaches the moved
one.  The loss is read from the value-only kernel (:meth:`Problem.loss_value`), never from
the partial derivatives the adjoint uses.  A running cost ``int g dt`` is integrated as
one more state, ``dq/ds = (b - a) g(a + s (b - a), y, theta)``, ``q(t0) = 0``, from the
value-only :meth:`Problem.running_value`: ``L = Phi + q(t_N)``, so moving ``t0`` or the
last time ``t_N = t1`` moves the integral's ends.

Complex inputs ``x = x_r + i eps d`` are integrated as the *real-augmented* system

    z = [Re y, Im y / eps],   dz/ds = [Re F(Re y + i eps v), Im F(Re y + i eps v) / eps],

a real system of twice the size whose second half ``v`` is the tangent ``dy/dx . d``
(exact to ``O(eps^2)``).  The tangent is then part of the solver's error norm: integrating
the complex state directly, the norm sees only ``|Re y|`` (``Im y ~ 1e-30``), the step
sequence is the real solve's, and on a trajectory at rest (an equilibrium, a zero state)
the steps grow as large as allowed while the tangent grows unchecked (``x' = x``,
``x(0) = 0``: 16893 for ``dx(10)/dx0 = e^10 = 22026``).
"""

from __future__ import annotations

import numpy as np

from ..numeric.problem import Problem, unflatten_params
from ..numeric.result import Gradient
from ..numeric.solve import IMPLICIT, integrate


def input_vector(problem: Problem) -> np.ndarray:
    """``x = (h0, theta, t0, t_1 .. t_N)`` of ``problem`` (see the module docstring).

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> input_vector(Problem(sys, [1.0], {"k": 0.5}, 0.0, 2.0, FinalLoss("x**2")))
    array([1. , 0.5, 0. , 2. ])
    """
    return np.concatenate([problem.h0, problem.theta, [problem.t0], problem.times])


def input_scale(problem: Problem, states: np.ndarray | None = None) -> np.ndarray:
    """A typical size of each input: the checker's scales and the Taylor test's directions.

    ``max(|x_j|, 1)`` for parameters and times.  A state entry is scaled by the size the
    state component reaches (``max(|h0_j|, max_i |h_j(t_i)|)`` over the observed
    ``states``, 1 if it stays zero): a concentration that starts at 0 and peaks at 1e-5
    (Robertson) must not be perturbed by 1e-3, which would make it negative and the
    problem explode.
    """
    scale = np.maximum(np.abs(input_vector(problem)), 1.0)
    n = problem.system.n
    if states is not None:
        reach = np.max(np.abs(np.vstack([problem.h0, np.real(states)])), axis=0)
        scale[:n] = np.where(reach > 0, reach, 1.0)
    return scale


def step_scale(problem: Problem, states: np.ndarray | None = None) -> np.ndarray:
    """The size a perturbation of each input is measured against (finite-difference steps).

    As :func:`input_scale` for states.  A parameter is scaled by ``|theta_j|`` itself,
    however small, and by 1 only when it is exactly zero: rate constants and the like act
    multiplicatively, so the loss varies on the scale of the parameter's own size, and a
    step that is a fixed fraction of it keeps the truncation error the same whatever the
    units (``max(|theta_j|, 1)`` moved a Michaelis-Menten rate of 1.66e-3 by 45%).  A time
    is scaled by ``max(|t|, 1)``, capped by the span ``|t1 - t0|``: a step must not carry
    ``t0`` past the observations.
    """
    scale = input_scale(problem, states)
    n, p = problem.system.n, problem.system.n_params
    theta = np.abs(problem.theta)
    scale[n : n + p] = np.where(theta > 0, theta, 1.0)
    span = abs(problem.t1 - problem.t0)
    if span > 0:
        scale[n + p :] = np.minimum(scale[n + p :], span)
    return scale


def split_inputs(problem: Problem, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, object, np.ndarray]:
    """``(h0, theta, t0, times)`` from an input vector (any dtype)."""
    n, p = problem.system.n, problem.system.n_params
    return x[:n], x[n : n + p], x[n + p], x[n + p + 1 :]


def gradient_from_vector(problem: Problem, loss: float, g: np.ndarray, method: str, stats: dict) -> Gradient:
    """A :class:`Gradient` from ``dL/dx`` laid out like :func:`input_vector`."""
    h0, theta, t0, times = split_inputs(problem, np.asarray(g, dtype=float))
    dparams = unflatten_params(problem.system, theta)
    final = problem.is_final_loss
    return Gradient(
        loss=float(np.real(loss)),
        dh0=h0.copy(),
        dparams=dparams,
        dt0=float(t0),
        dt1=float(times[-1]) if final else None,
        method=method,
        dtimes=None if final else times.copy(),
        stats=stats,
    )


def trajectory(
    problem: Problem,
    x: np.ndarray,
    *,
    solver: str,
    rtol: float,
    atol: float,
    counter: list | None = None,
) -> np.ndarray:
    """States at the observation times, shape (N, n), for inputs ``x`` (real or complex).

    The trajectory runs from ``(t0, h0)`` of ``x`` through the problem's own observation
    times; an observation time moved by ``x`` is reached by a short extra solve from
    the unmoved one.  Moving ``t_i`` thus moves that observation only, exactly as the
    derivative is defined, and the later segments are not re-discretized (which would
    leave a discretization difference of the size of the tolerance in ``dL/dt_i``).
    A complex ``x`` is integrated as the real-augmented system of the module docstring,
    with ``eps`` the largest imaginary part of ``x``.
    """
    return _solve(problem, x, solver, rtol, atol, counter, with_cost=False)[0]


def trajectory_and_integral(
    problem: Problem, x: np.ndarray, *, solver: str, rtol: float, atol: float, counter: list | None = None
) -> tuple[np.ndarray, complex | float]:
    """:func:`trajectory` and the running cost's integral ``q(t_N)`` (0 without one), solved together."""
    return _solve(problem, x, solver, rtol, atol, counter, with_cost=problem.running_cost is not None)


def _solve(problem: Problem, x, solver, rtol, atol, counter, *, with_cost: bool):
    x = np.asarray(x)
    eps = float(np.max(np.abs(np.imag(x)), initial=0.0))
    if eps == 0:
        x = np.real(x)
    h0, theta, t0, times = split_inputs(problem, x)
    n = problem.system.n
    m = n + 1 if with_cost else n  # [h, q]: the integral rides along as one more state
    k = problem.kernels
    f, g = k.f.fn, problem.running_value
    jacobian = solver in IMPLICIT and eps == 0  # Newton on the augmented system: scipy's own differences

    def rate(t, y):
        out = f(t, y[:n], theta)
        return np.concatenate([out, [g(t, y[:n], theta)]]) if with_cost else out

    def flow(z, start, end):
        length = end - start
        if length == 0:
            return z
        if eps:

            def fun(s, z):
                out = length * rate(start + s * length, z[:m] + (1j * eps) * z[m:])
                return np.concatenate([out.real, out.imag / eps])
        else:

            def fun(s, y):
                return length * rate(start + s * length, y)

        jac = None
        if jacobian:

            def jac(s, y):
                out = np.zeros((m, m))  # q feeds back into nothing: its row's coupling is left to Newton
                out[:n, :n] = length * k.state_jacobian(start + s * length, y[:n], theta)
                return out

        res = integrate(
            fun, (0.0, 1.0), z, solver=solver, rtol=rtol, atol=atol, jac=jac, dense=False, what="reference solve"
        )
        if counter is not None:
            counter[0] += res.nfev
        return res.y[:, -1]

    y0 = np.concatenate([h0, [0.0]]) if with_cost else h0
    z = np.concatenate([np.real(y0), np.imag(y0) / eps]) if eps else np.asarray(y0, dtype=float)
    out = np.empty((len(times), 2 * m if eps else m))
    start = t0
    for i, base in enumerate(problem.times):
        z = flow(z, start, base)
        out[i] = flow(z, base, times[i]) if times[i] != base else z
        start = base
    values = out[:, :m] + (1j * eps) * out[:, m:] if eps else out
    return values[:, :n], (values[-1, n] if with_cost else 0.0)


def loss_at(
    problem: Problem, x: np.ndarray, *, solver: str, rtol: float, atol: float, counter: list | None = None
) -> complex | float:
    """``L(x)``: integrate from the perturbed inputs and evaluate the loss (real or complex).

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 2.0, FinalLoss("x**2"))
    >>> x = input_vector(prob) + np.array([0, 0, 0, 1j * 1e-30])  # move t1 by i 1e-30
    >>> value = loss_at(prob, x, solver="DOP853", rtol=1e-13, atol=1e-15)
    >>> round(float(value.imag / 1e-30), 10), round(float(-2 * 0.5 * np.exp(-2.0)), 10)  # dL/dt1 = -2k x(T)^2
    (-0.1353352832, -0.1353352832)
    """
    _, theta, _, times = split_inputs(problem, x)
    states, integral = trajectory_and_integral(problem, x, solver=solver, rtol=rtol, atol=atol, counter=counter)
    return problem.loss_value(states, theta=theta, times=times) + integral


__all__ = [
    "gradient_from_vector",
    "input_scale",
    "input_vector",
    "loss_at",
    "split_inputs",
    "step_scale",
    "trajectory",
    "trajectory_and_integral",
]
