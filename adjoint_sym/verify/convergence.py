"""Convergence: errors shrinking with the tolerance, backprop converging to the adjoint.

:func:`convergence_study` measures; :func:`convergence` draws each method's error
against ``rtol`` with its fitted order (needs matplotlib, the ``[plot]`` extra).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._figures import finish, target_axes, tidy
from ..errors import InvalidModelError
from ..numeric.problem import Problem
from .checker import pick_reference
from .routes import gradient
from .tolerance import input_scales, relative_error

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class ConvergenceStudy:
    """Errors against a tight reference as tolerances and steps shrink.

    Attributes
    ----------
    rtols : ndarray
    errors : dict
        ``errors[method]``: :func:`relative_error` against the reference at each ``rtol``.
    steps : ndarray
        Step counts of the fixed-step backprop runs.
    backprop_vs_adjoint : ndarray
        Distance between backprop (discretize-then-optimize) with ``steps[k]`` steps and
        the adjoint (optimize-then-discretize) at the tightest ``rtol``.
    backprop_order : float
        Fitted slope of ``log(distance)`` against ``log(step size)``: the scheme's order.
    """

    rtols: np.ndarray
    errors: dict
    steps: np.ndarray
    backprop_vs_adjoint: np.ndarray
    backprop_order: float
    reference: str
    scheme: str

    def as_dict(self) -> dict:
        return {
            "rtols": self.rtols.tolist(),
            "errors": {m: v.tolist() for m, v in self.errors.items()},
            "steps": self.steps.tolist(),
            "backprop_vs_adjoint": self.backprop_vs_adjoint.tolist(),
            "backprop_order": self.backprop_order,
            "reference": self.reference,
            "scheme": self.scheme,
        }

    def markdown(self) -> str:
        methods = list(self.errors)
        lines = ["| rtol | " + " | ".join(methods) + " |", "|" + "---|" * (len(methods) + 1)]
        for i, r in enumerate(self.rtols):
            lines.append(f"| {r:.0e} | " + " | ".join(f"{self.errors[m][i]:.2e}" for m in methods) + " |")
        lines += ["", f"| steps | backprop ({self.scheme}) vs adjoint |", "|---|---|"]
        lines += [f"| {int(n)} | {d:.2e} |" for n, d in zip(self.steps, self.backprop_vs_adjoint)]
        lines.append(f"\nfitted order of backprop -> adjoint: {self.backprop_order:.2f}")
        return "\n".join(lines) + "\n"

    def plot(self, ax=None):
        """Two log-log panels: each method's error against rtol (with fitted orders) and
        backprop's distance to the adjoint against steps.

        Returns the matplotlib ``Figure`` (built without pyplot, so nothing accumulates in
        a session); pass ``ax`` (two axes) to draw into existing ones.  Needs matplotlib:
        ``pip install 'adjoint_sym[plot]'``.
        """
        if ax is None:
            from matplotlib.figure import Figure

            figure = Figure(figsize=(10, 4), layout="constrained")
            ax = figure.subplots(1, 2)
        convergence(self, ax=ax[0], ylabel=f"error vs {self.reference}", title="error against tolerance")
        ax[1].loglog(self.steps, self.backprop_vs_adjoint, "o-", label=f"backprop ({self.scheme})")
        ax[1].set(xlabel="steps", ylabel="|backprop - adjoint|", title="discretize vs optimize first")
        ax[1].legend()
        return ax[0].figure


def convergence_study(
    prob: Problem,
    methods: Sequence[str] = ("adjoint", "forward"),
    rtols: Sequence[float] = (1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10),
    *,
    solver: str = "DOP853",
    reference: str | None = None,
    steps: Sequence[int] = (4, 8, 16, 32, 64),
    scheme: str = "rk4",
) -> ConvergenceStudy:
    """Errors of ``methods`` against a tight reference as ``rtol`` sweeps, and backprop
    with ``steps`` fixed steps of ``scheme`` converging to the adjoint.

    Examples
    --------
    >>> from adjoint_sym import ODESystem, Problem, FinalLoss
    >>> sys = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> prob = Problem(sys, [1.0], {"k": 0.5}, 0.0, 1.0, FinalLoss("x**2"))
    >>> study = convergence_study(prob, ["adjoint"], rtols=[1e-4, 1e-8], steps=[4, 8, 16])
    >>> bool(study.errors["adjoint"][1] < study.errors["adjoint"][0])
    True
    >>> round(study.backprop_order)  # RK4
    4
    """
    ref_name = reference or pick_reference(prob, solver, [])
    tight = min(rtols)
    ref = gradient(prob, ref_name, solver=solver, rtol=tight * 1e-2, atol=1e-14)
    names = prob.system.state_names
    scales = input_scales(prob, solver=solver, rtol=tight, atol=tight * 1e-2)
    errors = {}
    for m in methods:
        errors[m] = np.array(
            [relative_error(gradient(prob, m, solver=solver, rtol=r, atol=r * 1e-2), ref, scales, names) for r in rtols]
        )
    adj = gradient(prob, "adjoint", solver=solver, rtol=tight, atol=tight * 1e-2)
    dist = np.array(
        [relative_error(gradient(prob, "backprop", scheme=scheme, steps=int(n)), adj, scales, names) for n in steps]
    )
    good = dist > 0
    order = (
        float(-np.polyfit(np.log(np.asarray(steps, float)[good]), np.log(dist[good]), 1)[0])
        if good.sum() > 1
        else float("nan")
    )
    return ConvergenceStudy(np.asarray(rtols, float), errors, np.asarray(steps), dist, order, ref_name, scheme)


def fitted_order(rtols: Sequence[float], errors: Sequence[float]) -> float:
    """Slope of ``log10(error)`` against ``log10(rtol)`` by least squares.

    Points whose error is zero or not finite cannot sit on log axes and are left out;
    fewer than two usable points give ``nan``.

    Examples
    --------
    >>> fitted_order([1e-4, 1e-6, 1e-8], [1e-3, 1e-5, 1e-7])
    1.0
    """
    r, e = _usable(rtols, errors)
    if r.size < 2:
        return float("nan")
    slope = np.polyfit(np.log10(r), np.log10(e), 1)[0]
    return round(float(slope), 12)


def _usable(rtols: Sequence[float], errors: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    r = np.asarray(rtols, dtype=float)
    e = np.asarray(errors, dtype=float)
    keep = np.isfinite(r) & np.isfinite(e) & (r > 0) & (e > 0)
    return r[keep], e[keep]


def convergence(
    data: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    ax: Axes | None = None,
    reference: bool = True,
    xlabel: str = "rtol",
    ylabel: str = "error",
    title: str = "Gradient error against solver tolerance",
) -> Figure:
    """Each method's error against the solver tolerance on log-log axes, with its order.

    Parameters
    ----------
    data : mapping of method name to ``(rtols, errors)``, or a convergence study
        Equal-length sequences; an error of zero (or non-finite) is left out of the plot
        and of the fit.  An object with ``rtols`` and an ``errors`` mapping (method to
        errors), such as the result of :func:`adjoint_sym.verify.convergence_study`, is
        read as ``{method: (rtols, errors[method])}``.
    ax : matplotlib Axes, optional
        Draw into it; by default a new figure.
    reference : bool
        Also draw the dashed guide ``error = rtol`` (labelled ``error = rtol``).
    xlabel, ylabel, title : str

    Returns
    -------
    matplotlib.figure.Figure
        One line per method labelled ``"<method> (order <slope>)"``, where the order is
        :func:`fitted_order`; both axes logarithmic.

    Examples
    --------
    >>> fig = convergence({"adjoint": ([1e-4, 1e-6, 1e-8], [2e-4, 2e-6, 2e-8])}, reference=False)
    >>> ax = fig.axes[0]
    >>> ax.get_xscale(), ax.get_yscale(), ax.get_legend().get_texts()[0].get_text()
    ('log', 'log', 'adjoint (order 1.00)')
    """
    items = _convergence_items(data)
    fig, ax = target_axes(ax)
    all_r: list[np.ndarray] = []
    for method, (rtols, errors) in items:
        r, e = _usable(rtols, errors)
        order = fitted_order(rtols, errors)
        label = f"{method} (order {order:.2f})" if np.isfinite(order) else f"{method} (order n/a)"
        ax.plot(r, e, marker="o", label=label)
        all_r.append(r)
    if reference:
        r = np.concatenate(all_r) if all_r else np.zeros(0)
        if r.size:
            guide = np.array([r.min(), r.max()])
            ax.plot(guide, guide, linestyle="--", color="gray", label="error = rtol")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    finish(ax, len(ax.get_lines()))
    return tidy(fig)


def _convergence_items(data: Any) -> list[tuple[str, tuple[np.ndarray, np.ndarray]]]:
    if not isinstance(data, Mapping) and isinstance(getattr(data, "errors", None), Mapping) and hasattr(data, "rtols"):
        data = {method: (data.rtols, errors) for method, errors in data.errors.items()}  # a convergence study
    if not isinstance(data, Mapping):
        raise InvalidModelError(
            f"convergence() takes a mapping of method name to (rtols, errors), got {type(data).__name__}"
        )
    items = []
    for method, pair in data.items():
        try:
            rtols, errors = pair
        except (TypeError, ValueError):
            raise InvalidModelError(f"data[{method!r}] must be a pair (rtols, errors), got {pair!r}") from None
        r = np.asarray(rtols, dtype=float).reshape(-1)
        e = np.asarray(errors, dtype=float).reshape(-1)
        if r.shape != e.shape:
            raise InvalidModelError(f"data[{method!r}] has {r.size} rtols but {e.size} errors; give one error per rtol")
        items.append((str(method), (r, e)))
    return items


__all__ = ["ConvergenceStudy", "convergence", "convergence_study", "fitted_order"]
