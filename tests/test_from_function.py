"""A user's own Python right-hand side, traced into a system: ``ODESystem.from_function``.

A traced function must give the very system the text or the builders give (so the same
kernels, the same gradients), whatever argument convention it uses; what cannot be traced
is refused with a message that says why.  ``value_and_grad`` is the one-call route.
"""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import sympy as sp

from adjoint_sym import (
    FinalLoss,
    InvalidModelError,
    ODESystem,
    Problem,
    UnsupportedExpressionError,
    gradient,
    value_and_grad,
)
from adjoint_sym.builders import lotka_volterra, two_layer
from adjoint_sym.symbolic.standins import Matrix, Scalar

LV_TEXT = ODESystem.from_strings(["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y", "d*x*y - c*y"])
LV_PARAMS = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}


def lv_attributes(t, h, p):
    x, y = h
    return [p.a * x - p.b * x * y, p.d * x * y - p.c * y]


def lv_items(t, h, p):
    return np.array([p["a"] * h[0] - p["b"] * h[0] * h[1], p["d"] * h[0] * h[1] - p["c"] * h[1]])


def lv_unpacked(t, h, theta):
    a, b, c, d = theta
    x, y = h
    return (a * x - b * x * y, d * x * y - c * y)


def lv_args(t, h, *args):  # scipy's solve_ivp(fun, ..., args=(a, b, c, d))
    a, b, c, d = args
    return [a * h[0] - b * h[0] * h[1], d * h[0] * h[1] - c * h[1]]


def lv_by_name(x, y, a, b, c, d):
    return [a * x - b * x * y, d * x * y - c * y]


def lv_odeint_order(z, t, p):  # scipy's odeint: func(y, t, ...); t is bound by its name
    return [p.a * z[0] - p.b * z[0] * z[1], p.d * z[0] * z[1] - p.c * z[1]]


@pytest.mark.parametrize("f", [lv_attributes, lv_items, lv_unpacked, lv_args, lv_by_name, lv_odeint_order])
def test_every_argument_convention_gives_the_system_of_the_text(f):
    traced = ODESystem.from_function(f, ["x", "y"], ["a", "b", "c", "d"])
    assert traced == LV_TEXT, traced
    assert traced == lotka_volterra()


def test_a_traced_system_has_the_gradient_of_the_text():
    traced = ODESystem.from_function(lv_attributes, ["x", "y"], ["a", "b", "c", "d"])
    loss = FinalLoss("x**2 + y**2")
    g_traced = gradient(Problem(traced, [1.0, 1.0], LV_PARAMS, 0.0, 2.0, loss))
    g_text = gradient(Problem(LV_TEXT, [1.0, 1.0], LV_PARAMS, 0.0, 2.0, loss))
    # equal systems share their kernels: the same computation, bit for bit
    assert g_traced.loss == g_text.loss and np.array_equal(g_traced.dtheta, g_text.dtheta)


def test_numpy_functions_of_the_state_vector_trace_entry_by_entry():
    def f(t, h, p):
        return -p.k * h + np.sin(t) * np.exp(-h) + np.maximum(h, 0) - np.tanh(h) ** 2

    traced = ODESystem.from_function(f, ["u", "v"], ["k"])
    u, v, k, t = sp.symbols("u v k t", real=True)
    expected = [-k * s + sp.sin(t) * sp.exp(-s) + sp.Max(0, s) - sp.tanh(s) ** 2 for s in (u, v)]
    # The system's Max is the library's (derivative 0/1, no DiracDelta), not SymPy's class:
    # compare values, on both sides of the kink.
    for point in ({u: 0.3, v: -0.4, k: 0.7, t: 1.1}, {u: -1.2, v: 2.5, k: -0.3, t: 0.2}):
        assert [float(g.subs(point)) for g in traced.rhs] == pytest.approx([float(w.subs(point)) for w in expected])


