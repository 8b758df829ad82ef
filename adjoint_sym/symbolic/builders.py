"""Ready-made systems: the neural right-hand sides of the source note, and classics.

Neural builders stay at the matrix level: weights are :class:`sympy.MatrixSymbol`, the
state is one column ``h``, so deriving and compiling cost the same at any width.

Parameter naming
----------------
=====================  ====================================================
builder                parameters (in the order of the flattened theta)
=====================  ====================================================
:func:`neural_ode`     ``W`` (n, n), ``b`` (n, 1); with ``time="input"`` also
                       ``u`` (n, 1); with ``time="linear"`` also ``V`` (n, n)
                       and ``c`` (n, 1), for ``W(t) = W + t V``, ``b(t) = b + t c``
:func:`two_layer`      ``W1`` (m, n), ``b1`` (m, 1), ``W2`` (n, m), ``b2`` (n, 1);
                       with ``time="input"`` also ``u`` (m, 1)
:func:`linear_system`  ``A`` (n, n)
=====================  ====================================================
"""

from __future__ import annotations

from collections.abc import Callable

import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower

from ..errors import InvalidModelError
from .matrix_calculus import elementwise
from .system import ODESystem


def _swish(x: sp.Expr) -> sp.Expr:
    return x / (1 + sp.exp(-x))


def _gelu(x: sp.Expr) -> sp.Expr:
    return x * (1 + sp.erf(x / sp.sqrt(2))) / 2


#: Smooth activations by name (smooth so that adjoint and complex-step apply).
ACTIVATIONS: dict[str, Callable[[sp.Expr], sp.Expr]] = {
    "tanh": sp.tanh,
    "sigmoid": lambda x: 1 / (1 + sp.exp(-x)),
    "softplus": lambda x: sp.log(1 + sp.exp(x)),
    "sin": sp.sin,
    "swish": _swish,
    "gelu": _gelu,
    "identity": lambda x: x,
}

TIME_MODES = ("none", "input", "linear")


def _activation(name: str) -> sp.Lambda:
    if name not in ACTIVATIONS:
        raise InvalidModelError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    # A fixed bound symbol (not a Dummy) so that two builds of one network are equal
    # systems and share their compiled kernels.
    z = sp.Symbol("z")
    return sp.Lambda(z, ACTIVATIONS[name](z))


def _apply(activation: str, z: sp.MatrixExpr) -> sp.MatrixExpr:
    if activation == "identity":
        return z
    return elementwise(_activation(activation), z)


def _check_size(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidModelError(f"{what} must be a positive integer, got {value!r}")
    return value


def _check_time(time: str) -> str:
    if time not in TIME_MODES:
        raise InvalidModelError(f"time must be one of {TIME_MODES}, got {time!r}")
    return time


def neural_ode(n: int, *, activation: str = "tanh", time: str = "none", name: str = "") -> ODESystem:
    """``dh/dt = sigma(W(t) h + b(t))``: one layer as the right-hand side (the note's C7).

    Parameters
    ----------
    n : int
        State size.
    activation : str
        A key of :data:`ACTIVATIONS`.
    time : {"none", "input", "linear"}
        ``"input"``: ``sigma(W h + t u + b)``; ``"linear"``: ``W(t) = W + t V``,
        ``b(t) = b + t c``.

    Examples
    --------
    >>> sys = neural_ode(3)
    >>> sys.param_names, sys.n_params
    (('W', 'b'), 12)
    """
    n = _check_size(n, "n")
    _check_time(time)
    t = sp.Symbol("t", real=True)
    h = sp.MatrixSymbol("h", n, 1)
    W, b = sp.MatrixSymbol("W", n, n), sp.MatrixSymbol("b", n, 1)
    params: list = [W, b]
    z = W * h + b
    if time == "input":
        u = sp.MatrixSymbol("u", n, 1)
        params.append(u)
        z = W * h + t * u + b
    elif time == "linear":
        V, c = sp.MatrixSymbol("V", n, n), sp.MatrixSymbol("c", n, 1)
        params += [V, c]
        z = W * h + t * (V * h) + b + t * c
    return ODESystem(h, params, t, _apply(activation, z), name=name or f"{activation} layer, n={n}")


def two_layer(
    n: int,
    hidden: int,
    *,
    activation: str = "tanh",
    time: str = "none",
    input_power: int = 1,
    name: str = "",
) -> ODESystem:
    """``dh/dt = W2 sigma(W1 h^p + b1) + b2`` (``h^p`` elementwise; the spiral uses p=3).

    Examples
    --------
    >>> spiral = two_layer(2, 50, input_power=3)
    >>> spiral.n_params
    252
    """
    n = _check_size(n, "n")
    hidden = _check_size(hidden, "hidden")
    input_power = _check_size(input_power, "input_power")
    if _check_time(time) == "linear":
        raise InvalidModelError("two_layer supports time='none' or 'input'")
    t = sp.Symbol("t", real=True)
    h = sp.MatrixSymbol("h", n, 1)
    W1, b1 = sp.MatrixSymbol("W1", hidden, n), sp.MatrixSymbol("b1", hidden, 1)
    W2, b2 = sp.MatrixSymbol("W2", n, hidden), sp.MatrixSymbol("b2", n, 1)
    x = h if input_power == 1 else HadamardPower(h, input_power)
    z = W1 * x + b1
    params: list = [W1, b1, W2, b2]
    if time == "input":
        u = sp.MatrixSymbol("u", hidden, 1)
        params.append(u)
        z = W1 * x + t * u + b1
    rhs = W2 * _apply(activation, z) + b2
    return ODESystem(h, params, t, rhs, name=name or f"{n}-{hidden}-{n} {activation} network")


def linear_system(n: int, *, name: str = "") -> ODESystem:
    """``dh/dt = A h`` with the matrix parameter ``A``."""
    n = _check_size(n, "n")
    t = sp.Symbol("t", real=True)
    h = sp.MatrixSymbol("h", n, 1)
    A = sp.MatrixSymbol("A", n, n)
    return ODESystem(h, [A], t, A * h, name=name or f"linear system, n={n}")


def lotka_volterra() -> ODESystem:
    """``x' = a x - b x y``, ``y' = d x y - c y``."""
    return ODESystem.from_strings(
        ["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y", "d*x*y - c*y"], name="Lotka-Volterra"
    )


def robertson() -> ODESystem:
    """Robertson's stiff chemical kinetics with rate constants ``k1, k2, k3``."""
    return ODESystem.from_strings(
        ["y1", "y2", "y3"],
        ["k1", "k2", "k3"],
        "t",
        ["-k1*y1 + k3*y2*y3", "k1*y1 - k2*y2**2 - k3*y2*y3", "k2*y2**2"],
        name="Robertson",
    )


def sir() -> ODESystem:
    """The SIR epidemic model with states ``S, I, R`` and rates ``beta, gamma``."""
    return ODESystem.from_strings(
        ["S", "I", "R"], ["beta", "gamma"], "t", ["-beta*S*I", "beta*S*I - gamma*I", "gamma*I"], name="SIR"
    )
