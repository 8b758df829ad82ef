"""Hessian-vector products by name, and the checker that compares them.

:func:`hvp` runs one route: the second-order adjoint (``"adjoint"``,
:mod:`adjoint_sym.adjoint.second_order`) or a reference (``"complex-step"``,
``"finite-difference"``, ``"forward-hessian"``, :mod:`adjoint_sym.reference.hessian`).
:func:`check_hvp` runs several along one direction and judges every entry of ``H v``.

Tolerance model
---------------
As for gradients (:mod:`adjoint_sym.verify.tolerance`), in solver units: a route ``m``
agrees with the reference ``r`` on entry ``q`` when

    s_q |Hv_m(q) - Hv_r(q)|  <=  C * kappa * (tau_m + tau_r) * (s_q |Hv_r(q)| + max_k s_k |Hv_r(k)|)

with ``s_q`` the typical size of the input ``q`` (so every scaled entry has the units of
``L``), ``tau`` the accuracy each route ran at (``rtol`` for the adjoint and the dense
forward Hessian, the tightened solve tolerance for complex step, solver noise over the
step for finite differences), ``kappa = max(1, max_i ||dh(t_i)/dh0||)`` the flow's
amplification of a perturbation, and ``C = 100``: the global error of a
tolerance-controlled solve is 1 to 100 times its local tolerance (Hairer, Norsett &
Wanner, sec. II.4).  Second order adds no factor: ``H v`` is the derivative of the
gradient along ``v``, and the forward tangent ``s`` and the tangent adjoint ``lambda``
are solved to the same relative tolerance as ``h`` and ``a`` (they are part of the same
error-controlled solves).  Measured against complex step on 46 problems (Lotka-Volterra, a
2-3-2 tanh network with observations, exponential decay, logistic growth with observations,
a non-normal linear system in scalar and matrix form, and the first 40 problems
:func:`adjoint_sym.strategies.problems` draws under a derandomized profile), the adjoint
at ``rtol`` = 1e-6, 1e-8, 1e-10 (``atol = rtol / 100``) stayed within 0.002 of the
allowance; a wrong second-order term misses by ``1 / tau``, six decades at ``rtol = 1e-8``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..adjoint.second_order import adjoint_hvp
from ..errors import GradientMismatchError, InvalidModelError, SolverFailedError
from ..numeric.problem import Problem
from ..numeric.second_order import HessianVectorProduct, direction_vector
from ..numeric.solve import IMPLICIT
from ..reference.complex_step import non_analytic_functions
from ..reference.finite_difference import input_scale, input_vector, trajectory
from ..reference.forward import state_growth
from ..reference.hessian import HVP_REFERENCES
from ..reference.hessian_forward import MAX_SENSITIVITIES
from ..reference.hessian_taylor import taylor_test_hvp
from .hessian_report import HessianFailure, HessianReport
from .tolerance import scaled_deviations

#: ``C`` of the tolerance model (see the module docstring).
AGREEMENT = 100.0
#: Deviations within this factor of the allowance are blamed on tolerances.
TOLERANCE_BAND = 1e3
#: References in order of preference: exact to rounding, then dense, then differences.
BEST_HVP_REFERENCES = ("complex-step", "forward-hessian", "finite-difference")


def hvp_methods() -> tuple[str, ...]:
    """Every method name :func:`hvp` accepts."""
    return ("adjoint", *HVP_REFERENCES)


def hvp(
    problem: Problem,
    v,
    method: str = "adjoint",
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    **options,
) -> HessianVectorProduct:
    """``H v``: the Hessian of the loss in ``(h0, theta)`` times the direction ``v``.

    Parameters
    ----------
    problem : Problem
        With an expression loss (``FinalLoss`` or ``ObservationLoss``).
    v : array-like or mapping
        Flat ``[v_h0 (n), v_theta (p)]`` (``theta`` flattened in ``param_names`` order,
        matrices row-major) or gradient-shaped ``{"dh0": ..., "dparams": {name: ...}}``
        (missing entries are zero).  The times ``t0``, ``t1`` and the observation times
        are held fixed; ``H v`` has no time entries.
    method : str
        ``"adjoint"`` (the second-order adjoint, default), or a reference:
        ``"complex-step"``, ``"finite-difference"``, ``"forward-hessian"``.
    solver, rtol, atol
        Passed to the route (references tighten their own solves).
    **options
        Route options (``adjoint_rtol`` for the adjoint, ``richardson`` for finite differences).

    Returns
    -------
    HessianVectorProduct
        ``.dh0``, ``.dparams`` (shaped like the gradient), ``.flat``, and ``.gradient``.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, Problem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> hv = hvp(prob, {"dparams": {"k": 1.0}}, rtol=1e-10, atol=1e-12)
    >>> round(float(hv.dh0[0]), 8), round(float(-np.exp(-0.5)), 8)  # d2L/dx0 dk = -T e^{-k T}
    (-0.60653066, -0.60653066)
    """
    if not isinstance(problem, Problem):
        raise InvalidModelError(f"hvp() takes a Problem, got {type(problem).__name__}")
    if method == "adjoint":
        return adjoint_hvp(problem, v, solver=solver, rtol=rtol, atol=atol, **options)
    if method in HVP_REFERENCES:
        return HVP_REFERENCES[method](problem, v, solver=solver, rtol=rtol, atol=atol, **options)
    raise InvalidModelError(f"unknown HVP method {method!r}; choose one of {', '.join(hvp_methods())}")


def random_direction(problem: Problem, seed: int = 0) -> np.ndarray:
    """A seeded random direction, each entry scaled by its input's typical size."""
    m = problem.system.n + problem.system.n_params
    try:
        states = trajectory(problem, input_vector(problem), solver="DOP853", rtol=1e-6, atol=1e-10)
    except SolverFailedError:
        states = None
    return np.random.default_rng(seed).standard_normal(m) * input_scale(problem, states)[:m]


