"""Property testing of Hessian-vector-product code: check an HVP function on drawn problems.

:func:`check_hvp_function` is the second-order counterpart of
:func:`~adjoint_sym.testing.check_gradient_function`: problems are drawn by
:mod:`adjoint_sym.strategies`, each gets a direction ``v`` (seeded, random, every entry
scaled by its input's typical size, so no input is favoured and no entry is zero by
construction), your function's ``H v`` is compared with an independent reference
(:mod:`adjoint_sym.reference.hessian`: complex step of the forward-sensitivity gradient,
or the dense forward Hessian where complex step refuses), and the first disagreement is
shrunk and raised as a :class:`~adjoint_sym.errors.GradientMismatchError`.

Tolerance model
---------------
An entry passes when ``|yours - reference| <= atol + rtol * |reference|`` with the
defaults of :mod:`adjoint_sym.testing.gradient_function` (``rtol = 1e-6``, ``atol = 1e-8``)
and for the same reason: the reference solves run at ``1e-12`` (complex step) and, on the
strategies' short spans with bounded growth, are good to ``GLOBAL_ERROR_FACTOR * 1e-10 =
1e-8`` relative, leaving two decades for the code under test solved at ``rtol <= 1e-8``;
a wrong second-order term is off by order one.

Hypothesis is needed only by :func:`check_hvp_function` (imported on call).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ..errors import InvalidModelError, SolverFailedError
from ..numeric.problem import Problem
from ..numeric.second_order import HessianVectorProduct, direction_vector
from ..verify.hessian import hvp, random_direction
from .gradient_function import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    REFERENCE_ATOL,
    REFERENCE_RTOL,
    Comparison,
    Row,
    mismatch_error,
)

#: HVP references in order of preference: the first that accepts a problem judges it.
HVP_REFERENCE_PREFERENCE = ("complex-step", "forward-hessian", "finite-difference")

HVPFunction = Callable[[Problem, np.ndarray], object]


def as_hvp(value, problem: Problem, v: np.ndarray, *, method: str = "yours") -> HessianVectorProduct:
    """The user's ``H v`` as a :class:`HessianVectorProduct`, its shape checked.

    ``value`` is a :class:`HessianVectorProduct`, a flat array ``[h0 block, theta block]``,
    or a mapping ``{"dh0": ..., "dparams": {name: ...}}`` (torch/JAX tensors accepted).

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x"))
    >>> as_hvp({"dh0": [0.1], "dparams": {"k": 0.6}}, prob, np.array([0.0, 1.0])).flat
    array([0.1, 0.6])
    """
    if isinstance(value, HessianVectorProduct):
        return value
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, Mapping):
        missing = [k for k in ("dh0", "dparams") if k not in value]
        if missing:
            raise InvalidModelError(f"the HVP function's result lacks key {missing[0]!r}; it needs 'dh0' and 'dparams'")
        value = {"dh0": _numpy(value["dh0"]), "dparams": {k: _numpy(x) for k, x in value["dparams"].items()}}
    else:
        value = _numpy(value)
    try:
        flat = direction_vector(problem, value)  # the same layout and checks as a direction
    except InvalidModelError as exc:
        raise InvalidModelError(f"the HVP function's result: {str(exc).replace('the direction', 'H v')}") from None
    return HessianVectorProduct.from_vector(problem, flat, v, method, math.nan)


def _numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=float) if not isinstance(value, Mapping) else value


def reference_hvp(problem: Problem, v: np.ndarray, methods: Sequence[str] | None = None) -> HessianVectorProduct:
    """The reference ``H v`` at the reference tolerances: each of ``methods`` must accept the
    problem, or else the first of :data:`HVP_REFERENCE_PREFERENCE` that does."""
    if methods:
        return hvp(problem, v, methods[0], rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
    refusal = None
    for method in HVP_REFERENCE_PREFERENCE:
        try:
            return hvp(problem, v, method, rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
        except InvalidModelError as exc:  # complex step on non-analytic f, a too large dense Hessian
            refusal = exc
    raise refusal


def compare_hvp(
    yours: HessianVectorProduct,
    reference: HessianVectorProduct,
    problem: Problem,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> Comparison:
    """Every entry of ``H v`` against the reference: ``|yours - ref| <= atol + rtol |ref|``."""
    names = problem.system.state_names
    ours, ref = yours.quantities(names), reference.quantities(names)
    rows = []
    for q, r in ref.items():
        y = ours.get(q, math.nan)
        dev = abs(y - r) / (atol + rtol * abs(r))
        rows.append(Row(q, y, r, math.inf if not math.isfinite(dev) else dev))
    return Comparison(tuple(rows), reference.method, rtol, atol)


def check_hvp_problem(
    fn: HVPFunction,
    problem: Problem,
    v=None,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    reference: HessianVectorProduct | None = None,
) -> Comparison:
    """Run ``fn(problem, v)`` on one problem and compare it with the reference; raise on mismatch.

    ``v`` defaults to a random direction (``seed``); ``reference``, when given, is the
    reference ``H v`` already computed along ``v``.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, hvp
    >>> decay = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(decay, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> check_hvp_problem(lambda p, v: hvp(p, v, rtol=1e-10, atol=1e-12), prob).ok
    True
    """
    v = random_direction(problem, seed) if v is None else direction_vector(problem, v)
    reference = reference_hvp(problem, v, methods) if reference is None else reference
    yours = as_hvp(fn(problem, v.copy()), problem, v)
    comparison = compare_hvp(yours, reference, problem, rtol=rtol, atol=atol)
    if not comparison.ok:
        raise mismatch_error(problem, comparison, what=f"your HVP function (along v = {np.round(v, 4).tolist()})")
    return comparison


def check_hvp_function(
    fn: HVPFunction,
    *,
    strategy=None,
    max_examples: int | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
    methods: Sequence[str] | None = None,
    shrink: bool = True,
    seed: int | None = None,
    direction_seed: int = 0,
) -> None:
    """Property-test a Hessian-vector-product function against adjoint_sym's references.

    Parameters
    ----------
    fn : callable ``(Problem, v) -> HessianVectorProduct | mapping | array``
        The code under test: ``H v`` of the loss in ``(h0, theta)`` for the flat
        direction ``v`` (``[v_h0, v_theta]``, ``theta`` in ``param_names`` order), returned
        gradient-shaped (``dh0``, ``dparams``) or flat.
    strategy : hypothesis strategy of Problem, optional
        Default :func:`adjoint_sym.strategies.problems`.
    max_examples : int, optional
        Default: the loaded hypothesis profile's.
    rtol, atol : float
        Allowed deviation ``atol + rtol*|reference|`` (see the module docstring).
    methods : sequence of str, optional
        The reference method; default the first of :data:`HVP_REFERENCE_PREFERENCE`
        that accepts the problem.
    shrink, seed
        As for :func:`~adjoint_sym.testing.check_gradient_function`.
    direction_seed : int
        Seed of the random direction drawn for each problem.

    Raises
    ------
    GradientMismatchError
        With the shrunk problem, the direction and the table quantity / yours /
        reference / deviation; attributes ``problem`` and ``comparison``.

    Examples
    --------
    >>> from adjoint_sym.testing.hvp_mutants import handwritten_hvp
    >>> check_hvp_function(handwritten_hvp, max_examples=3)
    """
    from . import strategies  # hypothesis is an optional extra: imported only here

    def judge(problem: Problem) -> bool:
        v = random_direction(problem, direction_seed)
        try:
            reference = reference_hvp(problem, v, methods)
        except SolverFailedError:
            return False  # the reference cannot judge this draw: reject it
        check_hvp_problem(fn, problem, v, rtol=rtol, atol=atol, reference=reference)
        return True

    strategies.run_property(judge, strategy, max_examples=max_examples, shrink=shrink, seed=seed)


__all__ = [
    "HVP_REFERENCE_PREFERENCE",
    "as_hvp",
    "check_hvp_function",
    "check_hvp_problem",
    "compare_hvp",
    "reference_hvp",
]
