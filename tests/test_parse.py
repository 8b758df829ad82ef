import pytest
import sympy as sp

from adjoint_sym import UnsupportedExpressionError, parse_expression

x, y = sp.symbols("x y", real=True)
W = sp.MatrixSymbol("W", 2, 2)
SYMS = {"x": x, "y": y, "W": W}


def test_arithmetic_and_functions_build_the_expected_tree():
    got = parse_expression("2*x**3 - sin(y)/x + exp(-x) + tanh(x*y)", SYMS)
    assert sp.simplify(got - (2 * x**3 - sp.sin(y) / x + sp.exp(-x) + sp.tanh(x * y))) == 0


def test_float_literals_round_trip():
    assert float(parse_expression("0.1", SYMS)) == 0.1


def test_subscripts_of_matrix_symbols():
    assert parse_expression("W[0, 1]*x", SYMS) == W[0, 1] * x


def test_user_names_that_sympy_treats_specially_are_plain_symbols():
    names = ["S", "I", "E", "N", "Q", "O", "beta", "gamma", "lambda_", "zeta"]
    table = {n: sp.Symbol(n) for n in names}
    expr = parse_expression("S*I*E*N*Q*O*beta*gamma*lambda_*zeta", table)
    assert expr == sp.Mul(*table.values())
    assert expr.free_symbols == set(table.values())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os').system('echo hi')", "dunder name '__import__'"),
        ("x.__class__", "dunder name '__class__'"),
        ("x.real", "attribute access 'x.real'"),
        ("(lambda q: q)(x)", "lambda"),
        ("x**10**10**10", "exponent"),
        ("x**1000", "exponent 1000 exceeds"),
        ("z + x", "unknown symbol 'z'"),
        ("open('f')", "function 'open' is not allowed"),
        ("x if y else 1", "conditional expression is not allowed: write the choice with Max"),
        ("[x, y]", "syntax List"),
        ("'text'", "is not a number"),
        ("x +", "cannot parse"),
        ("", "empty"),
        ("sin", "used without a call"),
        ("sin(x, key=1)", "keyword arguments"),
        ("W[x]", "integer literals"),
        ("W[5, 0]", "out of range"),
        ("1" * 40, "more than 30 digits"),
        ("max(" + "x, " * 3000 + "x)", "nodes"),
        # Deep left-nested sums: refused either by the parser's recursion limit or by the node bound,
        # depending on how deep the caller's stack already is.
        ("x" + "+x" * 6000, ("nests too deeply", "nodes; the limit is")),
        ("-" * 200 + "x", "deeper than"),
        ("x" * 30000, "characters long"),
        ("x == y", "comparison is not allowed: write a switch with sign"),
    ],
    ids=lambda v: v[:30] if isinstance(v, str) else v,
)
def test_hostile_or_malformed_text_is_rejected_naming_the_piece(text, message):
    with pytest.raises(UnsupportedExpressionError, match="rhs\\[1\\]") as info:
        parse_expression(text, SYMS, where="rhs[1]")
    messages = message if isinstance(message, tuple) else (message,)
    assert any(m in str(info.value) for m in messages), str(info.value)


def test_rejections_are_value_errors():
    with pytest.raises(ValueError):
        parse_expression("x.real", SYMS)


def test_non_string_input_is_rejected():
    with pytest.raises(UnsupportedExpressionError, match="expected a string"):
        parse_expression(3, SYMS)  # type: ignore[arg-type]


def test_long_flat_sums_are_not_nesting():
    # 300 terms: a chain in the tree, not 300 levels of nesting; left-to-right order kept
    text = " + ".join(f"{i}*x" for i in range(300)) + " - y - x*y/x*2"
    assert parse_expression(text, SYMS) == sum(range(300)) * x - 3 * y


# -- refusals that say what to write instead (issues 14 and 16) -------------------------------
@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x^2", "operator BitXor is not allowed: '^' is not a power here: write x**2"),
        ("x @ y", "'@' is not available: address matrix entries as W[i, j]"),
        ("x // y", "'//' is not available: write a / b"),
        ("x % y", "operator Mod is not allowed: '%' is not available"),
        ("np.sin(x)", "call of attribute access 'np.sin' is not allowed: write sin(...) without the module prefix"),
        ("np.frobnicate(x)", "call of attribute access 'np.frobnicate' is not allowed: call a listed function"),
        ("(lambda: x)()", "call of a lambda is not allowed: write the expression itself"),
        ("sinn(x)", "function 'sinn' is not allowed; did you mean 'sin'?"),
        ("sin", "function 'sin' used without a call: write sin(...)"),
        ("xx + 1", "unknown symbol 'xx' (declared: W, x, y); did you mean 'x'?; if 'xx' is a parameter, declare it"),
        ("q", "if 'q' is a parameter, declare it (in a spec: under [params])"),
        ("W + x", "'W' is a 2x2 matrix parameter; an expression is a number, so address its entries as W[i, j]"),
        ("x/0", "division by zero"),
        ("x/(y - y)", "division by zero"),
        ("0**-1*x", "zero raised to a negative power"),
        ("x*0x" + "f" * 5000, "integer literal with more than 30 digits"),
        ("x if y else 0", "a conditional expression is not allowed: write the choice with Max, Min, sign or Heaviside"),
        ("sqrt(-4)*x", "the imaginary unit I"),
    ],
    ids=lambda v: v[:25],
)
def test_refusals_carry_a_hint(text, message):
    with pytest.raises(UnsupportedExpressionError) as info:
        parse_expression(text, SYMS, where="rhs[0]")
    assert str(info.value).startswith("rhs[0]: ") and message in str(info.value), str(info.value)


def test_heaviside_and_the_non_smooth_functions_parse_into_evaluable_forms():
    assert parse_expression("Heaviside(x)", SYMS).diff(x) == 0
    assert parse_expression("abs(x)", SYMS).diff(x) == parse_expression("sign(x)", SYMS)
    assert parse_expression("sign(x)", SYMS).diff(x) == 0


def test_a_sympy_failure_during_arithmetic_is_reported_as_ours():
    from adjoint_sym.symbolic.parse import _Builder

    def refuses(*args):
        raise TypeError("Mix of Matrix and Scalar symbols")

    with pytest.raises(UnsupportedExpressionError, match=r"e: cannot compute this: Mix of Matrix and Scalar"):
        _Builder(SYMS, "e", "x + W")._apply(refuses, x)


def test_long_sums_parse_as_one_sum():
    """A left-leaning chain of 400 terms (about the node limit): one Add, the same tree as
    SymPy's pairwise sum (which re-sorted the growing sum each time: 8 s instead of 0.5 s)."""
    text = " + ".join(f"{i}*x**{i % 7}*y - x/{i}" for i in range(1, 201))
    got = parse_expression(text, SYMS)
    assert got == sum((i * x ** (i % 7) * y - x / i for i in range(1, 201)), sp.Integer(0))
