import numpy as np
import pytest
import sympy as sp
from hypothesis import given
from hypothesis import strategies as st

from adjoint_sym import ODESystem
from adjoint_sym.builders import lotka_volterra, neural_ode, two_layer
from adjoint_sym.identities import (
    adjoint_forms_agree,
    augmented_adjoint_is_three_blocks,
    hamiltonian_conserved,
    hamiltonian_rate,
    tangent_adjoint_pairing,
)


@st.composite
def polynomial_systems(draw):
    n = draw(st.integers(1, 3))
    p = draw(st.integers(0, 2))
    state = [f"x{i}" for i in range(n)]
    params = [f"k{i}" for i in range(p)]
    atoms = [*state, *params, "t"]

    def monomial():
        factors = draw(st.lists(st.sampled_from(atoms), min_size=0, max_size=3))
        coeff = draw(st.integers(-3, 3))
        return "*".join([str(coeff), *factors])

    rhs = [" + ".join(monomial() for _ in range(draw(st.integers(1, 3)))) for _ in range(n)]
    return ODESystem.from_strings(state, params, "t", rhs)


@given(polynomial_systems())
def test_vjp_and_jacobian_forms_agree_on_polynomial_systems(system):
    proof = adjoint_forms_agree(system)
    assert proof.holds, proof


@given(
    st.integers(1, 2),
    st.integers(1, 2),
    st.sampled_from(["tanh", "sigmoid", "softplus", "sin"]),
    st.sampled_from(["none", "input"]),
    st.integers(1, 3),
)
def test_vjp_and_jacobian_forms_agree_on_neural_systems(n, hidden, activation, time, power):
    system = two_layer(n, hidden, activation=activation, time=time, input_power=power)
    assert adjoint_forms_agree(system).holds


def test_matrix_level_adjoint_has_the_hand_written_form():
    system = neural_ode(3)
    adj = system.adjoint()
    W, b = system.params
    h, a = system.state[0], adj.a
    s = sp.Dummy("z")
    sigma_prime = (W * h + b).applyfunc(sp.Lambda(s, 1 - sp.tanh(s) ** 2))
    delta = sp.HadamardProduct(a, sigma_prime)
    expected_a = -(W.T * delta)
    expected_W = -(delta * h.T)
    for got, want in [(adj.rhs_a, expected_a), (adj.rhs_theta[0], expected_W), (adj.rhs_theta[1], -delta)]:
        assert sp.simplify(sp.ImmutableMatrix(got.as_explicit()) - sp.ImmutableMatrix(want.as_explicit())) == sp.zeros(
            *got.shape
        )
    # the matrix form never expands entries: no element of W appears in it
    assert not adj.rhs_theta[0].atoms(sp.matrices.expressions.matexpr.MatrixElement)


def test_wide_network_derives_without_expanding():
    system = two_layer(2, 128)
    adj = system.adjoint()
    assert adj.rhs_theta[0].shape == (128, 2)
    assert len(sp.count_ops(adj.rhs_a, visual=False).__str__()) < 10  # a handful of matrix ops


@pytest.mark.parametrize(
    "system",
    [lotka_volterra(), neural_ode(2, time="linear"), two_layer(2, 2, time="input")],
    ids=["lv", "neural-linear-time", "two-layer-input-time"],
)
def test_identities_hold(system):
    assert adjoint_forms_agree(system)
    assert tangent_adjoint_pairing(system)
    assert hamiltonian_rate(system)
    assert augmented_adjoint_is_three_blocks(system)


def test_hamiltonian_is_conserved_exactly_for_autonomous_systems():
    assert hamiltonian_conserved(lotka_volterra()).holds
    proof = hamiltonian_conserved(neural_ode(2, time="input"))
    assert not proof.holds and proof.residual != 0


def test_identity_check_can_fail():
    system = lotka_volterra()
    adj = system.adjoint()
    broken = sp.ImmutableMatrix(-adj.rhs_a)  # the sign the note uses for dL/dh
    a = adj.a
    v = sp.ImmutableMatrix(sp.symbols("v0 v1"))
    rate = broken.T * v + a.T * (system.jacobian_h * v)
    assert sp.simplify(rate[0, 0]) != 0


def test_latex_is_paper_ready_and_balanced():
    adj = lotka_volterra().adjoint()
    text = adj.latex()
    assert text.startswith("\\begin{align}") and text.endswith("\\end{align}")
    assert text.count("\\left") == text.count("\\right")
    # Lotka-Volterra has a parameter a, so the adjoint is written lambda (symbolic/notation.py)
    assert "\\frac{d \\lambda_{x}}{d t}" in text and "\\lambda_{t}(t_{1})" in text
    assert adj._repr_latex_().startswith("$$\\begin{aligned}")
    md = adj.markdown()
    assert "### Augmented state" in md and md.count("$$") % 2 == 0


def test_matrix_level_latex_uses_the_users_names_and_bold_option():
    adj = two_layer(2, 3).adjoint()
    text = adj.latex(bold_vectors=True)
    assert "\\mathbf{W_{1}}" in text or "\\mathbf{W}_{1}" in text
    assert "\\tanh" in text and "\\circ" in text


def test_cse_is_available_on_both_forms():
    for form in ("vjp", "jacobian"):
        reps, reduced = two_layer(2, 3).adjoint(form=form).cse()
        assert reps and len(reduced) == 6


def test_numeric_kernels_match_both_forms():
    from adjoint_sym.adjoint.kernels import adjoint_kernels
    from adjoint_sym.numeric.kernels import compiled

    system = two_layer(2, 4, input_power=3, time="input")
    k, numeric = adjoint_kernels(system), compiled(system)
    rng = np.random.default_rng(1)
    theta, h, a = rng.normal(size=system.n_params), rng.normal(size=2), rng.normal(size=2)
    v = k.vjp(0.3, h, a, theta)
    J, Jt, ft = numeric.jac_h(0.3, h, theta), numeric.jac_theta(0.3, h, theta), numeric.f_t(0.3, h, theta)
    np.testing.assert_allclose(v, np.concatenate([a @ J, a @ Jt, [a @ ft]]), rtol=1e-13, atol=1e-13)
