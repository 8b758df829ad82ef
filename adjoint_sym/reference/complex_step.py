"""Complex-step differentiation through the solver: ``dL/dx_j = Im L(x + i eps s_j e_j) / (eps s_j)``.

For a real-analytic ``L`` the complex step has no subtractive cancellation, so ``eps``
can be tiny (``1e-30``) and the derivative of the computation is exact to rounding.  Each
direction is scaled by its input's typical size ``s_j``
(:func:`~adjoint_sym.reference.inputs.input_scale`), so the tangent it carries has the
size of the state whatever the units of the input.

The solves integrate the *real-augmented* system ``[Re y, Im y / eps]`` of
:mod:`adjoint_sym.reference.inputs`: a real system of twice the size whose second half is
the tangent ``s_j dy/dx_j``, so the solver's error norm controls the derivative itself,
not only the trajectory.  Riding the real solve's step sequence instead (a complex state,
whose norm only sees ``|Re y|``) lost all control wherever the trajectory is at rest: on
``x' = x``, ``x(0) = 0``, ``T = 10`` it gave 16893.47 for ``e^10 = 22026.47``.  The solves
run at ``rtol = min(rtol, 1e-13)``; ``stats["accuracy"]`` claims ``ACCURACY_UNITS`` times
that (a tolerance-proportional global error), which the tests measure on closed forms.

The loss value comes from the value-only loss kernel; the complex step differentiates it
with the trajectory, so no loss derivative of ours is used.  A running cost ``int g dt``
is integrated with the trajectory as one more state (:mod:`adjoint_sym.reference.inputs`)
and complex-stepped with it.  Time inputs are perturbed
through the change of variable ``t = a + s (b - a)`` (``s`` real), so ``dL/dt0``, ``dL/dt1``
and every ``dL/dt_i`` come out of the same construction.

Where it does not apply
-----------------------
* Non-analytic functions (``Abs``, ``Max``, ``Min``, ``sign``, ``Heaviside``, ``floor``,
  ``re``, ``conjugate``, ``Piecewise`` ...) in the right-hand side, the loss or its running cost: their
  numpy versions do not extend analytically to complex arguments (``abs`` returns the
  modulus), so :func:`complex_step_gradient` refuses with :class:`InvalidModelError`
  naming the function.
* Implicit solvers (BDF, Radau, LSODA): order 5 at most, they would need very many steps
  at ``rtol = 1e-13``.  The solves always use the explicit, 8th-order ``DOP853``
  (``stats["note"]`` says so when another solver was requested); on a stiff problem that
  is slow, so prefer ``"forward"`` there.
* :class:`CallableLoss`: a Python loss need not accept complex input; the trajectory is
  complex-stepped and combined with the loss's own gradient by the chain rule.

References: Squire & Trapp, SIAM Review 40 (1998); Martins, Sturdza & Alonso, ACM TOMS
29 (2003).
"""

from __future__ import annotations

import time as _time

import numpy as np
import sympy as sp

from ..errors import InvalidModelError
from ..numeric.loss import CallableLoss
from ..numeric.problem import Problem, callable_loss_gradient
from ..numeric.result import Gradient
from ..numeric.solve import IMPLICIT, check_solver
from .inputs import (
    gradient_from_vector,
    input_scale,
    input_vector,
    loss_at,
    split_inputs,
    trajectory,
    trajectory_and_integral,
)

#: The imaginary step: small enough that the O(eps^2) error vanishes in double precision.
STEP = 1e-30
#: Solves run at least this tight (100 ulp above solve_ivp's floor of 100 eps).
TIGHT_RTOL = 1e-13
TIGHT_ATOL = 1e-15
#: The claimed accuracy in units of the solves' rtol: the global error of DOP853 with the
#: tangent under error control, measured within 10 rtol on the closed forms of the tests
#: (spans up to 10, growing modes, rest points), where 100 would be the tolerance model's C.
ACCURACY_UNITS = 10

#: SymPy functions without an analytic extension that numpy would evaluate.
NON_ANALYTIC = (
    sp.Abs,
    sp.Max,
    sp.Min,
    sp.sign,
    sp.Heaviside,
    sp.floor,
    sp.ceiling,
    sp.frac,
    sp.re,
    sp.im,
    sp.arg,
    sp.conjugate,
    sp.Piecewise,
    sp.DiracDelta,
)


