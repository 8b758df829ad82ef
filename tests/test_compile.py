"""Compiled kernels: complex input, batches, inspectable source, caching, generic compile_kernel."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import sympy as sp

from adjoint_sym import ODESystem
from adjoint_sym.adjoint.kernels import adjoint_kernels
from adjoint_sym.builders import lotka_volterra, neural_ode, two_layer
from adjoint_sym.errors import UnsupportedExpressionError
from adjoint_sym.numeric.compile import Argument, compile_kernel, scalar_argument
from adjoint_sym.numeric.kernels import compiled

FORCED = ODESystem.from_strings(["x", "y"], ["w", "c"], "t", ["y", "-w**2*x - c*y + sin(t)*exp(-x**2)"])
SYSTEMS = {
    "lotka-volterra": lotka_volterra(),
    "forced": FORCED,
    "two-layer-tanh": two_layer(2, 5, input_power=3, time="input"),
    "softplus-layer": neural_ode(3, activation="softplus", time="linear"),
    "gelu-layer": neural_ode(2, activation="gelu"),
}
EPS = 1e-30  # complex step: no subtraction, so any step far below sqrt(machine eps) is exact


def sample(system: ODESystem, seed: int = 0):
    rng = np.random.default_rng(seed)
    return 0.37, rng.normal(size=system.n), 0.5 * rng.normal(size=system.n_params)


def assert_close_scaled(got: np.ndarray, want: np.ndarray, scale: float, what: str) -> None:
    """Equal to 1e-14 relative to ``scale`` (the size of the terms summed): a few roundings."""
    err = np.max(np.abs(got - want)) / scale
    assert err <= 1e-14, f"{what}: deviation {err:.3g} (scaled) > 1e-14\n got  {got}\n want {want}"


@pytest.mark.parametrize("name", SYSTEMS)
def test_complex_step_of_f_is_the_jacobian_product(name):
    system = SYSTEMS[name]
    k = compiled(system)
    t, h, theta = sample(system)
    rng = np.random.default_rng(1)
    v, w = rng.normal(size=system.n), rng.normal(size=system.n_params)
    J, Jt = k.jac_h(t, h, theta), k.jac_theta(t, h, theta)  # entry-wise derivatives
    along_h = k.f(t, h + 1j * EPS * v, theta).imag / EPS
    assert_close_scaled(along_h, J @ v, np.max(np.abs(J) @ np.abs(v)), "f along h")
    along_theta = k.f(t, h, theta + 1j * EPS * w).imag / EPS
    assert_close_scaled(along_theta, Jt @ w, np.max(np.abs(Jt) @ np.abs(w)) + 1e-300, "f along theta")
    along_t = k.f(t + 1j * EPS, h, theta).imag / EPS
    ft = k.f_t(t, h, theta)
    assert_close_scaled(along_t, ft, np.max(np.abs(ft)) + np.max(np.abs(J @ v)), "f along t")


@pytest.mark.parametrize("name", SYSTEMS)
def test_complex_step_through_the_vjp(name):
    """The matrix-level VJP kernel differentiated by complex step along h equals the
    entry-wise Jacobian kernel differentiated the same way: two derivations of a^T f_h."""
    system = SYSTEMS[name]
    k = adjoint_kernels(system)
    t, h, theta = sample(system)
    rng = np.random.default_rng(2)
    v, a = rng.normal(size=system.n), rng.normal(size=system.n)
    z = h + 1j * EPS * v
    vjp = k.vjp(t, z, a, theta)
    assert np.iscomplexobj(vjp)
    by_vjp = vjp[: system.n].imag / EPS
    by_jacobian = a @ (compiled(system).jac_h(t, z, theta).imag / EPS)
    assert_close_scaled(by_vjp, by_jacobian, np.max(np.abs(by_jacobian)) + 1.0, "d(a^T f_h)/dh v")
    # and the real parts are the VJP at h
    np.testing.assert_allclose(vjp.real, k.vjp(t, h, a, theta), rtol=1e-14, atol=1e-14)


def test_jacobian_against_sympy_directly():
    """For a scalar system the kernel's Jacobian equals SymPy's, evaluated by SymPy."""
    system = FORCED
    k = compiled(system)
    t, h, theta = sample(system)
    subs = dict(zip(system.flat_state, h)) | dict(zip(system.flat_params, theta)) | {system.t: t}
    exact = np.array(system.jacobian_h.subs(subs).evalf(17), dtype=float)
    np.testing.assert_allclose(k.jac_h(t, h, theta), exact, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("name", SYSTEMS)
def test_vjp_parts_and_jacobians_agree(name):
    system = SYSTEMS[name]
    k = compiled(system)
    t, h, theta = sample(system)
    a = np.random.default_rng(3).normal(size=system.n)
    J = k.jac_h(t, h, theta)
    np.testing.assert_allclose(k.jac_h_from_vjp(t, h, theta), J, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(k.vjp_h(t, h, a, theta), a @ J, rtol=1e-13, atol=1e-14)
    A = np.random.default_rng(4).normal(size=(system.n, 3))  # three cotangents at once
    np.testing.assert_allclose(k.vjp_h(t, h, A, theta), (A.T @ J).T, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", SYSTEMS)
@pytest.mark.parametrize("batch", [1, 7])
def test_batched_f_equals_per_column(name, batch):
    system = SYSTEMS[name]
    k = compiled(system)
    t, _, theta = sample(system)
    H = np.random.default_rng(5).normal(size=(system.n, batch))
    out = k.f(t, H, theta)
    assert out.shape == (system.n, batch)
    for j in range(batch):
        np.testing.assert_allclose(out[:, j], k.f(t, H[:, j], theta), rtol=1e-15, atol=1e-15)


def test_real_input_gives_real_output():
    k = compiled(lotka_volterra())
    out = k.f(0.0, np.ones(2), np.ones(4))
    assert out.dtype == np.float64 and out.shape == (2,)


def test_generated_source_is_inspectable():
    system = two_layer(2, 3, input_power=3)
    k = adjoint_kernels(system)
    assert "def f(" in k.f.source
    assert "numpy.tanh" in k.f.source
    assert "def vjp(" in k.vjp.source
    # registered with linecache, so tracebacks and inspect show the generated lines
    assert inspect.getsource(k.f.fn) == k.f.source


def test_compile_caching():
    system = two_layer(2, 3)
    assert compiled(system) is compiled(system)
    assert compiled(lotka_volterra()) is compiled(lotka_volterra())  # equal systems share kernels
    k = compiled(system)
    assert k.f is k.f and adjoint_kernels(system).vjp is adjoint_kernels(system).vjp  # each kernel compiled once


def test_the_same_network_built_twice_shares_its_kernels():
    assert two_layer(2, 3) == two_layer(2, 3)
    assert compiled(two_layer(2, 3)) is compiled(two_layer(2, 3))


# -- compile_kernel on its own ------------------------------------------------------------------
def test_compile_kernel_scalars_matrices_and_shape():
    x, y, t = sp.symbols("x y t")
    M = sp.MatrixSymbol("M", 2, 2)
    args = [scalar_argument(t), Argument("v", (x, y)), Argument("m", (M,))]
    outputs = [x * y + t, sp.ImmutableMatrix([[x, 0], [y**2, sp.sin(t)]]), M.T]
    kernel = compile_kernel("demo", args, outputs, output_shape=(3, 3))
    out = kernel(0.5, np.array([2.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0]))
    want = [[2 * 3 + 0.5, 2.0, 0.0], [9.0, np.sin(0.5), 1.0], [3.0, 2.0, 4.0]]
    np.testing.assert_allclose(out, want, rtol=1e-15)
    assert kernel.output_size == 9


def test_floats_round_trip_through_the_printer():
    x = sp.Symbol("x")
    third = sp.Float(1 / 3, 17)
    kernel = compile_kernel("third", [Argument("v", (x,))], [third * x + sp.Float(0.1, 17)])
    assert kernel(np.array([1.0]))[0] == 1 / 3 + 0.1


def test_compile_kernel_refuses_a_symbol_that_is_not_an_argument():
    x, y = sp.symbols("x y")
    with pytest.raises(UnsupportedExpressionError, match="symbol y is not an argument of this kernel"):
        compile_kernel("bad", [Argument("v", (x,))], [x + y])


# -- kernels with theta bound once per gradient ------------------------------------------------
@pytest.mark.parametrize("system", [lotka_volterra(), two_layer(2, 5, input_power=3)], ids=["scalar", "matrix"])
def test_a_bound_kernel_computes_what_the_kernel_computes(system):
    k = adjoint_kernels(system)
    rng = np.random.default_rng(1)
    n, p = system.n, system.n_params
    theta, h, y = rng.standard_normal(p), rng.standard_normal(n), rng.standard_normal(n + p + 1)
    bound = k.adjoint_rhs.bind(theta)
    # Real input takes the float64 shortcut, complex input numpy's promotion: both must agree exactly.
    np.testing.assert_array_equal(bound(0.3, h, y), k.adjoint_rhs.fn(0.3, h, y, theta))
    hc = h + 1e-20j * rng.standard_normal(n)
    np.testing.assert_array_equal(bound(0.3, hc, y), k.adjoint_rhs.fn(0.3, hc, y, theta))
    assert bound(0.3, hc, y).dtype == np.complex128
    # and the negated fused kernel is the negated VJP
    np.testing.assert_array_equal(bound(0.3, h, y), -k.vjp.fn(0.3, h, y[:n], theta))


def test_bind_without_a_generated_binder_closes_over_the_last_argument():
    from adjoint_sym.numeric.compile import Kernel

    kernel = Kernel("stand-in", lambda t, h, theta: theta * h, "", 1)
    assert kernel.bind(np.array([3.0]))(0.0, np.array([2.0]))[0] == 6.0


def test_negate_from_negates_the_tail_only():
    x, y = sp.symbols("x y")
    kernel = compile_kernel("g", [Argument("v", (x, y))], [x, y, x * y], negate_from=1)
    np.testing.assert_array_equal(kernel(np.array([2.0, 3.0])), [2.0, -3.0, -6.0])
