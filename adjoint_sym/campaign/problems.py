"""Campaign problems as JSON specs: drawn from ``(seed, index)``, rebuilt anywhere.

Problem ``index`` of a campaign belongs to family ``families[index % len(families)]`` and
draws its numbers from :class:`~adjoint_sym.campaign.sampler.Sampler` ``(seed, index)``,
so the same seed gives the same problems on every machine and in every order.  A spec is
what a worker receives and what a record keeps: a dict of JSON types,

* for expression systems, exactly a spec file of ``adjoint-sym check`` (``name``,
  ``state``, ``time``, ``rhs``, ``params``, ``h0``, ``t0``, ``t1``, ``loss``, ``solver``;
  see :mod:`adjoint_sym.cli.spec`): save a failing record's ``problem`` as JSON and run
  ``adjoint-sym check problem.json`` to look at it again; a loss with a running cost is
  ``{"kind": "integral", "expr": g}`` or, summed with a point loss, a list of such tables
  (``[{"kind": "final", ...}, {"kind": "integral", ...}]``), as in spec files;
* for matrix-level networks, ``network`` (``{"builder": "two_layer", "n": 2, "hidden": 3,
  "activation": "tanh"}``) instead of ``state``/``time``/``rhs``, matrices as lists of rows.

:func:`build_problem` turns a spec back into a :class:`~adjoint_sym.numeric.problem.Problem`;
systems are cached per process, so a worker derives and compiles each template once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from ..errors import InvalidModelError
from ..numeric.loss import FinalLoss, IntegralLoss, Loss, ObservationLoss, SumLoss
from ..numeric.problem import Problem
from ..numeric.solve import check_solver
from ..symbolic import builders
from ..symbolic.system import ODESystem
from .families import FAMILIES, PLANNED
from .sampler import Sampler, check_seed

#: The network builders a spec may name (a whitelist: a spec never names arbitrary code).
NETWORKS = {"two_layer": builders.two_layer, "neural_ode": builders.neural_ode}


def check_families(families: Sequence[str] | None) -> tuple[str, ...]:
    """The families to cycle through: all of :data:`~adjoint_sym.campaign.families.FAMILIES` by default.

    Examples
    --------
    >>> check_families(["stiff", "neural"])
    ('stiff', 'neural')
    >>> check_families(["integrals"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    adjoint_sym.errors.InvalidModelError: unknown family 'integrals'; choose among equilibrium, ...
    """
    if families is None:
        return tuple(FAMILIES)
    if isinstance(families, str) or not families:
        raise InvalidModelError(f"families must be a non-empty list of names among {', '.join(FAMILIES)}")
    for name in families:
        if name in PLANNED:
            raise InvalidModelError(f"family {name!r} is planned: {PLANNED[name]}; choose among {', '.join(FAMILIES)}")
        if name not in FAMILIES:
            raise InvalidModelError(f"unknown family {name!r}; choose among {', '.join(FAMILIES)}")
    return tuple(dict.fromkeys(families))


def family_of(index: int, families: Sequence[str]) -> str:
    """The family of problem ``index``: the families take turns."""
    return families[check_seed(index, "index") % len(families)]


def problem_spec(seed: int, index: int, families: Sequence[str] | None = None) -> dict:
    """The spec of problem ``index`` of the campaign with ``seed`` (see the module docstring).

    Examples
    --------
    >>> spec = problem_spec(0, 3, ["stiff"])
    >>> spec["name"].split("/")[0], spec["solver"]["method"] in ("LSODA", "BDF", "Radau")
    ('stiff', True)
    >>> problem_spec(0, 3, ["stiff"]) == spec
    True
    """
    families = check_families(families)
    return FAMILIES[family_of(index, families)](Sampler(seed, index))


def solver_of(spec: Mapping) -> tuple[str, float, float]:
    """``(method, rtol, atol)`` of a spec's ``solver`` section (the checker's defaults if absent)."""
    solver = spec.get("solver", {})
    method = solver.get("method", "DOP853")
    check_solver(method)
    return method, float(solver.get("rtol", 1e-8)), float(solver.get("atol", 1e-10))


def build_problem(spec: Mapping) -> Problem:
    """The :class:`~adjoint_sym.numeric.problem.Problem` a spec describes.

    Raises
    ------
    InvalidModelError
        A field is missing or invalid (the message names it).

    Examples
    --------
    >>> prob = build_problem(problem_spec(0, 4, ["neural"]))
    >>> prob.system.is_matrix_level
    True
    """
    if not isinstance(spec, Mapping):
        raise InvalidModelError(f"a problem spec is a mapping of fields, got {type(spec).__name__}")
    missing = [k for k in ("params", "h0", "t0", "t1", "loss") if k not in spec]
    if missing:
        raise InvalidModelError(f"problem spec lacks field {missing[0]!r}")
    params = {name: np.asarray(v, dtype=float) if isinstance(v, list) else v for name, v in spec["params"].items()}
    if "network" in spec:
        system = _network(**spec["network"])
    else:
        for key in ("state", "rhs"):
            if key not in spec:
                raise InvalidModelError(f"problem spec lacks field {key!r} (or 'network' for a neural system)")
        system = _expression_system(tuple(spec["state"]), tuple(params), spec.get("time", "t"), tuple(spec["rhs"]))
    return Problem(system, spec["h0"], params, spec["t0"], spec["t1"], _loss(spec["loss"]))


@lru_cache(maxsize=256)
def _expression_system(state: tuple, params: tuple, time: str, rhs: tuple) -> ODESystem:
    return ODESystem.from_strings(state=list(state), params=list(params), time=time, rhs=list(rhs))


@lru_cache(maxsize=64)
def _network(builder: str, **options) -> ODESystem:
    if builder not in NETWORKS:
        raise InvalidModelError(f"network.builder: unknown builder {builder!r}; choose among {', '.join(NETWORKS)}")
    return NETWORKS[builder](**options)


def _loss(loss: Mapping | list) -> Loss:
    """One loss table, or (as in spec files) a list of tables that add up: a :class:`SumLoss`."""
    if isinstance(loss, list):
        if len(loss) < 2:
            raise InvalidModelError(f"loss: a list of loss terms holds two or more tables, got {len(loss)}")
        return SumLoss(*(_loss_term(term, f"loss[{i}]") for i, term in enumerate(loss)))
    return _loss_term(loss, "loss")


def _loss_term(loss: Mapping, where: str) -> Loss:
    kind = loss.get("kind") if isinstance(loss, Mapping) else None
    if kind == "final":
        return FinalLoss(loss["expr"])
    if kind == "integral":
        return IntegralLoss(loss["expr"])
    if kind == "observations":
        if "targets" in loss:
            return ObservationLoss(loss["times"], targets=loss["targets"])
        return ObservationLoss(loss["times"], expr=loss["expr"])
    raise InvalidModelError(
        f"{where}.kind: {kind!r}; a campaign problem's loss is 'final', 'observations' or 'integral' "
        "(or a list of them, summed)"
    )


__all__ = ["NETWORKS", "build_problem", "check_families", "family_of", "problem_spec", "solver_of"]
