"""Results that record what ran, and shapes that are refused rather than reshaped.

A :class:`Gradient` from :func:`adjoint_sym.gradient` says what was asked for (``requested``),
which variant ran (``method``, its meaning unchanged), the solver, the tolerances and the
options; a gradient whose matrix blocks are shaped unlike their parameters (a transposed
``dL/dW``) is refused by ``compare`` and ``as_gradient`` with the expected shape.
"""

from __future__ import annotations

import dataclasses
import importlib.util

import numpy as np
import pytest

from adjoint_sym import FinalLoss, InvalidModelError, ObservationLoss, ODESystem, Problem, compare, gradient
from adjoint_sym.adjoint import BacksolveAdjoint
from adjoint_sym.builders import lotka_volterra
from adjoint_sym.testing.gradient_function import as_gradient

LV_PARAMS = {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}


@pytest.fixture(scope="module")
def lv():
    return Problem(lotka_volterra(), [1.0, 1.0], LV_PARAMS, 0.0, 1.0, FinalLoss("x**2 + y**2"))


@pytest.mark.parametrize(
    ("method", "solver", "requested", "ran"),
    [
        ("adjoint", "DOP853", "adjoint", "interpolating"),
        ("adjoint", "LSODA", "adjoint", "quadrature"),
        ("backsolve", "RK45", "backsolve", "backsolve"),
        ("forward", "DOP853", "forward", "forward"),
        ("complex-step", "DOP853", "complex-step", "complex-step"),
    ],
)
def test_a_gradient_records_what_was_asked_and_what_ran(lv, method, solver, requested, ran):
    g = gradient(lv, method, solver=solver, rtol=1e-9, atol=1e-11)
    assert (g.requested, g.method, g.solver, g.rtol, g.atol) == (requested, ran, solver, 1e-9, 1e-11)


def test_options_and_method_instances_are_recorded(lv):
    g = gradient(lv, "adjoint", adjoint_rtol=1e-10)
    assert g.options == {"adjoint_rtol": 1e-10}
    instance = BacksolveAdjoint(adjoint_rtol=1e-10)
    g = gradient(lv, instance)
    assert g.requested == repr(instance) and g.method == "backsolve"


@pytest.mark.skipif(importlib.util.find_spec("numba") is None, reason="the fast backend needs numba")
def test_the_fast_backend_records_the_solver_it_ran(lv):
    g = gradient(lv, solver="DOP853", backend="fast")
    # the fast backend always integrates with its own RK45, whatever solver was named
    assert (g.requested, g.method, g.solver, g.options) == ("adjoint", "interpolating", "RK45", {"backend": "fast"})


def test_the_repr_says_what_was_asked_when_it_differs(lv):
    text = repr(gradient(lv))
    assert "method='interpolating', requested='adjoint'" in text
    assert "requested" not in repr(gradient(lv, "interpolating"))


def test_dt1_of_an_observation_loss_is_none_and_the_repr_says_where_to_look():
    obs = Problem(lotka_volterra(), [1.0, 1.0], LV_PARAMS, 0.0, 2.0, ObservationLoss([1.0, 2.0], expr="x"))
    g = gradient(obs)
    assert g.dt1 is None and len(g.dtimes) == 2
    assert "dt1=None (an observation loss: t1 is the last observation time, see dtimes[-1])" in repr(g)


# -- shapes are refused, not reshaped -------------------------------------------------------------


@pytest.fixture(scope="module")
def rectangular():
    system = ODESystem.from_strings(
        ["x", "y"], {"W": (2, 3)}, "t", ["W[0,0]*x + W[0,1]*y + W[0,2]", "W[1,0]*x + W[1,1]*y + W[1,2]"]
    )
    prob = Problem(system, [1.0, 0.5], {"W": np.arange(6.0).reshape(2, 3) / 10}, 0.0, 1.0, FinalLoss("x**2 + y"))
    return prob, gradient(prob)


def test_compare_refuses_a_transposed_matrix_gradient(rectangular):
    prob, g = rectangular
    transposed = dataclasses.replace(g, dparams={"W": g.dparams["W"].T})
    with pytest.raises(InvalidModelError, match=r"dparams\['W'\] has shape \(3, 2\) but the parameter W has shape"):
        compare(prob, transposed)
    assert compare(prob, g).ok, "the same gradient in its own shape passes"


def test_as_gradient_refuses_a_transposed_matrix_and_reads_a_flat_one(rectangular):
    prob, g = rectangular
    given = {"loss": g.loss, "dh0": g.dh0, "dparams": {"W": g.dparams["W"].T}, "dt0": g.dt0, "dt1": g.dt1}
    with pytest.raises(
        InvalidModelError, match=r"must have shape \(2, 3\) \(or be flat, row-major\), got shape \(3, 2\)"
    ):
        as_gradient(given, prob)
    given["dparams"] = {"W": g.dparams["W"].ravel()}
    assert np.array_equal(as_gradient(given, prob).dparams["W"], g.dparams["W"])
