"""What every Hessian-vector-product route shares: the direction ``v`` and the result ``H v``.

The Hessian is that of the loss with respect to ``x = (h0, theta)``, the initial state
and the flattened parameters (:attr:`Problem.theta`: parameters in ``param_names`` order,
matrices row-major).  The times ``t0``, ``t1`` and the observation times are held fixed:
directions over times are not part of ``v``, and ``H v`` has no time entries.

A direction is given either flat, ``[v_h0 (n), v_theta (p)]``, or gradient-shaped: a
mapping ``{"dh0": ..., "dparams": {name: ...}}`` (or any object with ``.dh0`` and
``.dparams``, such as a :class:`~adjoint_sym.numeric.result.Gradient` or a
:class:`HessianVectorProduct`).  In the mapping form a missing ``dh0`` or a missing
parameter means zero along it; an unknown key or name is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidModelError
from .problem import Problem, unflatten_params


def direction_vector(problem: Problem, v) -> np.ndarray:
    """The direction ``v`` as the flat vector ``[v_h0, v_theta]``, validated.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem, Problem
    >>> sys = ODESystem.from_strings(["x", "y"], ["a", "b"], "t", ["-a*x", "b*x - y"])
    >>> prob = Problem(sys, [1.0, 0.0], {"a": 1.0, "b": 2.0}, 0.0, 1.0, FinalLoss("y"))
    >>> direction_vector(prob, {"dparams": {"b": 1.0}})
    array([0., 0., 0., 1.])
    """
    system = problem.system
    n, p = system.n, system.n_params
    if hasattr(v, "dh0") and hasattr(v, "dparams"):
        v = {"dh0": v.dh0, "dparams": v.dparams}
    if isinstance(v, Mapping):
        return _from_mapping(problem, v)
    if isinstance(v, str) or not isinstance(v, Sequence | np.ndarray):
        raise InvalidModelError(
            f"the direction must be a flat vector of {n + p} numbers [h0, theta] or a mapping "
            f"{{'dh0': ..., 'dparams': {{...}}}}, got {type(v).__name__}"
        )
    try:
        arr = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise InvalidModelError(f"the direction must be numeric, got {v!r}") from None
    if arr.shape != (n + p,):
        raise InvalidModelError(
            f"the direction must have {n + p} entries, [h0 ({n}), theta ({p})] in the order "
            f"{_layout(problem)}; got shape {arr.shape}"
        )
    return _finite(arr)


def _layout(problem: Problem) -> str:
    names = [f"h0[{s}]" for s in problem.system.state_names]
    for name, shape in problem.system.param_shapes.items():
        names.append(name if not shape else f"{name} ({shape[0]}x{shape[1]}, row-major)")
    return ", ".join(names)


def _from_mapping(problem: Problem, v: Mapping) -> np.ndarray:
    system = problem.system
    unknown = sorted(set(v) - {"dh0", "dparams"})
    if unknown:
        raise InvalidModelError(f"the direction has unknown key {unknown[0]!r}; use 'dh0' and 'dparams'")
    dh0 = v.get("dh0")
    try:
        h = np.zeros(system.n) if dh0 is None else np.asarray(dh0, dtype=float)
    except (TypeError, ValueError):
        raise InvalidModelError(f"the direction's dh0 must be numeric, got {dh0!r}") from None
    if h.shape != (system.n,):
        raise InvalidModelError(f"the direction's dh0 must have shape ({system.n},), got shape {h.shape}")
    given = v.get("dparams") or {}
    if not isinstance(given, Mapping):
        raise InvalidModelError(f"the direction's dparams must map parameter names to values, got {given!r}")
    strange = sorted(set(given) - set(system.param_names))
    if strange:
        raise InvalidModelError(
            f"the direction names unknown parameter {strange[0]!r}; the system's are {list(system.param_names)}"
        )
    parts = [h]
    for name, shape in system.param_shapes.items():
        size = int(np.prod(shape)) if shape else 1
        value = given.get(name, np.zeros(shape))
        try:
            block = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise InvalidModelError(f"the direction's dparams[{name!r}] must be numeric, got {value!r}") from None
        if block.size != size:
            raise InvalidModelError(f"the direction's dparams[{name!r}] must have shape {shape}, got {block.shape}")
        parts.append(block.reshape(-1))
    return _finite(np.concatenate(parts))


def _finite(arr: np.ndarray) -> np.ndarray:
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        raise InvalidModelError(f"the direction's entry {bad[0]} is not finite ({arr[bad[0]]})")
    return arr


@dataclass(frozen=True)
class HessianVectorProduct:
    """``H v``: the Hessian of the loss in ``(h0, theta)`` times a direction, gradient-shaped.

    Attributes
    ----------
    dh0 : ndarray, shape (n,)
        ``(H v)_h0 = d/d eps [dL/dh0](x + eps v)``.
    dparams : dict
        ``(H v)_theta`` by parameter name, shaped like each parameter.
    direction : ndarray, shape (n + p,)
        ``v``, flat.
    method : str
    loss : float
    gradient : ndarray or None, shape (n + p,)
        ``dL/d(h0, theta)`` when the route computes it on the way (the adjoint does).
    stats : dict
        Counts and timings; ``accuracy`` is the relative accuracy the checker assumes.

    Examples
    --------
    >>> import numpy as np
    >>> HessianVectorProduct(np.array([2.0]), {"k": -1.5}, np.array([1.0, 0.0]), "closed form", 0.5)
    HessianVectorProduct(method='closed form', dh0=[2.], dparams={k=-1.5}, |v|=1)
    """

    dh0: np.ndarray
    dparams: dict
    direction: np.ndarray
    method: str
    loss: float
    gradient: np.ndarray | None = None
    stats: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_vector(cls, problem: Problem, hv: np.ndarray, v: np.ndarray, method: str, loss: float, **kw):
        """Split a flat ``H v`` into the ``h0`` block and the named parameter blocks."""
        hv = np.asarray(hv, dtype=float)
        n = problem.system.n
        return cls(hv[:n].copy(), unflatten_params(problem.system, hv[n:]), np.asarray(v, float), method, loss, **kw)

    @property
    def flat(self) -> np.ndarray:
        """``H v`` as one vector ``[h0 block, theta block]``."""
        parts = [np.atleast_1d(np.asarray(x, dtype=float)).reshape(-1) for x in self.dparams.values()]
        return np.concatenate([np.asarray(self.dh0, dtype=float), *parts])

    def quantities(self, state_names=None) -> dict[str, float]:
        """Every entry by a readable name: ``Hv[h0[x]]``, ``Hv[k]``, ``Hv[W[0,1]]``."""
        names = state_names or [str(i) for i in range(len(self.dh0))]
        out = {f"Hv[h0[{name}]]": float(value) for name, value in zip(names, self.dh0)}
        for name, value in self.dparams.items():
            arr = np.asarray(value, dtype=float)
            if arr.ndim == 0:
                out[f"Hv[{name}]"] = float(arr)
            else:
                for idx in np.ndindex(arr.shape):
                    out[f"Hv[{name}[{','.join(map(str, idx))}]]"] = float(arr[idx])
        return out

    def as_dict(self) -> dict:
        """A JSON-ready dictionary (the ``adjoint-sym hvp --json`` contract)."""
        return {
            "loss": float(self.loss),
            "Hv_h0": [float(x) for x in self.dh0],
            "Hv_params": {k: (np.asarray(x).tolist() if np.ndim(x) else float(x)) for k, x in self.dparams.items()},
            "direction": [float(x) for x in self.direction],
            "gradient": None if self.gradient is None else [float(x) for x in self.gradient],
            "method": self.method,
            "stats": {k: x for k, x in self.stats.items() if isinstance(x, int | float | str | bool)},
        }

    def to_markdown(self) -> str:
        rows = [f"| {k} | {x:.10g} |" for k, x in self.quantities().items()]
        return f"**{self.method}**: H v\n\n| quantity | value |\n|---|---|\n" + "\n".join(rows) + "\n"

    def __repr__(self) -> str:
        dp = ", ".join(
            f"{k}={float(x):.6g}" if np.ndim(x) == 0 else f"{k}=<{np.shape(x)}>" for k, x in self.dparams.items()
        )
        return (
            f"HessianVectorProduct(method={self.method!r}, dh0={np.array2string(np.asarray(self.dh0), precision=6)}, "
            f"dparams={{{dp}}}, |v|={float(np.linalg.norm(self.direction)):.6g})"
        )


__all__ = ["HessianVectorProduct", "direction_vector"]