def test_the_np_argument_gets_the_namespace_with_sigmoid_and_softplus():
    def f(t, h, p, np):
        return [np.sigmoid(p.w * h[0]) - np.softplus(h[0]) + np.pi]

    (rhs,) = ODESystem.from_function(f, ["x"], ["w"]).rhs
    x, w = sp.symbols("x w", real=True)
    assert sp.simplify(rhs - (1 / (1 + sp.exp(-w * x)) - sp.log(1 + sp.exp(x)) + sp.pi)) == 0


def test_matrix_parameters_of_a_scalar_system_are_arrays_of_entries():
    traced = ODESystem.from_function(lambda t, h, A, b: A @ h + b.ravel(), ["x", "y"], {"A": (2, 2), "b": (2, 1)})
    text = ODESystem.from_strings(
        ["x", "y"], {"A": (2, 2), "b": (2, 1)}, "t", ["A[0,0]*x + A[0,1]*y + b[0,0]", "A[1,0]*x + A[1,1]*y + b[1,0]"]
    )
    assert traced == text


def test_a_matrix_level_network_traces_to_the_builders_system():
    def spiral(t, h, W1, b1, W2, b2):
        return W2 @ np.tanh(W1 @ h**3 + b1) + b2

    shapes = {"W1": (50, 2), "b1": (50, 1), "W2": (2, 50), "b2": (2, 1)}
    traced = ODESystem.from_function(spiral, {"h": 2}, shapes)
    assert traced == two_layer(2, 50, input_power=3), "the same matrix-level tree: the same kernels and adjoint"
    assert traced.is_matrix_level and traced.n_params == 252


def test_matrix_level_operators_mean_what_they_mean_in_numpy():
    def f(t, h, W, c):
        return (W @ h) * h / 2.0 - c * h.T.T + np.maximum(W @ h, 0.0) ** 2 - 1.0

    traced = ODESystem.from_function(f, {"h": 2}, {"W": (2, 2), "c": ()})
    rng = np.random.default_rng(0)
    W, h, c = rng.standard_normal((2, 2)), rng.standard_normal(2), 0.7
    values = {traced.params[0]: sp.ImmutableMatrix(W), traced.params[1]: c, traced.state[0]: sp.ImmutableMatrix(h)}
    got = np.array(traced.rhs.subs(values).doit().as_explicit(), dtype=float).ravel()
    z = W @ h
    assert np.allclose(got, z * h / 2 - c * h + np.maximum(z, 0) ** 2 - 1, rtol=1e-14)


# -- what cannot be traced is refused, saying why ----------------------------------------------


def _branching(t, h, p):
    return [h[0] if h[0] > 0 else -h[0], h[1]]


def _calls_math(t, h, p):
    return [math.sin(h[0]), h[1]]


def _converts(t, h, p):
    return [float(h[0]), h[1]]


def _floor(t, h, p):
    return [np.floor(h[0]), h[1]]


def _rint_of_plain_array(t, h, p):
    return np.rint(np.array(list(h)))  # numpy's object loop asks each entry for a rint method


def _random(t, h, p):
    return [random.random() * h[0], h[1]]


def _assigns(t, h, p):
    h[0] = 1.0
    return h


def _adds_in_place(t, h, p):
    h += 1.0
    return h


def _where(t, h, p):
    return [np.where(h[0] > 0, h[0], 0.0), h[1]]


def _outer(t, h, p):
    return [np.add.outer(h[0], h[1]), h[1]]


def _string(t, h, p):
    return [h[0] + "1", h[1]]


def _undeclared(t, h, p):
    return [p.zz * h[0], h[1]]


def _scalar_matmul(t, h, p):
    return [np.matmul(np.array([[1.0]]), h[0]), h[1]]


