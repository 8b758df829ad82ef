"""The loss as a function of every input, and its central finite differences.

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
one.

Central differences use a step scaled to each variable (:func:`input_scale`),
``delta_j = eps^(1/3) max(|x_j|, 1)`` (balances the O(delta^2) truncation against the O(noise/delta) error
of the solves), or with Richardson extrapolation (default) ``eps^(1/5) max(|x_j|, 1)``
and its half, combined as ``(4 D(delta/2) - D(delta)) / 3`` to cancel the delta^2 term.
Solves run at ``rtol = min(rtol, 1e-12)``: the solver's error, divided by the step, is
the accuracy floor of a finite difference.  At such tolerances only a high-order method
is economical, so an explicit ``solver`` is replaced by DOP853 (order 8; RK23 would need
thousands of times more steps); implicit solvers are kept for stiff problems.
"""

from __future__ import annotations

import time as _time
from collections.abc import Callable

import numpy as np

from ..numeric.problem import Problem, unflatten_params
from ..numeric.result import Gradient
from ..numeric.solve import IMPLICIT, check_solver, integrate

#: Forward solves of the perturbation references run at least this tight.
TIGHT_RTOL = 1e-12
TIGHT_ATOL = 1e-14

_EPS = np.finfo(float).eps


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
    """A typical size of each input: steps and directions scale with it.

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
    """
    h0, theta, t0, times = split_inputs(problem, x)
    f = problem.kernels.f.fn
    implicit_jac = solver in IMPLICIT and not problem.system.is_matrix_level
    jh = problem.kernels.jac_h.fn if implicit_jac else None

    def flow(y, start, end):
        length = end - start
        if length == 0:
            return y

        def fun(s, y):
            return length * f(start + s * length, y, theta)

        jac = None
        if implicit_jac:

            def jac(s, y):
                return length * jh(start + s * length, y, theta)

        res = integrate(
            fun, (0.0, 1.0), y, solver=solver, rtol=rtol, atol=atol, jac=jac, dense=False, what="reference solve"
        )
        if counter is not None:
            counter[0] += res.nfev
        return res.y[:, -1]

    y = np.asarray(h0)
    out = np.empty((len(times), problem.system.n), dtype=np.result_type(x, float))
    start = t0
    for i, base in enumerate(problem.times):
        y = flow(y, start, base)
        out[i] = flow(y, base, times[i]) if times[i] != base else y
        start = base
    return out


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
    states = trajectory(problem, x, solver=solver, rtol=rtol, atol=atol, counter=counter)
    return problem.evaluate_loss(states, theta=theta, times=times).value


def central_differences(
    fun: Callable[[np.ndarray], float], x: np.ndarray, steps: np.ndarray, *, richardson: bool
) -> np.ndarray:
    """``dfun/dx`` by central differences with one step per entry (Richardson optional)."""
    g = np.empty(len(x))
    for j in range(len(x)):

        def diff(delta, j=j):
            e = np.zeros(len(x))
            e[j] = delta
            return (fun(x + e) - fun(x - e)) / (2 * delta)

        d1 = diff(steps[j])
        g[j] = (4 * diff(steps[j] / 2) - d1) / 3 if richardson else d1
    return g


def finite_difference_gradient(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    richardson: bool = True,
    step: float | None = None,
) -> Gradient:
    """Every derivative by central differences of the loss (see the module docstring).

    Parameters
    ----------
    problem : Problem
    solver : str
        An implicit ``solve_ivp`` method is used as given; explicit ones run as DOP853.
    rtol, atol : float
        Requested tolerances; the solves run at ``min(rtol, 1e-12)``, ``min(atol, 1e-14)``.
    richardson : bool
        Extrapolate two central differences (error O(delta^4) instead of O(delta^2)).
    step : float, optional
        Relative step, multiplied by ``max(|x_j|, 1)``; the default balances truncation
        and solver noise (``eps^(1/5)`` with Richardson, ``eps^(1/3)`` without).

    Returns
    -------
    Gradient
        ``stats["accuracy"]`` is the expected relative accuracy, solver noise over the step.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> g = finite_difference_gradient(prob)
    >>> round(g.dparams["k"], 6)  # -2 T x0^2 exp(-2 k T)
    -0.735759
    """
    check_solver(solver)
    started = _time.perf_counter()
    solver = solver if solver in IMPLICIT else "DOP853"  # tight tolerances: the high-order method
    srtol, satol = min(rtol, TIGHT_RTOL), min(atol, TIGHT_ATOL)
    counter = [0]
    x = input_vector(problem)
    rel = step if step is not None else (_EPS ** (1 / 5) if richardson else _EPS ** (1 / 3))

    def fun(xx: np.ndarray) -> float:
        return float(np.real(loss_at(problem, xx, solver=solver, rtol=srtol, atol=satol, counter=counter)))

    states = trajectory(problem, x, solver=solver, rtol=srtol, atol=satol, counter=counter)
    steps = rel * input_scale(problem, states)

    g = central_differences(fun, x, steps, richardson=richardson)
    loss = fun(x)
    # A solve at rtol carries a global error of a few rtol; divided by the (relative) step
    # it bounds the accuracy of the difference quotient, plus the truncation rel^2 (rel^4).
    truncation = rel**4 if richardson else rel**2
    stats = {
        "nfev_forward": counter[0],
        "solver": solver,
        "rtol_solves": srtol,
        "accuracy": 10 * srtol / rel + truncation,
        "relative_step": rel,
        "wall_time": _time.perf_counter() - started,
    }
    return gradient_from_vector(problem, loss, g, "finite-difference", stats)


__all__ = [
    "finite_difference_gradient",
    "gradient_from_vector",
    "input_scale",
    "input_vector",
    "loss_at",
    "split_inputs",
    "trajectory",
]