def _default_methods(problem: Problem, solver: str) -> list[str]:
    methods = ["adjoint"]
    n, m = problem.system.n, problem.system.n + problem.system.n_params
    if not non_analytic_functions(problem) and solver not in IMPLICIT:
        methods.append("complex-step")
    if n * m * m <= MAX_SENSITIVITIES:
        methods.append("forward-hessian")
    if len(methods) < 3:
        methods.append("finite-difference")
    return methods


def check_hvp(
    problem: Problem,
    v=None,
    *,
    methods: Sequence[str] | None = None,
    reference: str | None = None,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    taylor: bool = True,
    seed: int = 0,
) -> HessianReport:
    """Compute ``H v`` by several routes and compare every entry (see the module docstring).

    Parameters
    ----------
    problem : Problem
    v : array-like or mapping, optional
        The direction; default :func:`random_direction` with ``seed``.
    methods : sequence of str, optional
        Default: the adjoint, complex step (analytic problems, explicit solvers), the
        dense forward Hessian (small problems) and, if fewer than three, finite differences.
    reference : str, optional
        Default the best of ``methods``: complex step, dense forward, finite differences.
    taylor : bool
        Also run the order-3 Taylor test on the first non-reference method.

    Returns
    -------
    HessianReport

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, Problem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> report = check_hvp(Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2")))
    >>> report.ok, report.reference, round(report.taylor_order)
    (True, 'complex-step', 3)
    """
    x = random_direction(problem, seed) if v is None else direction_vector(problem, v)
    methods = list(methods) if methods else _default_methods(problem, solver)
    ref = reference or next((r for r in BEST_HVP_REFERENCES if r in methods), None)
    if ref is None:
        raise InvalidModelError(f"check_hvp needs a reference among {BEST_HVP_REFERENCES}; methods are {methods}")
    if ref not in methods:
        methods.append(ref)
    results = {m: hvp(problem, x, m, solver=solver, rtol=rtol, atol=atol) for m in methods}
    report = compare_hvps(problem, results, ref, rtol=rtol, solver=solver, atol=atol)
    under_test = [m for m in report.methods if m != ref]
    if taylor and under_test:
        result = taylor_test_hvp(problem, results[under_test[0]], solver="DOP853")
        report = _with_taylor(report, result.fitted_order, result.ok)
    return report


