import pytest
import sympy as sp

from adjoint_sym import InvalidModelError, ODESystem, UnsupportedExpressionError
from adjoint_sym.builders import linear_system, lotka_volterra, neural_ode, sir, two_layer


def test_from_strings_and_sympy_objects_build_equal_hashable_systems():
    x, y, a, b, c, d, t = sp.symbols("x y a b c d t", real=True)
    direct = ODESystem(state=[x, y], params=[a, b, c, d], t=t, rhs=[a * x - b * x * y, d * x * y - c * y])
    assert direct == lotka_volterra().__class__.from_strings(
        ["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y", "d*x*y - c*y"]
    )
    assert len({direct, lotka_volterra()}) == 1  # name is a label, not identity
    assert "dx/dt = a*x - b*x*y" in repr(direct)


def test_systems_are_immutable():
    sys = lotka_volterra()
    with pytest.raises(AttributeError):
        sys.rhs = None  # type: ignore[misc]


def test_augmented_state_and_rhs_follow_chen_et_al():
    sys = lotka_volterra()
    aug = sys.augmented()
    assert [str(s) for s in aug.state] == ["x", "y", "a", "b", "c", "d", "t"]
    assert list(aug.rhs[2:]) == [0, 0, 0, 0, 1]
    assert list(aug.rhs[:2]) == list(sys.rhs)


def test_matrix_level_augmented_state_keeps_blocks():
    sys = two_layer(2, 4)
    aug = sys.augmented()
    assert [str(s) for s in aug.state] == ["h", "W1", "b1", "W2", "b2", "t"]
    assert isinstance(aug.rhs[1], sp.ZeroMatrix) and aug.rhs[1].shape == (4, 2)
    assert aug.rhs[-1] == 1


def test_sir_names_work():
    sys = sir()
    assert sys.state_names == ("S", "I", "R")
    assert sys.rhs[0] == -sys.params[0] * sys.state[0] * sys.state[1]


def test_special_names_parse_as_plain_symbols():
    sys = ODESystem.from_strings(["E", "N", "Q", "O"], ["lambda_", "zeta"], "t", ["-lambda_*E", "zeta*N", "Q*O", "E"])
    assert all(isinstance(s, sp.Symbol) for s in sys.state)
    assert sys.rhs[3] == sys.state[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(state=["x", "y"], params=["a"], time="t", rhs=["a*x"]),
            "rhs has 1 expressions but the state has 2",
        ),
        (dict(state=["x"], params=["x"], time="t", rhs=["x"]), "duplicate name 'x'"),
        (
            dict(state=["x"], params=["t"], time="t", rhs=["x"]),
            "params contains 't', which is the time symbol",
        ),
        (dict(state=["t"], params=[], time="t", rhs=["1"]), "state contains 't', which is the time symbol"),
        (dict(state=["x"], params=["a"], time="t", rhs=["a*z"]), "rhs[0]: unknown symbol 'z'"),
        (dict(state=["x"], params=["sin"], time="t", rhs=["x"]), "'sin' is the name of a built-in"),
        (dict(state=["x y"], params=[], time="t", rhs=["1"]), "not a valid name"),
        (dict(state=["lambda"], params=[], time="t", rhs=["1"]), "'lambda_'"),
        (dict(state=[], params=[], time="t", rhs=[]), "state is empty"),
        (dict(state=["x"], params={"W": (0, 2)}, time="t", rhs=["x"]), "shape must be two positive integers"),
    ],
)
def test_bad_declarations_name_the_culprit(kwargs, message):
    with pytest.raises(InvalidModelError) as info:
        ODESystem.from_strings(**kwargs)
    assert message in str(info.value)


def test_hostile_rhs_is_refused_before_anything_runs():
    with pytest.raises(UnsupportedExpressionError, match="dunder"):
        ODESystem.from_strings(["x"], [], "t", ["__import__('os').system('false')"])


def test_sympy_rhs_with_undeclared_symbol_is_refused():
    x, t, k = sp.symbols("x t k")
    with pytest.raises(InvalidModelError, match="unknown symbol 'k'"):
        ODESystem(state=[x], params=[], t=t, rhs=[k * x])


def test_matrix_rhs_shape_must_match_state():
    h = sp.MatrixSymbol("h", 3, 1)
    W = sp.MatrixSymbol("W", 2, 3)
    with pytest.raises(InvalidModelError, match=r"shape \(2, 1\)"):
        ODESystem(h, [W], sp.Symbol("t"), W * h)


def test_matrix_parameters_from_strings_are_addressed_by_index():
    sys = ODESystem.from_strings(["x", "y"], {"A": (2, 2)}, "t", ["A[0, 0]*x + A[0, 1]*y", "A[1, 0]*x + A[1, 1]*y"])
    A = sys.params[0]
    assert isinstance(A, sp.MatrixSymbol) and sys.n_params == 4
    assert sys.jacobian_h == sp.ImmutableMatrix(A.as_explicit())


def test_builders_document_their_parameters():
    assert neural_ode(3, time="input").param_names == ("W", "b", "u")
    assert neural_ode(3, time="linear").param_names == ("W", "b", "V", "c")
    assert two_layer(2, 5).param_names == ("W1", "b1", "W2", "b2")
    assert linear_system(4).param_shapes == {"A": (4, 4)}
    with pytest.raises(InvalidModelError, match="unknown activation 'relu'"):
        neural_ode(2, activation="relu")
