"""The one gate between SymPy and the kernels: refusals that name the piece, and the
non-smooth functions made differentiable by the conventions of automatic differentiation."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from adjoint_sym import FinalLoss, ODESystem, Problem, gradient, limits
from adjoint_sym.errors import InvalidModelError, UnsupportedExpressionError
from adjoint_sym.numeric.compile import Argument, compile_kernel, scalar_argument
from adjoint_sym.symbolic import validate
from adjoint_sym.symbolic.validate import canonical

x, k, t = sp.symbols("x k t", real=True)
W = sp.MatrixSymbol("W", 2, 2)
h = sp.MatrixSymbol("h", 2, 1)


# -- refusals: each names the piece and what to write instead ---------------------------
@pytest.mark.parametrize(
    ("expr", "message"),
    [
        (x / 0, "complex infinity (zoo, from a division by zero"),
        (sp.nan * x, "an undefined value (nan"),
        (sp.oo * x, "an infinite value (oo)"),
        (sp.sqrt(-1) * x, "the imaginary unit I (from sqrt(-1)"),
        (sp.log(-2) * x, "the imaginary unit I"),
        (sp.asin(2) * x, "'asin(2)' is not real"),
        (sp.Float(1e308) * sp.Float(1e308) * x, "a constant of about 1e616"),
        (sp.exp(sp.Float(1e308)) * x, "beyond the range of float64"),
        (sp.exp(800) * x, "'exp(800)' is beyond the range of float64"),
        (sp.Integer(9) ** 2000 * x, "a constant of about 1908 digits"),
        (sp.Rational(1, 10**400) * x, "digits is beyond the range"),
        (sp.Function("f")(x), "'f(x)' is an undefined function"),
        (sp.Integral(x, t), "add a state q with dq/dt = the integrand"),
        (sp.Derivative(sp.Function("g")(x), x), "unevaluated derivative"),
        (sp.Piecewise((x, x > 0), (0, True)), "write the branches with Max, Min, sign or Heaviside"),
        (sp.DiracDelta(x), "is a distribution (the derivative of a step)"),
        (sp.LambertW(x), "uses the function LambertW, which is not supported"),
        (sp.Lt(x, 1), "is a condition, not a number"),
        (sp.Inverse(W) * h, "(Inverse) is not supported"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_what_the_kernels_cannot_take_is_refused_by_name(expr, message):
    with pytest.raises(UnsupportedExpressionError, match=r"^rhs\[0\]: ") as info:
        canonical(expr, "rhs[0]")
    assert message in str(info.value), str(info.value)


def test_the_api_refuses_through_the_system_and_the_loss():
    """The gate runs at construction, for SymPy input as for text: no printer error later."""
    with pytest.raises(InvalidModelError, match=r"rhs\[0\]: 'f\(x\)' is an undefined function"):
        ODESystem([x], [k], t, [sp.Function("f")(x)])
    with pytest.raises(InvalidModelError, match=r"rhs\[0\]: 'Integral\(x, t\)' cannot be evaluated"):
        ODESystem([x], [k], t, [sp.Integral(x, t)])
    decay = ODESystem([x], [k], t, [-k * x])
    with pytest.raises(InvalidModelError, match=r"loss.expr: 'DiracDelta\(x\)' is a distribution"):
        Problem(decay, [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss(sp.DiracDelta(x)))


def test_expression_budget_is_a_limit_with_its_name():
    big = sum(sp.Symbol(f"s{i}") * x for i in range(40))
    with limits(max_expression_size=50), pytest.raises(UnsupportedExpressionError) as info:
        canonical(big, "rhs[0]")
    assert "more than 50 expression nodes (the max_expression_size limit)" in str(info.value)
    assert "adjoint_sym.limits(max_expression_size=...)" in str(info.value)
    assert canonical(big, "rhs[0]")[1] > 50  # the default budget takes it


# -- rewrites: derivatives that stay evaluable -------------------------------------------
def test_sign_and_heaviside_have_derivative_zero_away_from_the_jump():
    for expr in (sp.sign(x - 1), sp.sign(sp.sqrt(t)), sp.Heaviside(x)):
        out, _ = canonical(expr, "rhs[0]")
        assert out.diff(x) == 0 and out.diff(t) == 0
        assert not out.has(sp.DiracDelta)


def test_abs_max_min_differentiate_into_signs():
    assert canonical(sp.Abs(2 * x), "e")[0].diff(x) == 2 * validate.sign(x)
    d_max = canonical(sp.Max(x, k, 0), "e")[0].diff(x)
    d_min = canonical(sp.Min(x, 1, 2), "e")[0].diff(x)
    assert not d_max.has(sp.Heaviside, sp.DiracDelta) and not d_min.has(sp.Heaviside, sp.DiracDelta)
    # the second derivatives exist too (zero): the derivative is closed under differentiation
    assert d_max.diff(x) == 0 and d_min.diff(x) == 0


def _kernel(expr):
    return compile_kernel("e", [scalar_argument(t), Argument("h", (x,)), Argument("theta", (k,))], [expr])


@pytest.mark.parametrize(
    ("expr", "at", "value", "slope"),
    [
        # Max(x, k, 0) at x = 2, k = 1: x is largest, slope 1; at x = -3: 0 is, slope 0
        (sp.Max(x, k, 0), 2.0, 2.0, 1.0),
        (sp.Max(x, k, 0), -3.0, 1.0, 0.0),
        # Min(x, 1, 2) at x = 0.5: x is smallest, slope 1; at x = 3: 1 is, slope 0
        (sp.Min(x, 1, 2), 0.5, 0.5, 1.0),
        (sp.Min(x, 1, 2), 3.0, 1.0, 0.0),
        (sp.Abs(x), -2.0, 2.0, -1.0),
        (3 + sp.sign(x - 1), 2.0, 4.0, 0.0),
    ],
)
def test_non_smooth_functions_compile_and_their_derivatives_are_right(expr, at, value, slope):
    """Max(x, k, 0) and Min(x, 1, 2) used to fail with NameError 'functools' in the generated
    code; the values and slopes here are read off the definitions by hand."""
    out, _ = canonical(expr, "e")
    assert _kernel(out)(0.0, np.array([at]), np.array([1.0]))[0] == value
    assert _kernel(out.diff(x))(0.0, np.array([at]), np.array([1.0]))[0] == slope
    # The complex-step reference reads the slope off the imaginary part: sign(re u) and
    # u*sign(re u) keep it (numpy's complex sign and the modulus would lose it).
    step = 1e-20
    z = _kernel(out)(0.0, np.array([at + 1j * step]), np.array([1.0 + 0j]))[0]
    assert z.imag / step == slope


@pytest.mark.parametrize(
    ("rhs", "solver"),
    [
        ("c + sign(x - 1)", "DOP853"),
        ("-sign(x)*c", "BDF"),
        ("-c*sign(sqrt(t))*x", "DOP853"),
        ("-Max(x, c, 0)", "LSODA"),
    ],
)
def test_non_smooth_right_hand_sides_give_gradients(rhs, solver):
    """Each of these ended in a printer error (DiracDelta, Derivative) or NameError; the
    adjoint and forward sensitivities now agree, away from the kink (the state never sits
    on it over this span)."""
    system = ODESystem.from_strings(["x"], ["c"], "t", [rhs])
    problem = Problem(system, [2.0], {"c": 0.5}, 0.1, 1.0, FinalLoss("x**2"))
    adjoint = gradient(problem, "adjoint", solver=solver, rtol=1e-10, atol=1e-12)
    forward = gradient(problem, "forward", solver=solver, rtol=1e-10, atol=1e-12)
    # both at rtol 1e-10; 1e-6 leaves room for the stiff solvers' global error, far below the
    # size of a wrong derivative (a dropped sign term changes dL/dc by O(1))
    np.testing.assert_allclose(adjoint.dparams["c"], forward.dparams["c"], rtol=1e-6)
    np.testing.assert_allclose(adjoint.dh0, forward.dh0, rtol=1e-6)


def test_a_constant_that_cannot_be_evaluated_is_refused(monkeypatch):
    """SymPy's evalf is the judge of constants; should it fail, the piece is named."""

    def broken(self, *args, **kwargs):
        raise ValueError("no numeric value")

    monkeypatch.setattr(sp.exp, "evalf", broken)
    with pytest.raises(UnsupportedExpressionError, match=r"rhs\[0\]: 'exp\(2\)' cannot be evaluated to a real number"):
        canonical(x * sp.exp(2), "rhs[0]")


def test_the_library_max_and_min_evaluate_numbers_like_sympy():
    """Regression: SymPy simplifies Max/Min by ``cls == Min``, so a subclass of Max once
    evaluated Max(0.0, -0.1) as -0.1 (and a traced np.maximum of a network with it)."""
    x = sp.Symbol("x", real=True)
    assert float(validate.Max(0.0, -0.1)) == 0.0 and float(validate.Min(0.0, -0.1)) == -0.1
    assert validate.Max(x, 0).subs(x, -2) == 0 and validate.Min(x, 1).subs(x, 3) == 1
    assert validate.Max(1, 2, x) == validate.Max(2, x) and validate.Max(x, x) == x
    assert type(validate.Max(x, 0)) is validate.Max  # the derivative stays the library's