def _with_taylor(report: HessianReport, order: float, ok: bool) -> HessianReport:
    import dataclasses

    return dataclasses.replace(report, taylor_order=order, taylor_ok=ok, ok=report.ok and ok)


def conditioning(problem: Problem, solver: str, rtol: float, atol: float) -> float:
    """``kappa = max(1, max_i ||dh(t_i)/dh0||)`` from a cheap tangent solve."""
    try:
        return max(1.0, state_growth(problem, solver=solver, rtol=rtol, atol=atol))
    except SolverFailedError:
        return 1.0


def compare_hvps(
    problem: Problem,
    results: dict[str, HessianVectorProduct],
    reference: str,
    *,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    solver: str = "DOP853",
) -> HessianReport:
    """Judge every route in ``results`` against ``results[reference]`` (the tolerance model)."""
    names = problem.system.state_names
    values = {m: r.quantities(names) for m, r in results.items()}
    quantities = tuple(values[reference])
    m_in = problem.system.n + problem.system.n_params
    try:
        states = trajectory(problem, input_vector(problem), solver=solver, rtol=1e-6, atol=1e-12)
    except SolverFailedError:
        states = None
    scales = input_scale(problem, states)[:m_in]
    kappa = conditioning(problem, solver, rtol, atol)
    accuracies = {m: float(r.stats.get("accuracy", rtol)) for m, r in results.items()}
    deviations: dict = {reference: dict.fromkeys(quantities, 0.0)}
    failures = []
    for m, vals in values.items():
        if m == reference:
            continue
        allowed = AGREEMENT * kappa * (accuracies[m] + accuracies[reference])
        devs = scaled_deviations(vals, values[reference], scales)
        deviations[m] = {q: devs[q] / allowed for q in quantities}
        for q in quantities:
            if not devs[q] <= allowed:  # NaN fails too
                v, r = vals[q], values[reference][q]
                failures.append(
                    HessianFailure(q, m, reference, v, r, devs[q], allowed, _cause(v, r, devs[q] / allowed))
                )
    order = (reference, *[m for m in results if m != reference])
    return HessianReport(
        ok=not failures,
        reference=reference,
        methods=order,
        direction=next(iter(results.values())).direction,
        quantities=quantities,
        values=values,
        deviations=deviations,
        failures=tuple(failures),
        accuracies=accuracies,
        conditioning=kappa,
        hvps=dict(results),
    )


def _cause(v: float, r: float, ratio: float) -> str:
    opposite = v * r < 0 and abs(v - r) > max(abs(v), abs(r))
    if ratio <= TOLERANCE_BAND and not opposite:
        return "tolerance: within three decades of what the tolerances explain; tighten rtol and re-check"
    hint = "not explained by tolerances: an error in the second-order adjoint (or the reference)"
    if r != 0 and abs(v + r) <= 1e-3 * abs(r):
        hint += "; the sign is flipped (check the sign of the tangent-adjoint equations)"
    elif v == 0 and r != 0:
        hint += "; the value is zero: a term is missing (the forward tangent s, or a second-derivative term)"
    elif opposite:
        hint += f"; the signs disagree ({v:.3g} against {r:.3g})"
    return hint


def assert_hvps_agree(problem: Problem, v=None, **options) -> HessianReport:
    """:func:`check_hvp`, raising :class:`GradientMismatchError` with the table when it fails."""
    report = check_hvp(problem, v, **options)
    if not report.ok:
        raise GradientMismatchError("Hessian-vector products disagree:\n\n" + report.markdown())
    return report


__all__ = [
    "AGREEMENT",
    "BEST_HVP_REFERENCES",
    "assert_hvps_agree",
    "check_hvp",
    "compare_hvps",
    "conditioning",
    "hvp",
    "hvp_methods",
    "random_direction",
]