def non_analytic_functions(problem: Problem) -> list[tuple[str, str]]:
    """``(where, function)`` for each non-analytic function in the rhs or the loss.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*max(x, 0)"])
    >>> non_analytic_functions(Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("abs(x)")))
    [('the right-hand side', 'Max'), ('the loss', 'Abs')]
    """
    found: list[tuple[str, str]] = []
    exprs: list[tuple[str, sp.Basic]] = [("the right-hand side", problem.system.rhs)]
    point = problem.point_loss
    if not isinstance(point, CallableLoss):
        exprs += [("the loss", e) for e in point.expressions(problem.system, len(problem.times))]
    if problem.running_cost is not None:
        exprs.append(("the running cost", problem.running_cost))
    for where, expr in exprs:
        for atom in sorted(expr.atoms(*NON_ANALYTIC), key=str):
            entry = (where, type(atom).__name__)
            if entry not in found:
                found.append(entry)
    return found


def check_analytic(problem: Problem) -> None:
    """Raise :class:`InvalidModelError` naming any non-analytic function."""
    bad = non_analytic_functions(problem)
    if bad:
        names = "; ".join(f"{fn} in {where}" for where, fn in bad)
        raise InvalidModelError(
            f"complex-step needs real-analytic functions, but the problem uses {names}; "
            "use method='forward' or 'finite-difference', or a smooth surrogate (e.g. softplus for max(x, 0))"
        )


def complex_step_gradient(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    step: float = STEP,
) -> Gradient:
    """Every derivative by the complex step (see the module docstring).

    Parameters
    ----------
    problem : Problem
    solver : str
        Accepted for the common signature; the solves always use ``"DOP853"`` (order 8,
        so tight tolerances are affordable).
    rtol, atol : float
        Requested tolerances; the solves run at ``min(rtol, 1e-13)``, ``min(atol, 1e-15)``.
    step : float
        The imaginary step, relative to each input's scale.

    Returns
    -------
    Gradient
        ``stats["accuracy"]`` is ``ACCURACY_UNITS * rtol_solves``, the claimed error
        relative to the largest scaled entry.

    Raises
    ------
    InvalidModelError
        If the rhs or the loss uses a non-analytic function.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> g = complex_step_gradient(prob)
    >>> bool(abs(g.dparams["k"] / (-2 * np.exp(-1.0)) - 1) < 1e-12)  # -2 T x0^2 exp(-2 k T)
    True
    """
    check_solver(solver)
    check_analytic(problem)
    started = _time.perf_counter()
    note = ""
    if solver in IMPLICIT:
        note = f"complex-step ran DOP853 instead of the implicit {solver} (order 5 at rtol 1e-13 is too slow)"
    solver = "DOP853"  # explicit, and of high order: the economical choice at rtol 1e-13
    srtol, satol = min(rtol, TIGHT_RTOL), min(atol, TIGHT_ATOL)
    counter = [0]
    x = input_vector(problem)
    states, integral = trajectory_and_integral(problem, x, solver=solver, rtol=srtol, atol=satol, counter=counter)
    scale = input_scale(problem, states)
    g = np.empty(len(x))
    if isinstance(problem.point_loss, CallableLoss):
        loss, g = _chain_rule(problem, x, states, step * scale, solver, srtol, satol, counter)
    else:
        _, theta, _, times = split_inputs(problem, x)
        loss = float(np.real(problem.loss_value(states, theta=theta, times=times) + integral))
        for j in range(len(x)):
            xc = x.astype(complex)
            xc[j] += 1j * step * scale[j]
            value = loss_at(problem, xc, solver=solver, rtol=srtol, atol=satol, counter=counter)
            g[j] = np.imag(value) / (step * scale[j])
    stats = {
        "nfev_forward": counter[0],
        "solver": solver,
        "rtol_solves": srtol,
        "accuracy": ACCURACY_UNITS * srtol,
        "wall_time": _time.perf_counter() - started,
    }
    if note:
        stats["note"] = note
    return gradient_from_vector(problem, loss, g, "complex-step", stats)


def _chain_rule(problem, x, states, steps, solver, rtol, atol, counter):
    """Complex-step the observed states; the loss's own gradient does the rest."""
    _, theta, _, _ = split_inputs(problem, x)
    value = float(np.real(problem.loss_value(states, theta=theta)))
    d_states, d_theta = callable_loss_gradient(problem.loss, states, theta, problem.system)
    n, p = problem.system.n, problem.system.n_params
    g = np.empty(len(x))
    for j in range(len(x)):
        xc = x.astype(complex)
        xc[j] += 1j * steps[j]
        tangent = np.imag(trajectory(problem, xc, solver=solver, rtol=rtol, atol=atol, counter=counter)) / steps[j]
        g[j] = np.sum(d_states * tangent)
        if n <= j < n + p:
            g[j] += d_theta[j - n]
        # a callable loss has no explicit time dependence (its d_times are zero), and
        # moving t_i changes only the state observed at t_i, which d_states carries.
    return value, g


__all__ = ["ACCURACY_UNITS", "NON_ANALYTIC", "check_analytic", "complex_step_gradient", "non_analytic_functions"]
