"""Trace a plain Python right-hand side into SymPy: ``ODESystem.from_function``.

The function is called with stand-ins for its arguments that record what it does: scalar
stand-ins for the time, scalar states and scalar parameters, NumPy object arrays of them for
a vector of states and for matrix parameters of a scalar system, and matrix stand-ins (with
NumPy's meaning of ``@``, ``*``, ``**``, ``.T``) for the column state and the weights of a
matrix-level system.  NumPy's functions work on them through NumPy's own protocols
(``np.sin(x)``, ``np.tanh(W @ h + b)``), so an existing function traces unchanged; the
namespace :data:`adjoint_sym.symbolic.standins.numpy` (with ``sigmoid``, ``softplus``,
``erf``) is handed to an argument named ``np``.  The stand-ins live in
:mod:`adjoint_sym.symbolic.standins`.

What cannot be traced is refused, saying why: a branch on a symbol's value (``if x > 0``),
a symbol turned into a number (``float(x)``, ``math.sin(x)``), a NumPy function outside the
traced set, assignment into an argument, and a function that gives different results on two
calls (random numbers, counters, changing global state).

Examples
--------
>>> import numpy as np
>>> def lotka_volterra(t, h, p):
...     x, y = h
...     return [p.a * x - p.b * x * y, p.d * x * y - p.c * y]
>>> trace(lotka_volterra, ["x", "y"], ["a", "b", "c", "d"]).rhs
[a*x - b*x*y, -c*y + d*x*y]
>>> trace(lambda t, h, W, b: np.tanh(W @ h + b), {"h": 2}, {"W": (2, 2), "b": (2, 1)}).rhs
Lambda(z, tanh(z)).(W*h + b)
"""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import sympy as sp

from ..errors import InvalidModelError, UnsupportedExpressionError
from .standins import Matrix, Scalar, array_of, numpy, refuse, to_sympy, traced_names


class Params:
    """The parameters as one argument: ``p.a``, ``p["a"]``, ``p[0]``, ``a, b = p``, ``**p``."""

    def __init__(self, names: Sequence[str], values: Sequence[object]) -> None:
        self._names, self._values = list(names), list(values)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[self._names.index(name)]
        except ValueError:
            raise refuse(f"f reads the parameter {name!r}, which is not declared (params: {self._names})") from None

    def __getitem__(self, key):
        if isinstance(key, str):
            return self.__getattr__(key)
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def items(self) -> list[tuple[str, object]]:
        return list(zip(self._names, self._values))

    def values(self) -> list[object]:
        return list(self._values)


def trace(
    f: Callable,
    state: Sequence[str] | Mapping[str, int],
    params: Sequence[str] | Mapping[str, object] = (),
    time: str = "t",
) -> types.SimpleNamespace:
    """Call ``f`` on stand-ins and return the traced ``state``, ``params``, ``t`` and ``rhs``.

    See :meth:`adjoint_sym.ODESystem.from_function`, which builds the system from them.
    """
    if not callable(f):
        raise InvalidModelError(f"f must be a function, got {type(f).__name__}")
    decl = _declare(state, params, time)
    first = _call(f, decl)
    if _call(f, decl) != first:  # fresh stand-ins, same function: a pure f gives the same expressions
        raise refuse(
            "f gave different results on two calls with the same symbols; it reads random numbers, a counter or "
            "global state that changes. Make it a function of its arguments only"
        )
    state_out = decl.state[0] if decl.matrix else decl.state  # the column, or the list of scalar states
    return types.SimpleNamespace(state=state_out, params=decl.params, t=decl.t, rhs=first)


