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
