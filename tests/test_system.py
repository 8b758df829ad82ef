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


# -- names a reader can trust, sizes bounded before any work (issue 14) ----------------------
@pytest.mark.parametrize(
    ("state", "message"),
    [
        (["x", "\uff58"], "state[1]: 'ｘ' and state[0] 'x' are the same name to Python (NFKC normalisation)"),
        (["x", "\U0001d465"], "are the same name to Python"),  # mathematical italic x
        (["\u0445"], "state[0]: 'х' is written in Cyrillic letters that look like the Latin 'x'"),
        (["x", "\u0445"], "state[1]: 'х' is written in Cyrillic letters that look like the Latin 'x'"),
        (["k\u0430"], "mixes Cyrillic and Latin letters"),
        (["\u039f"], "Greek letters that look like the Latin 'O'"),
    ],
)
def test_names_that_read_or_look_alike_are_refused(state, message):
    with pytest.raises(InvalidModelError) as info:
        ODESystem.from_strings(state, [], "t", ["0"] * len(state))
    assert message in str(info.value)
    symbols = [sp.Symbol(s) for s in state]  # the same rule for SymPy symbols
    with pytest.raises(InvalidModelError):
        ODESystem(symbols, [], sp.Symbol("t"), [0] * len(state))


def test_names_of_one_script_are_fine_and_kept_in_normal_form():
    sys_ = ODESystem.from_strings(["ρ", "скорость", "\uff4d"], ["β"], "t", ["-β*ρ", "ρ", "m"])
    assert sys_.state_names == ("ρ", "скорость", "m")  # the full-width m is Python's m
    assert str(sys_.rhs[2]) == "m"


def test_control_and_bidi_characters_are_escaped_in_messages():
    with pytest.raises(InvalidModelError) as info:
        ODESystem.from_strings(["x\u202e"], [], "t", ["0"])
    assert "\\u202e" in str(info.value) and "\u202e" not in str(info.value)


@pytest.mark.parametrize(
    ("limit", "build", "message"),
    [
        ({"max_states": 3}, lambda: linear_system(4), "state: 4 state variables, more than the max_states limit of 3"),
        ({"max_params": 3}, lotka_volterra, "params: 4 parameters, more than the max_params limit of 3"),
        (
            {"max_params": 10},
            lambda: ODESystem.from_strings(["x"], {"W": (4, 4)}, "t", ["-W[0, 0]*x"]),
            "params: 16 parameters, 16 of them matrix entries, each differentiated alone",
        ),
        (
            {"max_matrix_entries": 100},
            lambda: ODESystem([sp.Symbol("x")], [sp.MatrixSymbol("W", 10**6, 10**6)], sp.Symbol("t"), [0]),
            "the matrix parameters have 1000000000000 entries, more than the max_matrix_entries limit",
        ),
        (
            {"max_derivative_work": 10},
            lotka_volterra,
            "more than the max_derivative_work limit of 10",
        ),
    ],
)
def test_size_limits_refuse_before_any_work_and_say_how_to_raise(limit, build, message):
    from adjoint_sym import limits

    with limits(**limit), pytest.raises(InvalidModelError) as info:
        build()
    assert message in str(info.value)
    assert f"adjoint_sym.limits({next(iter(limit))}=...)" in str(info.value)


def test_a_huge_matrix_parameter_is_refused_by_default_in_an_instant():
    """A (10**6, 10**6) matrix parameter through the API ran out of memory flattening it."""
    with pytest.raises(InvalidModelError, match="max_matrix_entries limit of 1000000"):
        ODESystem([sp.Symbol("x")], [sp.MatrixSymbol("W", 10**6, 10**6)], sp.Symbol("t"), [0])