SCALAR_REFUSALS = {
    "a branch on a symbol": (_branching, UnsupportedExpressionError, "f branches on the value of a symbol (x > 0"),
    "math.sin": (_calls_math, UnsupportedExpressionError, "f turns the symbol x into a number"),
    "float()": (_converts, UnsupportedExpressionError, "f turns the symbol x into a number"),
    "np.floor": (_floor, UnsupportedExpressionError, "numpy.floor is not traced; the traced functions are abs"),
    "np.rint of a plain array": (_rint_of_plain_array, UnsupportedExpressionError, "numpy.rint is not traced"),
    "random numbers": (_random, UnsupportedExpressionError, "gave different results on two calls"),
    "assignment": (_assigns, UnsupportedExpressionError, "f assigns into one of its arguments"),
    "in-place update": (_adds_in_place, UnsupportedExpressionError, "f assigns into one of its arguments"),
    "np.where": (_where, UnsupportedExpressionError, "numpy.where is not traced"),
    "a ufunc method": (_outer, UnsupportedExpressionError, "numpy.add.outer (or its keyword arguments) is not traced"),
    "a string": (_string, UnsupportedExpressionError, "f combined a symbol with str '1'"),
    "an undeclared parameter": (_undeclared, UnsupportedExpressionError, "f reads the parameter 'zz', which is not"),
    "@ with a scalar": (_scalar_matmul, UnsupportedExpressionError, "@ needs two matrices or two arrays"),
    "too few values": (lambda t, h, p: [h[0]], InvalidModelError, "f returned 1 values but the state has 2"),
    "not a sequence": (lambda t, h, p: {"x": h[0]}, InvalidModelError, "f returned dict; return one expression"),
    "an unbound argument": (lambda t, h, p, q: h, InvalidModelError, "argument 'q' of <lambda> is neither a declared"),
    "the user's own error": (lambda t, h, p: [{}["k"], h[1]], InvalidModelError, "f raised KeyError while traced"),
    "the user's own TypeError": (lambda t, h, p: len(5), InvalidModelError, "f raised TypeError while traced"),
}


@pytest.mark.parametrize("case", list(SCALAR_REFUSALS))
def test_scalar_refusals_say_why(case):
    f, error, message = SCALAR_REFUSALS[case]
    with pytest.raises(error) as info:
        ODESystem.from_function(f, ["x", "y"], ["k"])
    assert message in str(info.value), str(info.value)


MATRIX = {"h": 2}
WEIGHTS = {"W": (2, 2), "V": (3, 2), "c": ()}
MATRIX_REFUSALS = {
    "a slice": (lambda t, h, W, V, c: W @ h[0:1], "f slices h[slice(0, 1, None)]"),
    "shapes that broadcast": (lambda t, h, W, V, c: h + V @ h, "a sum of shapes (2, 1) and (3, 1)"),
    "@ with a number": (lambda t, h, W, V, c: W @ 2.0, "both sides of @ must be matrices"),
    "a number @": (lambda t, h, W, V, c: 2 @ h, "both sides of @ must be matrices"),
    "an array @": (lambda t, h, W, V, c: np.eye(2) @ h, "@ needs two matrices or two arrays"),
    "a symbolic exponent": (lambda t, h, W, V, c: h**c, "an entry-wise power needs a constant exponent"),
    "maximum of two matrices": (lambda t, h, W, V, c: np.maximum(h, W @ h), "numpy.maximum of two matrices"),
    "np.floor of a matrix": (lambda t, h, W, V, c: np.floor(h), "numpy.floor of a matrix is not traced"),
    "np.concatenate": (lambda t, h, W, V, c: np.concatenate([h, h]), "numpy.concatenate is not traced"),
    "a matrix of the wrong shape": (lambda t, h, W, V, c: V @ h, "f returned a matrix of shape (3, 1)"),
    "an assignment": (lambda t, h, W, V, c: h.__setitem__(0, 1.0), "f assigns into h[0]"),
}


@pytest.mark.parametrize("case", list(MATRIX_REFUSALS))
def test_matrix_level_refusals_say_why(case):
    f, message = MATRIX_REFUSALS[case]
    with pytest.raises((UnsupportedExpressionError, InvalidModelError)) as info:
        ODESystem.from_function(f, MATRIX, WEIGHTS)
    assert message in str(info.value), str(info.value)


