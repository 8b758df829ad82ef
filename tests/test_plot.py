"""adjoint_sym.plot: figures drawn with the non-interactive Agg backend, their contents asserted.

The adjoint curves are checked against the closed form of ``dx/dt = k x`` with
``L = x(t1)^2``: ``x(t) = x0 e^{kt}``, ``a(t) = 2 x1 e^{k(t1 - t)}`` and
``a_k(t) = 2 x1^2 (t1 - t)``, so the plotted lines are data that can be wrong.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem  # noqa: E402
from adjoint_sym.builders import lotka_volterra, two_layer  # noqa: E402
from adjoint_sym.errors import InvalidModelError  # noqa: E402
from adjoint_sym.plot import (  # noqa: E402
    LEGEND_MAX,
    adjoint_path,
    adjoint_trajectories,
    convergence,
    fitted_order,
    trajectories,
)

K, X0, T1 = -0.7, 1.3, 2.0
RTOL, ATOL = 1e-9, 1e-12
#: Global error of a forward solve plus a backward solve at (RTOL, ATOL) on this smooth
#: scalar problem stays within a few tens of tolerance units; 100 leaves room without
#: hiding a wrong sign or a missing factor (those are O(1) relative errors).
TOL_UNITS = 100.0


def decay() -> ODESystem:
    return ODESystem.from_strings(["x"], ["k"], "t", ["k*x"], name="decay")


def decay_problem(loss=None) -> Problem:
    return Problem(decay(), [X0], {"k": K}, 0.0, T1, loss or FinalLoss("x**2"))


def lv_problem(t1: float = 1.0) -> Problem:
    params = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}
    return Problem(lotka_volterra(), [1.0, 1.0], params, 0.0, t1, FinalLoss("x**2 + y**2"))


def in_units(got, want) -> float:
    got, want = np.asarray(got, float), np.asarray(want, float)
    return float(np.max(np.abs(got - want) / (ATOL + RTOL * np.abs(want))))


@pytest.fixture(autouse=True)
def no_show(monkeypatch):
    """Fail if anything calls plt.show(), and check pyplot never gets a figure."""
    import matplotlib.pyplot as plt

    def refuse(*args, **kwargs):
        raise AssertionError("adjoint_sym.plot called plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a plot function registered a figure with pyplot"


# -- trajectories -----------------------------------------------------------------------------


def test_trajectories_labels_lines_and_values():
    fig = trajectories(decay_problem(), rtol=RTOL, atol=ATOL)
    assert isinstance(fig, matplotlib.figure.Figure)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "t"
    assert ax.get_ylabel() == "h(t)"
    (line,) = ax.get_lines()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["x"]
    t, x = line.get_xdata(), line.get_ydata()
    assert t[0] == 0.0 and t[-1] == T1
    assert in_units(x, X0 * np.exp(K * t)) < TOL_UNITS


def test_trajectories_one_line_per_state_and_targets_as_markers():
    times = [0.5, 1.0]
    targets = [[1.0, 0.5], [0.8, 0.9]]
    prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 1.0,
                   ObservationLoss(times, targets=targets))  # fmt: skip
    fig = trajectories(prob)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.get_lines()] == ["x", "y"]
    x_dots, y_dots = ax.collections
    np.testing.assert_array_equal(x_dots.get_offsets(), [[0.5, 1.0], [1.0, 0.8]])
    np.testing.assert_array_equal(y_dots.get_offsets(), [[0.5, 0.5], [1.0, 0.9]])
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["x", "x targets", "y", "y targets"]


def test_trajectories_matrix_level_names_and_given_axes():
    from matplotlib.figure import Figure

    sysm = two_layer(2, 3)
    rng = np.random.default_rng(1)
    params = {name: 0.3 * rng.standard_normal(shape) for name, shape in sysm.param_shapes.items()}
    prob = Problem(sysm, [0.5, -0.2], params, 0.0, 0.5, FinalLoss("h[0]**2"))
    host = Figure()
    ax = host.subplots()
    assert trajectories(prob, ax=ax) is host
    assert [line.get_label() for line in ax.get_lines()] == ["h[0]", "h[1]"]


# -- adjoint ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("t0", "t1"), [(0.0, T1), (T1, 0.0)], ids=["forward span", "backward span"])
def test_adjoint_path_matches_closed_form(t0, t1):
    # a(t) x(t) = 2 x1^2 is constant, so a_k(t) = 2 x1^2 (t1 - t) whatever the direction.
    path = adjoint_path(Problem(decay(), [X0], {"k": K}, t0, t1, FinalLoss("x**2")), rtol=RTOL, atol=ATOL)
    x1 = X0 * np.exp(K * (t1 - t0))
    assert path.t[0] == t1 and path.t[-1] == t0
    assert in_units(path.a[:, 0], 2 * x1 * np.exp(K * (t1 - path.t))) < TOL_UNITS
    assert in_units(path.a_theta[:, 0], 2 * x1**2 * (t1 - path.t)) < TOL_UNITS
    # a_t(t1) = -dL/dt1 = -2 x1 * k x1, and da_t/dt = 0 for an autonomous system.
    assert in_units(path.a_t, np.full_like(path.t, -2 * K * x1**2)) < TOL_UNITS


def test_adjoint_path_jumps_at_observation_times():
    """At t_i the adjoint gains dL/dh(t_i) = 2 (x(t_i) - y_i) (Chen et al., appendix B)."""
    times, targets = [0.5, 1.2, T1], [[1.0], [0.2], [0.3]]
    path = adjoint_path(decay_problem(ObservationLoss(times, targets=targets)), rtol=RTOL, atol=ATOL)
    for t_i, (y_i,) in zip(times[:-1], targets[:-1]):
        (idx,) = np.flatnonzero(path.t == t_i)[:1]
        assert path.t[idx + 1] == t_i, "the jump shows as one time sampled twice"
        jump = path.a[idx + 1, 0] - path.a[idx, 0]
        expected = 2 * (X0 * np.exp(K * t_i) - y_i)
        assert in_units(jump, expected) < TOL_UNITS
    # a(t0) is the sum of every observation's contribution carried back to t0.
    x = X0 * np.exp(K * np.asarray(times))
    dh0 = sum(2 * (x_i - y) * np.exp(K * t_i) for x_i, (y,), t_i in zip(x, targets, times))
    assert in_units(path.a[-1, 0], dh0) < TOL_UNITS


@pytest.mark.parametrize(("t0", "t1"), [(0.0, T1), (T1, 0.0)], ids=["forward span", "backward span"])
def test_adjoint_path_ends_at_dL_dt0_when_the_loss_depends_on_time(t0, t1):
    """Regression: the plotted path once subtracted the loss's explicit dL/dt from a_t.

    For x' = k x and L = t x^2 read at t1 with h0 fixed at the moved t0, x(t1) = x0 e^{k (t1 - t0)}
    and L = t1 x0^2 e^{2k (t1 - t0)}, so dL/dt0 = -2 k t1 x(t1)^2; the explicit x^2 does not move
    with t0.  The path's a_t must end there (and at the engine's own dL/dt0).
    """
    prob = Problem(decay(), [X0], {"k": K}, t0, t1, FinalLoss("t*x**2"))
    path = adjoint_path(prob, rtol=RTOL, atol=ATOL)
    x1 = X0 * np.exp(K * (t1 - t0))
    assert in_units(path.a_t[-1], -2 * K * t1 * x1**2) < TOL_UNITS


def test_adjoint_trajectories_axes_lines_labels():
    fig = adjoint_trajectories(lv_problem())
    ax_a, ax_theta = fig.axes
    assert ax_a.get_ylabel() == "a(t) = dL/dh(t)"
    assert ax_theta.get_ylabel() == "a_theta(t)"
    assert ax_theta.get_xlabel() == "t"
    assert [t.get_text() for t in ax_a.get_legend().get_texts()] == ["x", "y"]
    assert [t.get_text() for t in ax_theta.get_legend().get_texts()] == ["a", "b", "c", "d"]


def test_adjoint_trajectories_selects_parameter_blocks_of_a_network():
    sysm = two_layer(2, 8)  # 16 + 8 + 16 + 2 = 42 parameter entries
    rng = np.random.default_rng(2)
    params = {name: 0.3 * rng.standard_normal(shape) for name, shape in sysm.param_shapes.items()}
    prob = Problem(sysm, [0.5, -0.2], params, 0.0, 0.5, FinalLoss("h[0]**2 + h[1]**2"))
    full = adjoint_trajectories(prob)
    assert [len(ax.get_lines()) for ax in full.axes] == [2, 42]
    assert LEGEND_MAX < 42 and full.axes[1].get_legend() is None
    some = adjoint_trajectories(prob, params=["b2"])
    assert [t.get_text() for t in some.axes[1].get_legend().get_texts()] == ["b2[0,0]", "b2[1,0]"]


def test_adjoint_trajectories_errors_name_the_culprit():
    with pytest.raises(InvalidModelError, match=r"unknown parameter 'W'.*\['a', 'b', 'c', 'd'\]"):
        adjoint_trajectories(lv_problem(), params=["W"])
    from matplotlib.figure import Figure

    with pytest.raises(InvalidModelError, match="axes must be two matplotlib Axes"):
        adjoint_trajectories(lv_problem(), axes=[Figure().subplots()])
    with pytest.raises(InvalidModelError, match="expected a Problem, got str"):
        trajectories("x' = x")


# -- convergence ------------------------------------------------------------------------------


def test_convergence_log_axes_orders_and_lines():
    rtols = np.array([1e-3, 1e-5, 1e-7, 1e-9])
    data = {"adjoint": (rtols, 3.0 * rtols), "backsolve": (rtols, 5.0 * rtols**0.5)}
    fig = convergence(data)
    (ax,) = fig.axes
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("rtol", "error")
    assert len(ax.get_lines()) == 3  # two methods and the error = rtol guide
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["adjoint (order 1.00)", "backsolve (order 0.50)", "error = rtol"]


def test_convergence_drops_zero_errors_and_handles_a_single_point():
    rtols = [1e-4, 1e-6, 1e-8]
    fig = convergence({"exact": (rtols, [0.0, 0.0, 1e-12]), "fd": (rtols, [1e-3, 2e-5, 0.0])}, reference=False)
    ax = fig.axes[0]
    exact, fd = ax.get_lines()
    assert list(exact.get_xdata()) == [1e-8]
    assert list(fd.get_xdata()) == [1e-4, 1e-6]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts[0] == "exact (order n/a)"
    assert texts[1] == f"fd (order {np.log10(1e-3 / 2e-5) / 2:.2f})"


def test_fitted_order_is_the_least_squares_slope():
    rtols = np.array([1e-2, 1e-4, 1e-6])
    errors = np.array([1e-2, 3e-5, 1e-8])
    slope = np.polyfit(np.log10(rtols), np.log10(errors), 1)[0]
    assert fitted_order(rtols, errors) == pytest.approx(slope, rel=1e-12)
    assert np.isnan(fitted_order([1e-3], [1e-4]))


def test_convergence_reads_a_study_object():
    """Anything with ``rtols`` and an ``errors`` mapping, as verify.convergence_study returns."""

    from types import SimpleNamespace

    rtols = np.array([1e-4, 1e-6, 1e-8])
    study = SimpleNamespace(rtols=rtols, errors={"adjoint": 7.0 * rtols**1.5}, steps=np.array([4, 8]))
    ax = convergence(study, reference=False).axes[0]
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), rtols)
    assert ax.get_legend().get_texts()[0].get_text() == "adjoint (order 1.50)"


def test_convergence_rejects_malformed_data():
    with pytest.raises(InvalidModelError, match=r"data\['adjoint'\] has 2 rtols but 3 errors"):
        convergence({"adjoint": ([1e-3, 1e-4], [1.0, 2.0, 3.0])})
    with pytest.raises(InvalidModelError, match=r"data\['adjoint'\] must be a pair"):
        convergence({"adjoint": 1.0})
    with pytest.raises(InvalidModelError, match="takes a mapping of method name"):
        convergence([([1e-3], [1e-4])])


# -- the optional dependency ------------------------------------------------------------------


def test_missing_matplotlib_names_the_plot_extra(monkeypatch):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'adjoint_sym\[plot\]'"):
        convergence({"adjoint": ([1e-3, 1e-4], [1e-3, 1e-4])})
    # The numbers need no matplotlib.
    assert adjoint_path(lv_problem(0.1)).a.shape[1] == 2
