"""The compiled fast path (:mod:`adjoint_sym.adjoint.fast`) against the default route and closed forms.

Tolerances.  Two kinds of comparison:

* Against ``gradient(problem, "interpolating")`` (SciPy DOP853): a different integrator,
  so the two differ by the global errors of a forward and a backward solve, each a modest
  multiple of ``rtol`` on these non-expanding problems.  As in ``test_gradients.py`` we
  allow ``C * rtol`` relative to the gradient's largest component, ``C = 100``.
* Against ``gradient(problem, "interpolating", solver="RK45")``: the same scheme, step-size
  rule and dense output, so only round-off differs (operation order, fused multiply-adds,
  tanh through exp).  Round-off perturbs each step's error estimate by ~1e-16 relative and
  the accepted step sizes by as little, so the results agree to ~1e-13; we allow
  ``1e-4 * rtol``, still four orders of magnitude below any discretisation effect, so a
  wrong coefficient or a missing term (which shows at ``rtol`` or above) cannot hide.

``atol = 1e-3 * rtol`` keeps the relative tolerance in control of these O(1) states.

These are the scalar systems (SymEngine's LLVM kernels); matrix-level systems take the
tapes of :mod:`adjoint_sym.adjoint.fast_matrix`, tested in ``test_fast_matrix.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

pytest.importorskip("numba")
pytest.importorskip("symengine")

from adjoint_sym import CallableLoss, FinalLoss, ObservationLoss, ODESystem, Problem
from adjoint_sym.adjoint import fast as fast_module
from adjoint_sym.adjoint import fast_engine as engine
from adjoint_sym.adjoint.backward import Observations, sweep
from adjoint_sym.adjoint.fast import fast_gradient
from adjoint_sym.builders import lotka_volterra, two_layer
from adjoint_sym.errors import InvalidModelError, SolverFailedError, UnsupportedExpressionError
from adjoint_sym.verify.routes import gradient

RTOL = 1e-8
ATOL = 1e-3 * RTOL
C = 100  # see the module docstring
SAME_SCHEME = 1e-4  # in units of rtol; see the module docstring


def assert_close(got, ref, bound: float, what: str) -> None:
    """Every component of ``got`` within ``bound * max|ref|`` of ``ref``, failures listed by name."""
    a, b = got.quantities(), ref.quantities()
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    scale = max(abs(v) for v in b.values())
    bad = [
        f"{name}: fast {a[name]:.15g}, reference {b[name]:.15g}, deviation {abs(a[name] - b[name]) / scale:.3g}"
        for name in b
        if not abs(a[name] - b[name]) <= bound * scale
    ]
    assert not bad, f"{what}: {len(bad)} component(s) beyond {bound:.3g} relative:\n" + "\n".join(bad)
    assert abs(got.loss - ref.loss) <= bound * max(abs(ref.loss), 1e-300), (got.loss, ref.loss)


def check_both(problem: Problem, rtol: float = RTOL, growth: float = 1.0, kernels: str = "auto") -> None:
    """Fast vs both SciPy routes; ``growth`` is the problem's error growth factor ``G``."""
    atol = 1e-3 * rtol
    got = fast_gradient(problem, rtol=rtol, atol=atol, kernels=kernels)
    assert got.stats["kernels"] == "scalar"
    dop = gradient(problem, "interpolating", rtol=rtol, atol=atol)
    rk45 = gradient(problem, "interpolating", solver="RK45", rtol=rtol, atol=atol)
    assert_close(got, dop, C * growth * rtol, "fast vs DOP853 interpolating")
    assert_close(got, rk45, SAME_SCHEME * rtol, "fast vs RK45 interpolating (same scheme)")
    assert got.method == "interpolating" and got.stats["backend"] == "fast"
    assert (got.dt1 is None) == (dop.dt1 is None)


def lv_problem(t1: float = 10.0) -> Problem:
    params = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}
    return Problem(lotka_volterra(), [1.0, 1.0], params, 0.0, t1, FinalLoss("x**2 + y**2"))


def test_lotka_volterra_final_loss():
    check_both(lv_problem())


