"""One entry point for every gradient route: the adjoints, the references, backprop.

The first layer that sees all three (:mod:`adjoint_sym.adjoint`,
:mod:`adjoint_sym.reference`, :mod:`adjoint_sym.discrete`) is the verifier, so the
dispatch by name lives here; the top level re-exports :func:`gradient` and :func:`methods`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np
import sympy as sp

from ..adjoint.gradient import ADJOINT_METHODS, IMPLICIT, adjoint_gradient
from ..adjoint.methods import AdjointMethod
from ..discrete import backprop_gradient
from ..errors import InvalidModelError
from ..numeric.loss import FinalLoss, Loss
from ..numeric.problem import Problem
from ..numeric.result import Gradient
from ..reference import REFERENCES
from ..symbolic.system import ODESystem
from ..symbolic.trace import trace_loss

#: Every non-adjoint route by name: the continuous references, then the discrete counterpart.
ROUTES = {**REFERENCES, "backprop": backprop_gradient}


#: Callbacks told when a gradient starts and ends (progress lines of the command line).
_OBSERVERS: ContextVar[tuple[Callable[[str, str, float | None], None], ...]] = ContextVar(
    "adjoint_sym_gradient_observers", default=()
)


@contextmanager
def observing(callback: Callable[[str, str, float | None], None]) -> Iterator[None]:
    """Within the block, every :func:`gradient` calls ``callback(event, method, seconds)``.

    ``event`` is ``"start"`` (``seconds`` None) or ``"done"`` (the wall time); ``check``
    and ``compare`` compute through :func:`gradient`, so their progress shows too.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> prob = Problem(ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"]), [1.0], {"k": 0.5}, 0.0, 1.0,
    ...                FinalLoss("x"))
    >>> seen = []
    >>> with observing(lambda event, method, seconds: seen.append((event, method))):
    ...     _ = gradient(prob, "forward")
    >>> seen
    [('start', 'forward'), ('done', 'forward')]
    """
    token = _OBSERVERS.set((*_OBSERVERS.get(), callback))
    try:
        yield
    finally:
        _OBSERVERS.reset(token)


def _tell(event: str, method: str, seconds: float | None = None) -> None:
    for callback in _OBSERVERS.get():
        callback(event, method, seconds)


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
    asked = method if isinstance(method, str) else repr(method)
    _tell("start", asked)
    started = time.perf_counter()
    g = _run(problem, method, solver, rtol, atol, backend, options)
    _tell("done", asked, time.perf_counter() - started)
    # what ran, next to what was asked for: g.method is the variant ("interpolating" for "adjoint")
    recorded = dict(options) | ({"backend": backend} if backend != "default" else {})
    ran = g.stats.get("solver", solver)  # the fast backend integrates with its own RK45
    return dataclasses.replace(g, requested=asked, solver=ran, rtol=rtol, atol=atol, options=recorded)


def _run(problem: Problem, method, solver: str, rtol: float, atol: float, backend: str, options: dict) -> Gradient:
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


def value_and_grad(
    f: Callable | ODESystem,
    h0: Sequence[float],
    params: Mapping[str, object],
    t1: float,
    *,
    loss: str | sp.Expr | Loss | Callable,
    t0: float = 0.0,
    state: Sequence[str] | Mapping[str, int] | None = None,
    time: str = "t",
    method: str | AdjointMethod = "adjoint",
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    **options,
) -> Gradient:
    """The loss and its gradient in one call: a Python right-hand side, numbers, a loss.

    Traces ``f`` (:meth:`ODESystem.from_function`), builds the :class:`Problem` and runs
    :func:`gradient`; ``g.loss`` is the value, ``g.dh0``, ``g.dparams``, ``g.dt0``,
    ``g.dt1`` the gradient.

    Parameters
    ----------
    f : callable or ODESystem
        ``f(t, h, theta)`` as for :meth:`ODESystem.from_function` (or a system).
    h0 : sequence of float
        The initial state.
    params : mapping of name to value
        Scalars, or arrays for matrix parameters (their shapes are read from the values).
    t1 : float
        The end time.
    loss : str, sympy expression, Loss, or callable
        Text or an expression in the state names (``"x0**2"``), a loss object, or a
        Python function of the final state ``loss(h)`` / ``loss(h, theta)`` /
        ``loss(h, theta, t)``, traced like ``f``.
    t0 : float
    state : list of str or {name: size}, optional
        State names (default ``x0, x1, ...``), or one column ``{"h": n}`` for a
        matrix-level ``f`` (``W @ h`` as one matrix product).
    time : str
    method, solver, rtol, atol, **options
        As for :func:`gradient`.

    Examples
    --------
    >>> import numpy as np
    >>> def decay(t, h, p):
    ...     return -p.k * h
    >>> g = value_and_grad(decay, [2.0], {"k": 0.5}, 1.0, loss=lambda h: h[0] ** 2)
    >>> round(g.loss, 10), round(g.dparams["k"], 8)   # L = 4 e^{-2k}, dL/dk = -8 e^{-2k}
    (1.4715177647, -2.94303553)
    """
    values = {name: np.asarray(v, dtype=float) for name, v in params.items()}
    system = f if isinstance(f, ODESystem) else _traced_system(f, h0, values, state, time)
    if isinstance(loss, str | sp.Basic):
        loss = FinalLoss(loss)
    elif not isinstance(loss, Loss):
        if not callable(loss):
            raise InvalidModelError(f"loss must be text, an expression, a Loss or a function, got {loss!r}")
        loss = FinalLoss(trace_loss(loss, system))
    problem = Problem(system, h0, values, t0, t1, loss)
    return gradient(problem, method, solver=solver, rtol=rtol, atol=atol, **options)


def _traced_system(f: Callable, h0, values: dict, state, time: str) -> ODESystem:
    n = int(np.size(h0))
    names = [f"x{i}" for i in range(n)] if state is None else state
    shapes = {name: (v.shape if v.ndim == 2 else (v.size, 1) if v.ndim == 1 else ()) for name, v in values.items()}
    return ODESystem.from_function(f, names, shapes, time)