def trace_loss(loss: Callable, system) -> sp.Expr:
    """Trace a loss ``loss(h)``, ``loss(h, p)`` or ``loss(h, p, t)`` of the final state into one expression.

    Arguments named like a state, a parameter or the time get that symbol; the others, in
    order, the state (as for the right-hand side), the parameters and the time.
    """
    matrix = system.is_matrix_level
    by_name = {s.name: _stand_in(s, matrix) for s in [*system.state, *system.params, system.t]}
    h = by_name[system.state[0].name] if matrix else array_of([by_name[s.name] for s in system.state])
    theta = Params(list(system.param_names), [by_name[p.name] for p in system.params])
    slots = {"h": h, "theta": theta, "t": by_name[system.t.name]}
    values = []
    for _ in range(2):  # twice: a pure loss gives the same expression
        args, kwargs = _bind(loss, by_name, slots, ("h", "theta", "t"), _filled(loss, system))
        out = _guarded(loss, args, kwargs, "loss")
        if isinstance(out, np.ndarray) and out.size == 1:
            out = out.reshape(-1)[0]
        if not isinstance(out, Scalar | int | float) or isinstance(out, bool):
            what = f"an array of shape {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            raise InvalidModelError(f"the loss returned {what}; return one number (a scalar expression)")
        values.append(to_sympy(out))
    if values[0] != values[1]:
        raise refuse("the loss gave different results on two calls with the same symbols; make it pure")
    return values[0]


def _filled(f: Callable, system) -> dict[str, bool]:
    names = _signature_names(f)
    return {
        "t": system.t.name in names,
        "h": any(s.name in names for s in system.state),
        "theta": any(p.name in names for p in system.params),
    }


def _signature_names(f: Callable) -> list[str]:
    try:
        return list(inspect.signature(f).parameters)
    except (TypeError, ValueError):
        return []


def _declare(state, params, time: str) -> types.SimpleNamespace:
    if isinstance(state, Mapping):
        if len(state) != 1:
            raise InvalidModelError(f"a matrix-level state is one column, given as {{name: size}}; got {dict(state)}")
        ((name, size),) = state.items()
        _check_name(name, "state")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise InvalidModelError(f"state {name!r}: the size must be a positive integer, got {size!r}")
        states: list = [sp.MatrixSymbol(name, size, 1)]
    elif isinstance(state, str) or not isinstance(state, Sequence) or not state:
        raise InvalidModelError(f"state must be a list of names or {{name: size}} for a column, got {state!r}")
    else:
        states = [sp.Symbol(_check_name(s, "state"), real=True) for s in state]
    shapes = dict(params) if isinstance(params, Mapping) else dict.fromkeys(_names(params, "params"), ())
    symbols = [_param_symbol(_check_name(p, "params"), shape) for p, shape in shapes.items()]
    t = sp.Symbol(_check_name(time, "time"), real=True)
    return types.SimpleNamespace(state=states, params=symbols, t=t, matrix=isinstance(state, Mapping))


def _names(names: object, what: str) -> list[str]:
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise InvalidModelError(f"{what} must be a list of names or a mapping of name to shape, got {names!r}")
    return list(names)


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or name.startswith("__"):
        raise InvalidModelError(f"{what}: {name!r} is not a valid name; use letters, digits and '_'")
    return name


def _param_symbol(name: str, shape: object) -> sp.Basic:
    if shape in ((), None, 1):
        return sp.Symbol(name, real=True)
    if isinstance(shape, int) and not isinstance(shape, bool) and shape > 0:
        return sp.MatrixSymbol(name, shape, 1)
    if isinstance(shape, Sequence) and len(shape) in (1, 2) and all(isinstance(d, int) and d > 0 for d in shape):
        return sp.MatrixSymbol(name, shape[0], shape[1] if len(shape) == 2 else 1)
    raise InvalidModelError(f"params[{name!r}]: the shape must be () or (rows, cols), got {shape!r}")


def _stand_in(symbol: sp.Basic, matrix_level: bool) -> object:
    if isinstance(symbol, sp.MatrixSymbol):
        if matrix_level:
            return Matrix(symbol)
        rows, cols = symbol.shape
        return array_of([[Scalar(symbol[i, j]) for j in range(cols)] for i in range(rows)])
    return Scalar(symbol)


