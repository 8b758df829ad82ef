"""The second-order adjoint as algebra: forward-mode rules, the tangent adjoint, its printing.

* :func:`adjoint_sym.symbolic.jvp.jvp` agrees with entry-by-entry differentiation of the
  expanded expression on every node kind the builders produce (products with scalar
  factors, Hadamard products and powers, transposes, elementwise functions whose
  derivative is or is not written in the primal, explicit matrices, scalar entries).
* :class:`SecondOrderAdjoint` equals the textbook formula built from SymPy's own Hessian
  of ``H = a . f + g`` (scalar systems symbolically, matrix-level ones numerically at
  random points), so the forward-over-reverse derivation adds nothing and drops nothing.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from sympy.matrices.expressions.hadamard import HadamardPower

from adjoint_sym import ODESystem, SecondOrderAdjoint, UnsupportedExpressionError
from adjoint_sym.builders import lotka_volterra, neural_ode, two_layer
from adjoint_sym.symbolic.jvp import jvp
from adjoint_sym.symbolic.matrix_calculus import elementwise


def _random_values(symbols, rng) -> dict:
    """A random number per scalar symbol and per entry ``M[i, j]`` of each matrix symbol."""
    values = {}
    for sym in symbols:
        if isinstance(sym, sp.MatrixSymbol):
            rows, cols = (int(d) for d in sym.shape)
            values.update({sym[i, j]: sp.Float(rng.uniform(-1, 1)) for i in range(rows) for j in range(cols)})
        else:
            values[sym] = sp.Float(rng.uniform(-1, 1))
    return values


def _explicit_jvp(expr: sp.MatrixExpr, tangents: dict) -> sp.ImmutableMatrix:
    """``d/d eps expr(x + eps dx)`` entry by entry on the expanded expression."""
    eps = sp.Symbol("eps")
    moves = {}
    for var, d in tangents.items():
        if isinstance(var, sp.MatrixSymbol):
            rows, cols = var.shape
            moves.update({var[i, j]: var[i, j] + eps * d[i, j] for i in range(rows) for j in range(cols)})
        else:
            moves[var] = var + eps * d
    explicit = sp.ImmutableMatrix(expr.as_explicit()) if isinstance(expr, sp.MatrixExpr) else expr
    return explicit.xreplace(moves).diff(eps).subs(eps, 0)


def _numeric(expr, values) -> np.ndarray:
    explicit = sp.ImmutableMatrix(expr.as_explicit()) if isinstance(expr, sp.MatrixExpr) else sp.ImmutableMatrix(expr)
    return np.array(explicit.xreplace(values).evalf(), dtype=float)


W, V = sp.MatrixSymbol("W", 2, 2), sp.MatrixSymbol("V", 2, 2)
h, s = sp.MatrixSymbol("h", 2, 1), sp.MatrixSymbol("s", 2, 1)
b, c = sp.MatrixSymbol("b", 2, 1), sp.MatrixSymbol("c", 2, 1)
t, k, dk = sp.symbols("t k dk", real=True)
softplus = sp.Lambda(sp.Symbol("z"), sp.log(1 + sp.exp(sp.Symbol("z"))))
tanh = sp.Lambda(sp.Symbol("z"), sp.tanh(sp.Symbol("z")))
double = sp.Lambda(sp.Symbol("z"), 2 * sp.Symbol("z"))
NODES = {
    "product with a scalar factor": k * t * (W * h) + b,
    "Hadamard product and power": sp.HadamardProduct(W * h, HadamardPower(W * h + b, 3)),
    "transpose": (h.T * W.T).T,
    "elementwise, derivative in the primal": elementwise(tanh, W * HadamardPower(h, 2) + b),
    "elementwise, derivative not in the primal": elementwise(softplus, W * h),
    "elementwise, constant derivative": elementwise(double, W * h),
    "explicit matrix": sp.ImmutableMatrix([k * h[0, 0] ** 2 * W[0, 1], sp.sin(h[1, 0]) * W[1, 0] * k]),
}


@pytest.mark.parametrize("name", sorted(NODES))
def test_jvp_agrees_with_entrywise_differentiation(name):
    expr = NODES[name]
    tangents = {W: V, h: s, b: c, k: dk}
    rng = np.random.default_rng(0)
    values = _random_values([W, V, h, s, b, c, k, dk, t], rng)
    ours = _numeric(jvp(expr, tangents), values)
    exact = _numeric(_explicit_jvp(expr, tangents), values)
    np.testing.assert_allclose(ours, exact, rtol=1e-12, atol=1e-12)


def test_jvp_of_a_constant_is_zero_of_the_right_shape():
    assert jvp(W * h, {b: c}) == sp.ZeroMatrix(2, 1)
    assert jvp(sp.ImmutableMatrix([t, 1]), {k: dk}) == sp.ImmutableMatrix([0, 0])
    assert jvp(t * 2, {k: dk}) == 0


def test_jvp_refuses_what_it_cannot_differentiate():
    A = sp.MatrixSymbol("A", 2, 2)
    with pytest.raises(UnsupportedExpressionError, match="cannot differentiate the matrix node Inverse"):
        jvp(sp.Inverse(A) * h, {A: sp.MatrixSymbol("dA", 2, 2)})
    with pytest.raises(UnsupportedExpressionError, match="non-constant exponent"):
        jvp(HadamardPower(h, k), {h: s})
    with pytest.raises(UnsupportedExpressionError, match="depends on a variable"):
        jvp(elementwise(sp.Lambda(sp.Symbol("z"), k * sp.Symbol("z")), W * h), {k: dk, h: s})


def _textbook(system: ODESystem, so: SecondOrderAdjoint, g: sp.Expr = sp.S.Zero):
    """``-[f_h^T lam + H_hh s + H_h theta v]`` and ``-[f_theta^T lam + H_theta h s + H_theta theta v]``."""
    h_ = list(system.flat_state)
    th = list(system.flat_params)
    a = list(so.a.as_explicit()) if isinstance(so.a, sp.MatrixSymbol) else list(so.a)
    lam = list(so.lam.as_explicit()) if isinstance(so.lam, sp.MatrixSymbol) else list(so.lam)
    s_ = list(so.s.as_explicit()) if isinstance(so.s, sp.MatrixSymbol) else list(so.s)
    v = []
    for block in so.v_theta:
        v.extend(block.as_explicit() if isinstance(block, sp.MatrixSymbol) else [block])
    f = list(system.explicit_rhs)
    H = sum(ai * fi for ai, fi in zip(a, f)) + g
    Hs = sp.hessian(H, h_ + th)
    J = sp.Matrix(f).jacobian(h_ + th)
    n = len(h_)
    ds = sp.Matrix(s_ + v)
    lam_rate = -(J[:, :n].T * sp.Matrix(lam) + Hs[:n, :] * ds)
    mu_rate = -(J[:, n:].T * sp.Matrix(lam) + Hs[n:, :] * ds)
    return lam_rate, mu_rate, H


def test_scalar_second_order_adjoint_equals_the_textbook_formula():
    system = lotka_volterra()
    so = SecondOrderAdjoint.of(system)
    lam_rate, mu_rate, _ = _textbook(system, so)
    assert sp.simplify(sp.Matrix(so.rhs_lam) - lam_rate) == sp.zeros(2, 1)
    assert sp.simplify(sp.Matrix(so.rhs_mu) - mu_rate) == sp.zeros(4, 1)
    tangent = sp.Matrix(system.explicit_rhs).jacobian([*system.flat_state, *system.flat_params]) * sp.Matrix(
        [*so.s, *so.v_theta]
    )
    assert sp.simplify(sp.Matrix(so.rhs_s) - tangent) == sp.zeros(2, 1)


def test_a_running_cost_enters_through_the_hamiltonian():
    system = ODESystem.from_strings(["x", "y"], ["k"], "t", ["-k*x*y", "x - y"])
    x, y, kk = system.state[0], system.state[1], system.params[0]
    g = x**2 * kk + sp.sin(y) * system.t
    so = SecondOrderAdjoint.of(system, running_cost=g)
    lam_rate, mu_rate, H = _textbook(system, so, g)
    assert sp.simplify(sp.Matrix(so.rhs_lam) - lam_rate) == sp.zeros(2, 1)
    assert sp.simplify(sp.Matrix(so.rhs_mu) - mu_rate) == sp.zeros(1, 1)
    rhs_a = -sp.Matrix([H.diff(x), H.diff(y)])
    assert sp.simplify(sp.Matrix(so.rhs_a) - rhs_a) == sp.zeros(2, 1)
    assert "running_cost" in repr(so) and "running cost" in so.markdown()


@pytest.mark.parametrize(
    "system",
    [neural_ode(2, activation="sigmoid", time="input"), two_layer(1, 2, activation="softplus", input_power=2)],
    ids=["sigmoid layer, time input", "softplus network, h^2 input"],
)
def test_matrix_level_second_order_adjoint_equals_the_textbook_formula(system):
    so = SecondOrderAdjoint.of(system)
    lam_rate, mu_rate, _ = _textbook(system, so)
    rng = np.random.default_rng(2)
    symbols = [system.state[0], so.s, so.a, so.lam, system.t, *system.params, *so.v_theta]
    values = _random_values(symbols, rng)
    ours_lam = _numeric(so.rhs_lam, values).reshape(-1)
    ours_mu = np.concatenate([_numeric(block, values).reshape(-1) for block in so.rhs_mu])
    np.testing.assert_allclose(ours_lam, np.array(lam_rate.xreplace(values), dtype=float).reshape(-1), rtol=1e-10)
    np.testing.assert_allclose(ours_mu, np.array(mu_rate.xreplace(values), dtype=float).reshape(-1), rtol=1e-10)


def test_printing_beside_the_first_order_adjoint():
    so = SecondOrderAdjoint.of(lotka_volterra())
    latex = so.latex()
    assert latex.startswith("\\begin{align}") and latex.endswith("\\end{align}")
    # Lotka-Volterra's parameter a moves the first-order adjoint to lambda, so the tangent
    # adjoints take the next free letters, mu and nu: no two equations share a left-hand side.
    for piece in (r"\frac{d s_{x}}{d t}", r"\frac{d \mu_{y}}{d t}", r"\frac{d \nu_{d}}{d t}", r"(H v)_{h_0}"):
        assert piece in latex
    left_sides = [line.split("&=")[0] for line in latex.splitlines() if line.startswith(r"\frac{d ")]
    assert len(left_sides) == len(set(left_sides)) == 2 + 2 + 6 + 6
    first = so.first_order.latex()
    line = r"\frac{d \lambda_{x}}{d t} &= - d \lambda_{y} y - \lambda_{x} \left(a - b y\right)"
    assert line in first and line in latex  # the same first-order line, in the same letters
    md = so.markdown()
    assert md.count("$$") == 10 and "### Second-order adjoint" in md and "\\begin{aligned}" in md
    text = so.text()
    assert "dmu_x/dt = " in text and "(H v)_h0 = mu(t0)" in text and "\\" not in text
    assert so._repr_latex_().startswith("$$\\begin{aligned}")
    assert repr(so) == "SecondOrderAdjoint(Lotka-Volterra, n=2, n_params=4)"
    with pytest.raises(ValueError, match="environment must be one of"):
        so.latex(environment="equation")


def test_matrix_level_printing_stays_matrix_level():
    so = SecondOrderAdjoint.of(neural_ode(3))
    latex = so.latex()
    assert r"\frac{d \lambda_{h}}{d t}" in latex and r"v_{W}^{T}" in latex and "W_{0, 0}" not in latex
    assert "dmu_W/dt" in so.text()


def test_the_docs_show_the_derivation_as_it_is_printed_today():
    """The rendered block of docs/how-to/second-order.md is the live output, not a stale copy."""
    from pathlib import Path

    page = (Path(__file__).resolve().parents[1] / "docs" / "how-to" / "second-order.md").read_text(encoding="utf-8")
    block = page.split("$$\n")[1].strip()
    assert block == SecondOrderAdjoint.of(lotka_volterra()).latex(environment="aligned")