@pytest.mark.parametrize("rtol", [1e-6, 1e-10])
def test_exponential_decay_matches_the_closed_form(rtol):
    """``x' = -k x``, ``L = x(T)^2 = x0^2 exp(-2 k tau)``, ``tau = t1 - t0``."""
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    x0, k, t0, t1 = 1.3, 0.7, 0.2, 2.5
    problem = Problem(system, [x0], {"k": k}, t0, t1, FinalLoss("x**2"))
    g = fast_gradient(problem, rtol=rtol, atol=1e-3 * rtol)
    tau = t1 - t0
    L = x0**2 * np.exp(-2 * k * tau)
    exact = {
        "dL/dh0[x]": 2 * x0 * np.exp(-2 * k * tau),
        "dL/dk": -2 * tau * L,
        "dL/dt0": 2 * k * L,  # h0 held fixed: a later start shortens the decay
        "dL/dt1": -2 * k * L,
    }
    got = g.quantities(["x"])
    for name, value in exact.items():
        # the closed form is exact; the fast path carries the two solves' global error
        assert abs(got[name] - value) <= C * rtol * abs(value), (name, got[name], value)
    assert abs(g.loss - L) <= C * rtol * L
    # a tighter tolerance is more accurate: an adjoint with a wrong term would not improve
    coarse = fast_gradient(problem, rtol=1e-4, atol=1e-7).quantities(["x"])
    assert abs(got["dL/dk"] - exact["dL/dk"]) < abs(coarse["dL/dk"] - exact["dL/dk"])


def observation_problem(times=(0.5, 1.0, 2.0, 3.5)) -> Problem:
    """A forced damped oscillator read at several times (explicit time dependence)."""
    system = ODESystem.from_strings(["x", "v"], ["w", "z"], "t", ["v", "-w**2*x - 2*z*w*v + sin(t)"])
    rng = np.random.default_rng(1)
    targets = rng.normal(size=(len(times), 2))
    return Problem(system, [1.0, 0.0], {"w": 1.7, "z": 0.1}, 0.0, times[-1], ObservationLoss(times, targets))


def test_observation_loss_with_jumps_and_explicit_time():
    check_both(observation_problem())


def test_observation_at_t0_and_backward_in_time():
    """An observation at ``t0`` (a zero-length segment), and a span run backward in time."""
    check_both(observation_problem(times=(0.0, 1.0, 2.0)))
    problem = lv_problem()
    backward = Problem(problem.system, [1.0, 1.0], problem.params, 3.0, 0.5, FinalLoss("x*y"))
    check_both(backward)


def test_expression_loss_with_parameters_and_time():
    system = lotka_volterra()
    loss = ObservationLoss([1.0, 2.0, 3.0], expr="a*x**2 + t*y")
    check_both(Problem(system, [1.0, 0.5], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 3.0, loss))


def test_callable_loss_and_zero_length_span():
    system = lotka_volterra()
    params = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}
    loss = CallableLoss(lambda s, th: float(np.sum(s**2)), lambda s, th: (2 * s, np.zeros(4)), times=(0.5, 2.0))
    check_both(Problem(system, [1.0, 0.5], params, 0.0, 2.0, loss))
    check_both(Problem(system, [1.0, 0.5], params, 1.0, 1.0, FinalLoss("x**2 + y")))  # nothing to integrate


def spiral_problem(hidden: int = 8) -> Problem:
    """``W2 tanh(W1 h^3 + b1) + b2`` with ``W2 W1`` close to the spiral matrix of Chen et al."""
    rng = np.random.default_rng(0)
    spiral = np.array([[-0.1, 2.0], [-2.0, -0.1]])
    W1 = 0.3 * rng.normal(size=(hidden, 2))
    W2 = spiral @ np.linalg.pinv(W1)
    times = np.linspace(0.5, 5.0, 10)
    targets = np.stack([2 * np.cos(2 * times), -2 * np.sin(2 * times)], axis=1) * np.exp(-0.1 * times)[:, None]
    params = {"W1": W1, "b1": 0.1 * rng.normal(size=(hidden, 1)), "W2": W2, "b2": np.zeros((2, 1))}
    return Problem(two_layer(2, hidden, input_power=3), [2.0, 0.0], params, 0.0, 5.0, ObservationLoss(times, targets))


def test_a_network_expanded_into_scalars():
    """``kernels="scalar"``: the spiral network through SymEngine, every component under error control."""
    problem = spiral_problem()
    # G = 10: the cubic input expands the flow (f_h = 3 h^2 W2 W1 with |h| ~ 2 has norm ~ 24),
    # so RK45's global error is larger than on the contracting problems: the default route's
    # own RK45 solve lies ~200 rtol from a tight (rtol=1e-12) DOP853 solve, DOP853 ~20 rtol.
    check_both(problem, growth=10.0, kernels="scalar")