@pytest.mark.parametrize(
    ("state", "params", "message"),
    [
        ({"h": 2, "g": 2}, [], "a matrix-level state is one column"),
        ({"h": 0}, [], "state 'h': the size must be a positive integer"),
        ("x", [], "state must be a list of names or {name: size}"),
        (["x"], "k", "params must be a list of names or a mapping of name to shape"),
        (["x y"], [], "state: 'x y' is not a valid name"),
        (["x"], {"W": (2, 2, 2)}, "params['W']: the shape must be () or (rows, cols)"),
    ],
)
def test_bad_declarations_are_refused(state, params, message):
    with pytest.raises(InvalidModelError) as info:
        ODESystem.from_function(lambda t, h, p: h, state, params)
    assert message in str(info.value)


def test_a_function_is_required():
    with pytest.raises(InvalidModelError, match="f must be a function, got str"):
        ODESystem.from_function("a*x", ["x"], ["a"])


def test_a_comparison_has_no_truth_value_and_a_symbol_no_number():
    x = Scalar(sp.Symbol("x"))
    with pytest.raises(UnsupportedExpressionError, match="branches on the value"):
        bool(x <= 1)
    with pytest.raises(UnsupportedExpressionError, match="into a number"):
        int(x)
    assert isinstance(np.cos(x), Scalar) and isinstance(np.tanh(Matrix(sp.MatrixSymbol("h", 2, 1))), Matrix)


# -- value_and_grad: one call ---------------------------------------------------------------------


def test_value_and_grad_matches_the_closed_form():
    """x' = -k x, L = x(T)^2 = x0^2 e^{-2kT}: dL/dx0 = 2 x0 e^{-2kT}, dL/dk = -2T L."""
    x0, k, T = 2.0, 0.5, 1.5
    g = value_and_grad(lambda t, h, p: -p.k * h, [x0], {"k": k}, T, loss=lambda h: h[0] ** 2, rtol=1e-11, atol=1e-13)
    L = x0**2 * np.exp(-2 * k * T)
    # rtol 1e-11 forward and backward: 1e-8 relative leaves three decades of margin
    assert g.loss == pytest.approx(L, rel=1e-9)
    assert g.dh0[0] == pytest.approx(2 * x0 * np.exp(-2 * k * T), rel=1e-8)
    assert g.dparams["k"] == pytest.approx(-2 * T * L, rel=1e-8)
    assert g.dt1 == pytest.approx(-2 * k * L, rel=1e-8)


def test_value_and_grad_takes_text_in_the_default_names_and_a_matrix_level_state():
    g = value_and_grad(lv_attributes, [1.0, 1.0], LV_PARAMS, 1.0, loss="x0**2 + x1**2")
    ref = gradient(Problem(LV_TEXT, [1.0, 1.0], LV_PARAMS, 0.0, 1.0, FinalLoss("x**2 + y**2")))
    assert g.loss == pytest.approx(ref.loss, rel=1e-12) and np.allclose(g.dtheta, ref.dtheta, rtol=1e-10)
    rng = np.random.default_rng(1)
    weights = {"W": 0.5 * rng.standard_normal((2, 2)), "b": rng.standard_normal(2)}
    net = value_and_grad(
        lambda t, h, W, b: np.tanh(W @ h + b), [0.3, -0.2], weights, 1.0, loss=lambda h: h[0] * h[1], state={"h": 2}
    )
    assert net.dparams["W"].shape == (2, 2) and net.dparams["b"].shape == (2, 1)


def test_value_and_grad_refuses_a_loss_it_cannot_read():
    with pytest.raises(InvalidModelError, match="loss must be text, an expression, a Loss or a function, got 3"):
        value_and_grad(lv_attributes, [1.0, 1.0], LV_PARAMS, 1.0, loss=3)
    with pytest.raises(InvalidModelError, match="the loss returned an array of shape \\(2,\\); return one number"):
        value_and_grad(lv_attributes, [1.0, 1.0], LV_PARAMS, 1.0, loss=lambda h: h)
    with pytest.raises(UnsupportedExpressionError, match="the loss gave different results on two calls"):
        value_and_grad(lv_attributes, [1.0, 1.0], LV_PARAMS, 1.0, loss=lambda h: random.random() * h[0])
