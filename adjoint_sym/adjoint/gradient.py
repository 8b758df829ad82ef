"""Adjoint gradients: the method under test (Chen et al. 2018).

:func:`adjoint_gradient` solves forward, reads the loss at the observation times, and
runs the one backward sweep (:mod:`adjoint_sym.adjoint.backward`) with the engine of the
chosen method (:mod:`adjoint_sym.adjoint.methods`).  Methods are named by string or given
as instances:

================  =====================================================================
name              method
================  =====================================================================
``backsolve``     :class:`~adjoint_sym.adjoint.methods.BacksolveAdjoint` (Algorithm 1)
``interpolating`` :class:`~adjoint_sym.adjoint.methods.InterpolatingAdjoint`
``quadrature``    :class:`~adjoint_sym.adjoint.methods.QuadratureAdjoint`
``adjoint``       the robust default: ``interpolating`` for explicit solvers,
                  ``quadrature`` for implicit (stiff) ones.
================  =====================================================================
"""

from __future__ import annotations

import time

from ..errors import InvalidModelError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..numeric.solve import IMPLICIT, check_solver, forward
from .backward import Observations, gradient_fields, sweep
from .methods import DRIFT_WARNING, AdjointMethod, BacksolveAdjoint, InterpolatingAdjoint, QuadratureAdjoint
from .running_cost import forward_with_cost

ADJOINT_METHODS = ("adjoint", "interpolating", "backsolve", "quadrature")

_BY_NAME: dict[str, type[AdjointMethod]] = {
    "interpolating": InterpolatingAdjoint,
    "backsolve": BacksolveAdjoint,
    "quadrature": QuadratureAdjoint,
}


def resolve_method(method: str, solver: str) -> str:
    """The variant a method name stands for (``"adjoint"`` picks by the solver)."""
    if method not in ADJOINT_METHODS:
        raise InvalidModelError(f"unknown adjoint method {method!r}; choose one of {ADJOINT_METHODS}")
    if method == "adjoint":
        return "quadrature" if solver in IMPLICIT else "interpolating"
    return method


def adjoint_method(
    method: str | AdjointMethod, solver: str, adjoint_rtol: float | None = None, adjoint_atol: float | None = None
) -> AdjointMethod:
    """The :class:`AdjointMethod` instance for a name (with the tolerance options) or an instance."""
    if isinstance(method, AdjointMethod):
        if adjoint_rtol is not None or adjoint_atol is not None:
            raise InvalidModelError(
                f"adjoint_rtol/adjoint_atol are fields of {type(method).__name__}; set them there, not as options"
            )
        return method
    if not isinstance(method, str):
        raise InvalidModelError(f"method must be a name or an AdjointMethod, got {method!r}")
    return _BY_NAME[resolve_method(method, solver)](adjoint_rtol=adjoint_rtol, adjoint_atol=adjoint_atol)


def adjoint_gradient(
    problem: Problem,
    *,
    method: str | AdjointMethod = "adjoint",
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    adjoint_rtol: float | None = None,
    adjoint_atol: float | None = None,
) -> Gradient:
    """``dL/dh0``, ``dL/dtheta``, ``dL/dt0``, ``dL/dt1`` (and ``dL/dt_i``) by an adjoint.

    Parameters
    ----------
    problem : Problem
    method : {"adjoint", "interpolating", "backsolve", "quadrature"} or AdjointMethod
    solver : str
        A ``solve_ivp`` method, used forward and backward.
    rtol, atol : float
        Forward tolerances; the adjoint's default to them.
    adjoint_rtol, adjoint_atol : float, optional
        The backward solve's tolerances, for a method given by name.

    Returns
    -------
    Gradient

    Examples
    --------
    >>> from adjoint_sym import Problem, FinalLoss
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0},
    ...                0.0, 1.0, FinalLoss("x**2 + y**2"))
    >>> g = adjoint_gradient(prob)
    >>> g.method
    'interpolating'
    """
    check_solver(solver)
    chosen = adjoint_method(method, solver, adjoint_rtol, adjoint_atol)
    started = time.perf_counter()
    fwd, observations = observe(problem, solver, rtol, atol, dense=chosen.dense_forward)
    engine = chosen.segments(problem, fwd, solver, *chosen.tolerances(rtol, atol))
    final = sweep(problem, observations, engine)
    stats = {
        "nfev_forward": fwd.nfev,
        "steps_forward": fwd.n_steps,
        **engine.stats,
        "wall_time": time.perf_counter() - started,
        "solver": solver,
    }
    return Gradient(method=chosen.name, stats=stats, **gradient_fields(problem, observations, final))


def observe(problem: Problem, solver: str, rtol: float, atol: float, *, dense: bool) -> tuple:
    """The forward solve and the :class:`Observations` read from it.

    Under a running cost the solve carries ``q' = g`` after ``h``
    (:func:`~adjoint_sym.adjoint.running_cost.forward_with_cost`) and ``q(t1)`` is the
    integral; otherwise it is the plain forward solve.
    """
    if problem.running_cost is None:
        fwd = forward(problem, solver=solver, rtol=rtol, atol=atol, dense=dense)
        return fwd, Observations.of(problem, fwd.at(problem.times))
    fwd = forward_with_cost(problem, solver=solver, rtol=rtol, atol=atol, dense=dense)
    z = fwd.at(problem.times)
    n = problem.system.n
    return fwd, Observations.of(problem, z[:, :n], integral=z[-1, n])


__all__ = [
    "ADJOINT_METHODS",
    "DRIFT_WARNING",
    "IMPLICIT",
    "adjoint_gradient",
    "adjoint_method",
    "observe",
    "resolve_method",
]
