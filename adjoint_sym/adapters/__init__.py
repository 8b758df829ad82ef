"""Adapters: an :class:`~adjoint_sym.symbolic.system.ODESystem` as PyTorch and JAX code.

Optional extras, imported only when used: ``adjoint_sym.adapters.torch`` needs
``torch`` and ``torchdiffeq``, ``adjoint_sym.adapters.jax`` needs ``jax``.  Each offers the
system as the library's native right-hand side and a ready gradient function, built on
that library's own adjoint, that :func:`adjoint_sym.testing.check_gradient_function`
can verify against adjoint_sym's references::

    from adjoint_sym.adapters.torch import torchdiffeq_gradient
    check_gradient_function(torchdiffeq_gradient)

The translation from SymPy is shared here: every expression entry is printed with the
backend's functions (``torch.tanh``, ``jax.numpy.exp``, ...) through SymPy's
``lambdify``, which generates code and never ``eval``s user text.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from types import ModuleType

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from ..errors import InvalidModelError
from ..numeric.loss import CallableLoss
from ..numeric.problem import Problem, unflatten_params
from ..symbolic.system import ODESystem

#: SymPy function names the adapters translate (the parser's smooth whitelist).
FUNCTION_NAMES = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "log", "sqrt", "erf")


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or explain which extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"this adapter needs {module!r}: pip install {extra}") from exc


class _BackendPrinter(PythonCodePrinter):
    """Python code calling the backend's functions by name; ``sqrt`` too (not ``math.sqrt``)."""

    def _print_Pow(self, expr, rational=False):
        return self._hprint_Pow(expr, rational=rational, sqrt="sqrt")


def backend_function(args: Sequence[sp.Basic], exprs: Sequence[sp.Expr], functions: Mapping[str, Callable]) -> Callable:
    """``(*values) -> list`` evaluating ``exprs`` with the backend's ``functions``.

    ``args`` may be symbols or matrix elements (``h[0, 0]``, ``W[1, 2]``); they are
    replaced by dummies first.  A function outside ``functions`` is refused by name.

    Examples
    --------
    >>> import math
    >>> x = sp.Symbol("x")
    >>> fn = backend_function([x], [sp.sqrt(x) + sp.pi, sp.Integer(2)], {"sqrt": math.sqrt})
    >>> [round(v, 6) for v in fn(4.0)]
    [5.141593, 2]
    """
    dummies = [sp.Dummy(f"a{i}") for i in range(len(args))]
    replace = dict(zip(args, dummies))
    exprs = [sp.sympify(e).xreplace(replace) for e in exprs]
    for e in exprs:
        for f in e.atoms(sp.Function):
            name = type(f).__name__
            if name not in functions:
                raise InvalidModelError(f"the adapter cannot translate {name!r}; supported: {', '.join(functions)}")
    printer = _BackendPrinter(
        {"fully_qualified_modules": False, "inline": True, "user_functions": {k: k for k in functions}}
    )
    return sp.lambdify(dummies, exprs, modules=[dict(functions), "math"], printer=printer)


def rhs_function(system: ODESystem, functions: Mapping[str, Callable]) -> Callable:
    """``(t, *h_entries, *theta_entries) -> list of n`` entries of ``f``."""
    args = [system.t, *system.flat_state, *system.flat_params]
    return backend_function(args, list(system.explicit_rhs), functions)


def loss_expressions(problem: Problem) -> tuple[sp.Expr, ...]:
    """The loss read at each observation time, as SymPy (hashable: a cache key)."""
    if isinstance(problem.loss, CallableLoss):
        raise InvalidModelError("the adapters translate expression losses only, not CallableLoss")
    if problem.running_cost is not None:
        raise InvalidModelError(
            "the adapters translate point losses only, not a running cost (IntegralLoss): torchdiffeq and diffrax "
            "integrate no running cost; use adjoint_sym.gradient, whose routes all do"
        )
    return tuple(problem.loss.expressions(problem.system, len(problem.times)))


def loss_functions(problem: Problem, functions: Mapping[str, Callable]) -> list[Callable]:
    """One ``(t, *h_entries, *theta_entries) -> [value]`` per observation time."""
    return expression_loss_functions(problem.system, loss_expressions(problem), functions)


def expression_loss_functions(
    system: ODESystem, exprs: Sequence[sp.Expr], functions: Mapping[str, Callable]
) -> list[Callable]:
    """One ``(t, *h_entries, *theta_entries) -> [value]`` per expression of ``exprs``."""
    args = [system.t, *system.flat_state, *system.flat_params]
    return [backend_function(args, [e], functions) for e in exprs]


def check_times(problem: Problem) -> None:
    """The libraries need strictly monotone times: an observation at ``t0`` is refused."""
    if problem.times[0] == problem.t0:
        raise InvalidModelError(
            f"an observation at t0 = {problem.t0} cannot be passed to odeint (times must be strictly monotone); "
            "move it after t0"
        )


def named(problem: Problem, dtheta) -> dict:
    """A flat ``dL/dtheta`` (numpy) as ``{name: value}`` in each parameter's shape."""
    import numpy as np

    return unflatten_params(problem.system, np.asarray(dtheta, dtype=float))


__all__ = [
    "FUNCTION_NAMES",
    "backend_function",
    "check_times",
    "expression_loss_functions",
    "loss_expressions",
    "loss_functions",
    "named",
    "require",
    "rhs_function",
]
