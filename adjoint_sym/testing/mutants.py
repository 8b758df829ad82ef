"""A small hand-written adjoint, and deliberately wrong variants of it (mutants).

The property suite is only as good as its power to fail.  :func:`handwritten_adjoint`
is written independently of :mod:`adjoint_sym.adjoint.gradient`: ``solve_ivp`` forward with
dense output, then ``[a, a_theta, a_t]`` integrated backward from the last observation
to ``t0`` over the kernels' Jacobian and vector-Jacobian products, with the jumps
``a += dL/dh(t_i)``, ``a_t -= dL/dh(t_i) . f`` at the observation times (Chen et al. 2018,
eq. 4, 5, Algorithm 1 and appendix B).  Each mutation breaks it the way a person does:

==========================  =============================================================
mutation                    the bug
==========================  =============================================================
``flipped_sign``            ``da/dt = +a^T df/dh``
``missing_transpose``       ``da/dt = -(df/dh) a``: ``J`` where ``J^T`` belongs
``dropped_a_theta``         ``da_theta/dt = 0``: only the loss's explicit ``dL/dtheta``
``dropped_a_t``             ``da_t/dt = 0``: ``dL/dt0`` misses ``-int a^T df/dt``
``wrong_terminal``          ``a(t1) = -dL/dh(t1)`` (the sign the source note suggests)
``missing_jump``            only the last observation's ``dL/dh(t_N)`` enters ``a``
``theta_forward``           ``a_theta`` integrated forward from ``t0`` (``da_theta/dt =
                            -a^T df/dtheta`` from 0 at ``t0`` to ``t_N``): the wrong sign
``off_by_one``              observation ``i``'s jump applied at ``t_{i+1}``
==========================  =============================================================

Examples
--------
>>> from adjoint_sym import FinalLoss, ODESystem, Problem
>>> sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])
>>> prob = Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, FinalLoss("x"))
>>> round(handwritten_adjoint(prob)["dparams"]["a"], 8)  # dL/da = -t1 x0 exp(-a t1)
-0.36787944
>>> round(mutant("flipped_sign")(prob)["dparams"]["a"], 8)  # -sinh(1)
-1.17520119
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.integrate import solve_ivp

from ..adjoint.kernels import adjoint_kernels
from ..errors import InvalidModelError, SolverFailedError
from ..numeric.problem import Problem, unflatten_params

MUTATIONS = (
    "flipped_sign",
    "missing_transpose",
    "dropped_a_theta",
    "dropped_a_t",
    "wrong_terminal",
    "missing_jump",
    "theta_forward",
    "off_by_one",
)


def handwritten_adjoint(
    problem: Problem, *, mutation: str | None = None, rtol: float = 1e-10, atol: float = 1e-12
) -> dict:
    """``loss``, ``dh0``, ``dparams``, ``dt0``, ``dt1``, ``dtimes`` by a hand-written adjoint.

    Parameters
    ----------
    problem : Problem
    mutation : str, optional
        One of :data:`MUTATIONS` to break the adjoint on purpose; ``None`` is correct.
    rtol, atol : float
        Tolerances of both ``solve_ivp`` calls (DOP853).

    Returns
    -------
    dict
        The mapping :func:`adjoint_sym.testing.check_gradient_function` expects.
    """
    if mutation is not None and mutation not in MUTATIONS:
        raise InvalidModelError(f"unknown mutation {mutation!r}; choose one of {MUTATIONS}")
    system, k = problem.system, adjoint_kernels(problem.system)
    n, p, theta = system.n, system.n_params, problem.theta
    f, vjp = k.f.fn, k.vjp.fn
    times, t0 = problem.times, problem.t0

    # forward: h(t) with dense output, exact endpoint states at the observation times
    def run(fun, span, y0):
        if span[0] == span[1]:
            return None, np.asarray(y0, dtype=float)
        sol = solve_ivp(fun, span, y0, method="DOP853", rtol=rtol, atol=atol, dense_output=True)
        if sol.status != 0:
            raise SolverFailedError(f"hand-written adjoint: {sol.message}", solver_message=sol.message)
        return sol.sol, sol.y[:, -1]

    h_of, _ = run(lambda t, h: f(t, h, theta), (t0, times[-1]), problem.h0)
    states = np.array([problem.h0 if h_of is None or t == t0 else h_of(t) for t in times])
    loss = problem.evaluate_loss(states)
    # moving t_i moves where the state is read (dL/dh . f) and the loss's explicit time
    flows = np.array([loss.d_states[i] @ f(t, states[i], theta) for i, t in enumerate(times)])
    dtimes = flows + loss.d_times

    jumps = [d.copy() for d in loss.d_states]
    if mutation == "missing_jump":
        jumps = [np.zeros(n)] * (len(times) - 1) + [jumps[-1]]
    elif mutation == "off_by_one":  # observation i's jump lands at t_{i+1} (the last stays)
        shifted = [np.zeros(n), *jumps[:-1]]
        shifted[-1] = shifted[-1] + jumps[-1]
        jumps = shifted
    if mutation == "wrong_terminal":
        jumps[-1] = -jumps[-1]

    def rhs(t, y):
        h, a = h_of(t), y[:n]
        products = vjp(t, h, a, theta)  # [a^T f_h, a^T f_theta, a^T f_t]
        da = -products[:n]
        if mutation == "flipped_sign":
            da = -da
        elif mutation == "missing_transpose":
            da = -(k.jac_h_from_vjp(t, h, theta) @ a)
        da_theta = -products[n : n + p]
        if mutation == "dropped_a_theta":
            da_theta = np.zeros(p)
        elif mutation == "theta_forward":  # forward from t0 accumulates the integral's negative
            da_theta = -da_theta
        da_t = np.zeros(1) if mutation == "dropped_a_t" else -products[n + p :]
        return np.concatenate([da, da_theta, da_t])

    y = np.zeros(n + p + 1)
    starts = [t0, *times[:-1]]
    for i in range(len(times) - 1, -1, -1):  # backward over the segments
        y[:n] += jumps[i]
        y[-1] -= flows[i]  # a_t carries -dL/dh . f only: moving t0 leaves the loss's explicit time alone
        _, y = run(rhs, (times[i], starts[i]), y)
    d_theta = y[n : n + p] + loss.d_theta
    dparams = unflatten_params(system, d_theta)
    return {
        "loss": float(loss.value),
        "dh0": y[:n],
        "dparams": dparams,
        "dt0": float(y[-1]),
        "dt1": float(dtimes[-1]) if problem.is_final_loss else None,
        "dtimes": dtimes,
    }


def mutant(mutation: str) -> Callable[[Problem], dict]:
    """The hand-written adjoint broken by ``mutation`` (a gradient function)."""
    if mutation not in MUTATIONS:
        raise InvalidModelError(f"unknown mutation {mutation!r}; choose one of {MUTATIONS}")

    def gradient_function(problem: Problem) -> dict:
        return handwritten_adjoint(problem, mutation=mutation)

    gradient_function.__name__ = f"mutant_{mutation}"
    return gradient_function


__all__ = ["MUTATIONS", "handwritten_adjoint", "mutant"]
