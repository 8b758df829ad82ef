"""One entry point for every gradient route: the adjoints, the references, backprop.

The first layer that sees all three (:mod:`adjoint_sym.adjoint`,
:mod:`adjoint_sym.reference`, :mod:`adjoint_sym.discrete`) is the verifier, so the
dispatch by name lives here; the top level re-exports :func:`gradient` and :func:`methods`.
"""

from __future__ import annotations

from ..adjoint.gradient import ADJOINT_METHODS, IMPLICIT, adjoint_gradient
from ..adjoint.methods import AdjointMethod
from ..discrete import backprop_gradient
from ..errors import InvalidModelError
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..reference import REFERENCES

#: Every non-adjoint route by name: the continuous references, then the discrete counterpart.
ROUTES = {**REFERENCES, "backprop": backprop_gradient}


def methods() -> tuple[str, ...]:
    """Every method name :func:`gradient` accepts."""
    return ADJOINT_METHODS + tuple(ROUTES)


def gradient(
    problem: Problem,
    method: str | AdjointMethod = "adjoint",
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    backend: str = "default",
    **options,
) -> Gradient:
    """The loss and its gradient by ``method``.

    Parameters
    ----------
    problem : Problem
    method : str or AdjointMethod
        An adjoint (``"adjoint"`` (default, the most robust), ``"interpolating"``,
        ``"backsolve"``, ``"quadrature"``, or an instance such as
        ``BacksolveAdjoint(adjoint_rtol=1e-10)``) or a reference (``"forward"``,
        ``"complex-step"``, ``"finite-difference"``, ``"backprop"``).
    solver : str
        A ``solve_ivp`` method: ``"DOP853"``, ``"RK45"``, ``"RK23"``, or for stiff
        problems ``"LSODA"``, ``"BDF"``, ``"Radau"``.
    rtol, atol : float
        Solver tolerances.
    backend : {"default", "fast"}
        ``"fast"`` is the compiled interpolating adjoint of :mod:`adjoint_sym.adjoint.fast`
        (needs ``pip install "adjoint_sym[fast]"``; explicit RK45 whatever ``solver``).
    **options
        Method-specific options (e.g. ``adjoint_rtol`` for adjoints, ``steps`` for
        ``"backprop"``).

    Examples
    --------
    >>> from adjoint_sym import Problem, FinalLoss
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0},
    ...                0.0, 10.0, FinalLoss("x**2 + y**2"))
    >>> g = gradient(prob, solver="DOP853", rtol=1e-8, atol=1e-10)
    >>> sorted(g.dparams)
    ['a', 'b', 'c', 'd']
    """
    if not isinstance(problem, Problem):
        raise InvalidModelError(f"gradient() takes a Problem, got {type(problem).__name__}")
    if backend == "fast":
        from ..adjoint.fast import fast_gradient  # numba + symengine: imported only when asked for

        if solver in IMPLICIT:
            raise InvalidModelError(
                f"backend='fast' integrates explicitly (RK45); for the stiff solver {solver!r} use backend='default'"
            )
        if options:
            raise InvalidModelError(f"backend='fast' takes no method options, got {', '.join(sorted(options))}")
        return fast_gradient(problem, rtol=rtol, atol=atol, method=method)
    if backend != "default":
        raise InvalidModelError(f"unknown backend {backend!r}; choose 'default' or 'fast'")
    if isinstance(method, AdjointMethod) or method in ADJOINT_METHODS:
        return adjoint_gradient(problem, method=method, solver=solver, rtol=rtol, atol=atol, **options)
    if method in ROUTES:
        return ROUTES[method](problem, solver=solver, rtol=rtol, atol=atol, **options)
    raise InvalidModelError(f"unknown method {method!r}; choose one of {', '.join(methods())}")