def _call(f: Callable, decl) -> list[sp.Basic] | sp.MatrixExpr:
    matrix = decl.matrix
    by_name = {s.name: _stand_in(s, matrix) for s in [*decl.state, *decl.params, decl.t]}
    h = by_name[decl.state[0].name] if matrix else array_of([by_name[s.name] for s in decl.state])
    theta = Params([p.name for p in decl.params], [by_name[p.name] for p in decl.params])
    slots = {"t": by_name[decl.t.name], "h": h, "theta": theta}
    args, kwargs = _bind(f, by_name, slots, ("t", "h", "theta"), _filled(f, decl))
    before = [_snapshot(v) for v in (h, *theta.values())]
    out = _guarded(f, args, kwargs, "f")
    if [_snapshot(v) for v in (h, *theta.values())] != before:
        raise refuse("f assigns into one of its arguments (h[...] = ..., h += ...); build a new array instead")
    return _result(out, decl)


def _snapshot(value: object) -> object:
    return [id(v) for v in value.flat] if isinstance(value, np.ndarray) else id(value)


def _bind(f: Callable, by_name: dict, slots: dict, order: tuple, filled: dict) -> tuple[list, dict]:
    """Arguments for ``f``: declared names by name, then the unfilled ``slots`` in ``order``."""
    try:
        signature = inspect.signature(f)
    except (TypeError, ValueError):
        return [slots[k] for k in order], {}
    free = [slot for slot in order if not filled[slot]]
    args, kwargs = [], {}
    for p in signature.parameters.values():
        if p.kind is p.VAR_POSITIONAL:
            if "theta" in free:  # f(t, y, *args): scipy's args=, the parameters one by one
                args += [slots[k] for k in free[: free.index("theta")]] + list(slots["theta"])
                free = free[free.index("theta") + 1 :]
            continue
        if p.kind is p.VAR_KEYWORD:
            continue
        if p.name in ("np", "numpy"):
            value = numpy
        elif p.name in by_name:
            value = by_name[p.name]
        elif free and p.kind is not p.KEYWORD_ONLY:
            value = slots[free.pop(0)]
        elif p.default is not p.empty:
            continue
        else:
            declared = ", ".join(by_name)
            raise InvalidModelError(
                f"argument {p.name!r} of {getattr(f, '__name__', 'f')} is neither a declared name ({declared}) nor one "
                f"of the positions ({', '.join(order)}); name it after a state, a parameter or the time"
            )
        if p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = value
        else:
            args.append(value)
    return args, kwargs


def _guarded(f: Callable, args: list, kwargs: dict, what: str):
    """Call ``f`` on stand-ins; the user's own exceptions are reported as theirs."""
    try:
        return f(*args, **kwargs)
    except UnsupportedExpressionError:
        raise
    except TypeError as exc:
        if "which has no callable" in str(exc):  # numpy's loop over an object array met an untraced function
            name = str(exc).split("no callable ")[-1].split(" method")[0]
            raise refuse(f"numpy.{name} is not traced; the traced functions are {traced_names()}") from None
        raise InvalidModelError(f"{what} raised TypeError while traced with symbols: {exc}") from exc
    except Exception as exc:  # the user's code: report it as theirs
        raise InvalidModelError(f"{what} raised {type(exc).__name__} while traced with symbols: {exc}") from exc


def _result(out: object, decl) -> list[sp.Basic] | sp.MatrixExpr:
    if isinstance(out, Matrix):
        if not decl.matrix or out.shape != tuple(decl.state[0].shape):
            raise InvalidModelError(f"f returned a matrix of shape {out.shape}; the state has shape {_shape(decl)}")
        return out.e
    if isinstance(out, Scalar | int | float) and not isinstance(out, bool):
        out = [out]
    if isinstance(out, np.ndarray | list | tuple):
        entries = list(np.asarray(out, dtype=object).reshape(-1))
        n = int(decl.state[0].shape[0]) if decl.matrix else len(decl.state)
        if len(entries) != n:
            raise InvalidModelError(f"f returned {len(entries)} values but the state has {n}; return one per state")
        return [to_sympy(e) for e in entries]
    raise InvalidModelError(f"f returned {type(out).__name__}; return one expression per state (a list or array)")


def _shape(decl) -> tuple:
    return tuple(int(d) for d in decl.state[0].shape) if decl.matrix else (len(decl.state),)


__all__ = ["Params", "numpy", "trace", "trace_loss"]
