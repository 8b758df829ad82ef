"""The figures, looked at: rendered with Agg and checked for the facts that make them read.

No clipped title or label (its window extent lies inside the figure), no overlapping tick
labels (pairwise bounding boxes of the visible tick labels do not intersect), no legend over
a line; and the adjoint figure shows the complete ``dL/dtheta`` where the loss reads a
parameter.  The checker (``adjoint_sym.plot.layout_problems``) is first shown to fail on
figures built to break each rule.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem, gradient
from adjoint_sym._figures import new_figure, tidy
from adjoint_sym.builders import lotka_volterra, two_layer
from adjoint_sym.plot import adjoint_path, adjoint_trajectories, convergence, layout_problems, trajectories

LONG = "Lotka-Volterra predator-prey model with a long descriptive name, as papers have them"
LV_PARAMS = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}


def _lv(loss, t1=5.0, name=LONG) -> Problem:
    system = ODESystem.from_strings(["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y", "d*x*y - c*y"], name=name)
    return Problem(system, [1.0, 1.0], LV_PARAMS, 0.0, t1, loss)


# -- the checker can fail ---------------------------------------------------------------------


def test_checker_catches_a_clipped_title():
    fig, (ax,) = new_figure()
    ax.plot([0, 1], [0, 1])
    ax.set_title("a title far longer than the figure is wide, " * 3)
    assert any(p.startswith("clipped: title") for p in layout_problems(fig))


def test_checker_catches_overlapping_tick_labels():
    fig, (ax,) = new_figure(figsize=(2.0, 2.0))
    ax.plot([0, 1], [0, 1])
    ax.set_xticks(np.linspace(0, 1, 11), [f"{x:.6f}" for x in np.linspace(0, 1, 11)])
    assert any(p.startswith("overlapping: axes 0 x tick label") for p in layout_problems(fig))


def test_checker_catches_a_legend_over_a_line():
    fig, (ax,) = new_figure()
    ax.plot([0, 1], [1, 1], label="through the upper right")
    ax.plot([0, 1], [0, 0.9], label="second")
    ax.legend(loc="upper right")
    assert any(p.startswith("covering: the legend of axes 0") for p in layout_problems(fig))


def test_tidy_mends_what_the_checker_finds():
    fig, (ax,) = new_figure()
    ax.plot([0, 1], [1, 1], label="through the upper right")
    ax.plot([0, 1], [0, 0.9], label="second")
    ax.legend(loc="upper right")
    ax.set_title("a title far longer than the figure is wide, " * 3)
    assert len(layout_problems(fig)) >= 2
    assert layout_problems(tidy(fig)) == []


# -- every figure the package draws -------------------------------------------------------------

FIGURES = {
    "trajectories, long name": lambda: trajectories(_lv(FinalLoss("x**2 + y**2"))),
    "trajectories with targets": lambda: trajectories(
        _lv(ObservationLoss([1.0, 2.0, 3.0, 4.0, 5.0], targets=[[1.0, 0.5]] * 5))
    ),
    "adjoint, long name, parameter in the loss": lambda: adjoint_trajectories(_lv(FinalLoss("x**2 + 30*c*y"))),
    "adjoint, observation loss": lambda: adjoint_trajectories(
        _lv(ObservationLoss([1.0, 2.5, 5.0], expr="x + c"), name="LV")
    ),
    "adjoint of a network (12 entries)": lambda: adjoint_trajectories(
        Problem(
            two_layer(2, 2),
            [0.5, -0.3],
            {
                "W1": [[0.3, -0.2], [0.1, 0.4]],
                "b1": [[0.1], [0.0]],
                "W2": [[0.5, 0.2], [-0.3, 0.1]],
                "b2": [[0], [0.1]],
            },
            0.0,
            2.0,
            FinalLoss("h[0]**2 + h[1]"),
        )
    ),
    "convergence over many decades": lambda: convergence(
        {
            "adjoint": (np.logspace(-3, -13, 11), 2 * np.logspace(-3, -13, 11)),
            "finite-difference": (np.logspace(-3, -13, 11), np.logspace(-2, -7, 11)),
        },
        title="Error of every route against complex step as rtol sweeps eleven decades",
    ),
}


@pytest.mark.parametrize("name", list(FIGURES))
def test_figures_are_laid_out_to_be_read(name):
    fig = FIGURES[name]()
    assert layout_problems(fig) == []


def test_figures_are_saved_as_they_were_checked(tmp_path):
    fig = FIGURES["adjoint, long name, parameter in the loss"]()
    fig.savefig(tmp_path / "adjoint.png", dpi=80)
    assert (tmp_path / "adjoint.png").stat().st_size > 10_000
    assert layout_problems(fig) == [], "saving must not undo the layout"


# -- the adjoint figure says what the table says -----------------------------------------------


def test_adjoint_figure_marks_the_complete_dL_dtheta():
    """L = x(t1) + c with c not in f: a_c stays 0 on the way back, yet dL/dc = 1; the marker shows it."""
    decay = ODESystem.from_strings(["x"], ["k", "c"], "t", ["-k*x"])
    prob = Problem(decay, [1.0], {"k": 0.5, "c": 2.0}, 0.0, 1.0, FinalLoss("x + c"))
    fig = adjoint_trajectories(prob, params=["c"])
    ax_theta = fig.axes[1]
    (curve,) = [line for line in ax_theta.get_lines() if line.get_label() == "c"]
    markers = [line for line in ax_theta.get_lines() if line.get_marker() == "D" and len(line.get_xdata()) == 1]
    assert np.max(np.abs(curve.get_ydata())) < 1e-12, "c does not enter f, so a_c is zero"
    (marker,) = markers
    g = gradient(prob, rtol=1e-10, atol=1e-12)
    assert float(marker.get_xdata()[0]) == prob.t0
    # dL/dc = 1 exactly (c is only in the loss); the adjoint solve adds nothing to it
    assert float(marker.get_ydata()[0]) == pytest.approx(g.dparams["c"], abs=1e-12)
    assert g.dparams["c"] == pytest.approx(1)
    assert "dL/dtheta at t0" in [t.get_text() for t in ax_theta.get_legend().get_texts()]


def test_adjoint_path_dtheta_is_the_gradient():
    prob = Problem(lotka_volterra(), [1.0, 1.0], LV_PARAMS, 0.0, 2.0, ObservationLoss([1.0, 2.0], expr="c*x**2"))
    path = adjoint_path(prob, rtol=1e-10, atol=1e-12)
    g = gradient(prob, rtol=1e-10, atol=1e-12)
    # the same sweep at the same tolerances: agreement to 1e-8 relative
    np.testing.assert_allclose(path.dtheta, g.dtheta, rtol=1e-8)
    assert abs(path.explicit_theta[2]) > 0.1 and np.all(path.explicit_theta[[0, 1, 3]] == 0)