def test_a_time_input_network_expanded_into_scalars():
    """``sigma(W h + t u + b)``: the matrix-level ``a^T f_t`` reaches ``dt0`` and ``dtimes``."""
    from adjoint_sym.builders import neural_ode

    rng = np.random.default_rng(3)
    params = {"W": 0.5 * rng.normal(size=(3, 3)), "b": rng.normal(size=(3, 1)), "u": rng.normal(size=(3, 1))}
    loss = ObservationLoss([0.5, 1.5], targets=np.zeros((2, 3)))
    system = neural_ode(3, time="input", activation="sigmoid")
    check_both(Problem(system, [0.1, -0.2, 0.3], params, 0.0, 1.5, loss), kernels="scalar")


def test_kernel_choices_are_checked():
    with pytest.raises(
        InvalidModelError, match=r"unknown kernels 'llvm'; choose one of \('auto', 'scalar', 'matrix'\)"
    ):
        fast_gradient(lv_problem(), kernels="llvm")
    with pytest.raises(InvalidModelError, match="kernels='matrix' needs a matrix-level system"):
        fast_gradient(lv_problem(), kernels="matrix")


def test_a_missing_observation_jump_is_caught():
    """The comparison has teeth: dropping one jump of ``a`` moves the gradient far beyond it."""
    problem = observation_problem()
    ref = gradient(problem, "interpolating", rtol=RTOL, atol=ATOL)
    fs = fast_module.fast_system(problem.system)
    buf = fs.memory(problem.theta)
    limits = np.array([10_000, 10_000])
    states, rates, ts, ys, qs, *_ = engine.forward(
        *fs.f_ptr, buf, fs.n, problem.t0, problem.times, problem.h0, RTOL, ATOL, limits
    )
    observations = Observations.of(problem, states, rates)
    jumps = observations.loss.d_states.copy()
    jumps[1] = 0.0  # the mutant: no jump at the second observation
    segments = fast_module._FastSegments(fs, buf, ts, ys, qs, RTOL, ATOL)
    a = sweep(problem, observations, segments, jumps=jumps).a
    scale = np.max(np.abs(ref.dh0))
    assert np.max(np.abs(a - ref.dh0)) > 1e3 * C * RTOL * scale


# -- errors: each names the culprit and the fix -----------------------------------------------
def test_unknown_method_names_the_choices():
    with pytest.raises(InvalidModelError, match=r"interpolating adjoint.*'backsolve'"):
        fast_gradient(lv_problem(), method="backsolve")


def test_not_a_problem():
    with pytest.raises(InvalidModelError, match="takes a Problem, got dict"):
        fast_gradient({})


def test_missing_dependency_names_the_extra(monkeypatch):
    monkeypatch.setattr(fast_module, "numba", None)
    with pytest.raises(
        InvalidModelError, match=r"needs numba, which is not installed: pip install \"adjoint_sym\[fast\]\""
    ):
        fast_gradient(lv_problem())
    monkeypatch.setattr(fast_module, "se", None)
    with pytest.raises(InvalidModelError, match="needs numba and symengine, which are not installed"):
        fast_gradient(lv_problem())


def test_symengine_without_llvm_is_named(monkeypatch):
    class NoLLVM:
        have_llvm = False
        __version__ = "0.0-test"

    monkeypatch.setattr(fast_module, "se", NoLLVM)
    assert not fast_module.available()
    with pytest.raises(InvalidModelError, match=r"symengine built with LLVM, and symengine 0\.0-test is not"):
        fast_gradient(lv_problem())


def test_complex_input_is_refused():
    problem = lv_problem().with_values(theta=np.array([1.5, 1.0, 3.0, 1.0]) + 1e-20j)
    with pytest.raises(InvalidModelError, match="real-valued; use the default backend"):
        fast_gradient(problem)


def test_unsupported_function_names_it():
    x = sp.Symbol("x")
    k = sp.Symbol("k")
    system = ODESystem([x], [k], sp.Symbol("t"), [sp.besselj(0, k * x)])
    with pytest.raises(UnsupportedExpressionError, match="cannot compile besselj"):
        fast_gradient(Problem(system, [1.0], {"k": 1.0}, 0.0, 1.0, FinalLoss("x")))


def test_blow_up_is_a_clear_solver_error():
    system = ODESystem.from_strings(["x"], ["k"], "t", ["k*x**2"])
    problem = Problem(system, [1.0], {"k": 1.0}, 0.0, 2.0, FinalLoss("x"))  # x = 1/(1 - t) blows up at t = 1
    with pytest.raises(SolverFailedError, match=r"forward solve \(fast backend, RK45\) stopped at t = 1"):
        fast_gradient(problem)


def test_step_size_collapse_is_a_clear_solver_error():
    """``x' = -1/(2x)``, ``x = sqrt(1 - t)``: finite at ``t = 1`` where its slope is not."""
    system = ODESystem.from_strings(["x"], ["k"], "t", ["-k/(2*x)"])
    problem = Problem(system, [1.0], {"k": 1.0}, 0.0, 2.0, FinalLoss("x"))
    with pytest.raises(SolverFailedError, match=r"stopped at t = 1 .*fell below round-off; .*singular there.*'BDF'"):
        fast_gradient(problem)


def test_step_budget_is_a_clear_solver_error():
    """The compiled loop obeys the same ``max_steps`` as every solve, and says how to raise it."""
    from adjoint_sym import limits

    with limits(max_steps=5), pytest.raises(SolverFailedError, match=r"more than 5 steps \(max_steps; raise it with "):
        fast_gradient(lv_problem())


def test_time_limit_is_checked_between_compiled_calls():
    """A compiled call cannot look at the clock; the time limit is checked between them, and
    an exhausted one stops the gradient with the limit named instead of running on."""
    from adjoint_sym import limits

    fast_gradient(lv_problem())  # warm: compile before the clock starts
    with limits(time_limit=1e-9), pytest.raises(SolverFailedError, match=r"time limit \(1e-09 s\) was reached at"):
        fast_gradient(lv_problem())


def test_stiff_system_is_refused_early_with_the_stiff_solvers_named():
    """Robertson: Hairer's test sees stability limit the step and the solve stops at once, naming the remedy."""
    from adjoint_sym.builders import robertson

    problem = Problem(robertson(), [1.0, 0.0, 0.0], {"k1": 0.04, "k2": 3e7, "k3": 1e4}, 0.0, 100.0, FinalLoss("y1"))
    pattern = r"forward solve \(fast backend, RK45\) stopped at t = .*: the problem is stiff: stability, not accuracy"
    with pytest.raises(SolverFailedError, match=pattern + r".*solver='LSODA'\) \(or 'BDF', 'Radau'\)") as err:
        fast_gradient(problem, rtol=1e-6, atol=1e-10)
    # refused within the first second of a 100 s span (15 stability-limited steps), not after 200,000 steps
    assert err.value.t < 1.0, err.value.t
    assert gradient(problem, solver="LSODA", rtol=1e-6, atol=1e-10).dparams["k1"] != 0  # the named remedy runs


def test_gradient_backend_fast_dispatches_here():
    """``gradient(..., backend="fast")`` (wired in methods.py) returns this module's result."""
    import inspect

    if "backend" not in inspect.signature(gradient).parameters:
        pytest.skip("gradient(backend=...) is not wired in adjoint_sym.verify.routes yet")
    problem = lv_problem()
    g = gradient(problem, backend="fast", rtol=RTOL, atol=ATOL)
    assert g.stats["backend"] == "fast"
    assert_close(g, fast_gradient(problem, rtol=RTOL, atol=ATOL), 0.0, "gradient(backend='fast') vs fast_gradient")


def test_imports_without_the_optional_dependencies():
    """With numba and symengine absent the module still imports and names the extra to install."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numba'] = None; sys.modules['symengine'] = None\n"
        "from adjoint_sym.adjoint import fast\n"
        "from adjoint_sym.builders import lotka_volterra\n"
        "from adjoint_sym import Problem, FinalLoss\n"
        "assert not fast.available()\n"
        "p = Problem(lotka_volterra(), [1, 1], [1.5, 1, 3, 1], 0, 1, FinalLoss('x'))\n"
        "try:\n"
        "    fast.fast_gradient(p)\n"
        "except ValueError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert 'needs numba and symengine, which are not installed: pip install "adjoint_sym[fast]"' in out
