"""Figures for notebooks and papers: trajectories, adjoint trajectories, convergence.

Needs matplotlib, the optional ``[plot]`` extra (``pip install 'adjoint_sym[plot]'``);
it is imported only when a figure is drawn, so ``import adjoint_sym.plot`` is free and
:func:`adjoint_path` (numbers only) works without it.

Every function returns a :class:`matplotlib.figure.Figure` and never calls
``plt.show()``: the figure is not registered with pyplot, so nothing pops up and
nothing leaks; a notebook displays it as the cell's value (after ``%matplotlib
inline``), a script saves it with ``fig.savefig(...)``.  Pass ``ax=`` (``axes=``) to
draw into existing axes instead.

References
----------
Chen, Rubanova, Bettencourt, Duvenaud, "Neural Ordinary Differential Equations",
NeurIPS 2018 (the augmented adjoint, Algorithm 1, appendix B for observation jumps).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ._figures import LEGEND_MAX, finish, layout_problems, new_figure, target_axes, tidy
from .adjoint.backward import Crossing, sweep
from .adjoint.gradient import observe
from .adjoint.methods import InterpolatingAdjoint
from .errors import InvalidModelError
from .numeric.problem import Problem
from .numeric.solve import forward
from .verify.convergence import convergence, fitted_order

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# -- the forward trajectory ------------------------------------------------------------------


def trajectories(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    ax: Axes | None = None,
    points: int = 200,
) -> Figure:
    """The state ``h(t)`` from ``t0`` to ``t1``, one line per state entry.

    Observation targets of an :class:`~adjoint_sym.numeric.loss.ObservationLoss` are drawn as
    markers in the colour of their state's line (one scatter per state, labelled
    ``"<state> targets"``).

    Parameters
    ----------
    problem : Problem
    solver, rtol, atol
        Passed to :func:`adjoint_sym.numeric.solve.forward`.
    ax : matplotlib Axes, optional
        Draw into it; by default a new figure.
    points : int
        Number of sample times of the dense output.

    Returns
    -------
    matplotlib.figure.Figure
        With ``n`` lines labelled by the state names, x label ``t``, y label ``h(t)``.

    Examples
    --------
    >>> from adjoint_sym import Problem, FinalLoss
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0},
    ...                0.0, 5.0, FinalLoss("x**2 + y**2"))
    >>> fig = trajectories(prob)
    >>> [line.get_label() for line in fig.axes[0].get_lines()]
    ['x', 'y']
    """
    _check_problem(problem)
    fig, ax = target_axes(ax)
    fwd = forward(problem, solver=solver, rtol=rtol, atol=atol)
    times = np.linspace(problem.t0, problem.t1, max(int(points), 2))
    states = np.real(fwd.at(times))
    names = problem.system.state_names
    targets = getattr(problem.point_loss, "targets", None)
    for j, name in enumerate(names):
        (line,) = ax.plot(times, states[:, j], label=name)
        if targets is not None:
            ax.scatter(problem.times, targets[:, j], color=line.get_color(), s=18, zorder=3, label=f"{name} targets")
    ax.set_xlabel("t")
    ax.set_ylabel("h(t)")
    ax.set_title(f"State of {problem.system.name or 'the system'}")
    finish(ax, len(names) * (1 + (targets is not None)))
    return tidy(fig)


# -- the adjoint trajectory ------------------------------------------------------------------


@dataclass(frozen=True)
class AdjointPath:
    """The augmented adjoint sampled along the backward sweep from ``t1`` to ``t0``.

    At an observation time the adjoint jumps (Chen et al. 2018, appendix B): that time
    appears twice in ``t``, before and after the jump, so a plot shows the jump.

    Attributes
    ----------
    t : ndarray, shape (N,)
        From ``t1`` to ``t0``.
    a : ndarray, shape (N, n)
        ``a(t) = dL/dh(t)``; ``a[-1]`` is ``dL/dh0``.
    a_theta : ndarray, shape (N, p)
        ``a_theta(t)``, accumulated from ``t1``; ``a_theta[-1]`` plus the loss's explicit
        ``dL/dtheta`` is ``dL/dtheta``.
    a_t : ndarray, shape (N,)
        ``a_t(t)``; ``a_t[-1]`` is ``dL/dt0`` (``h0`` held fixed).
    explicit_theta : ndarray, shape (p,)
        The loss's explicit ``dL/dtheta`` (``sum_i d ell_i/dtheta``): zero unless the loss
        reads a parameter.
    """

    t: np.ndarray
    a: np.ndarray
    a_theta: np.ndarray
    a_t: np.ndarray
    explicit_theta: np.ndarray

    @property
    def dtheta(self) -> np.ndarray:
        """``dL/dtheta = a_theta(t0) + dL/dtheta|explicit``, the flat gradient."""
        return self.a_theta[-1] + self.explicit_theta


def adjoint_path(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    points: int = 200,
) -> AdjointPath:
    """Integrate ``[a, a_theta, a_t]`` backward, reading ``h(t)`` from the forward solve.

    The library's own backward sweep (:func:`adjoint_sym.adjoint.sweep`) with the
    interpolating adjoint, keeping each segment's dense solution: ``da/dt = -a^T f_h``,
    ``da_theta/dt = -a^T f_theta``, ``da_t/dt = -a^T f_t``, and at each observation time
    ``a += dL/dh(t_i)``, ``a_t -= dL/dh(t_i) . f`` (only the state's motion: an explicit
    time dependence of the loss does not move with ``t0``), so the path ends at the
    gradient: ``a[-1] = dL/dh0``, ``a_t[-1] = dL/dt0``.  Needs no matplotlib.

    Parameters
    ----------
    problem : Problem
    solver, rtol, atol
        Used forward and backward (``solve_ivp`` method and tolerances).
    points : int
        Sample times over the whole span (each segment gets its share, at least 2).

    Returns
    -------
    AdjointPath

    Examples
    --------
    >>> from adjoint_sym import Problem, FinalLoss
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0},
    ...                0.0, 1.0, FinalLoss("x**2 + y**2"))
    >>> path = adjoint_path(prob)
    >>> path.a.shape[1], path.a_theta.shape[1], float(path.t[0]), float(path.t[-1])
    (2, 4, 1.0, 0.0)
    """
    _check_problem(problem)
    n, p = problem.system.n, problem.system.n_params
    fwd, observations = observe(problem, solver, rtol, atol, dense=True)  # [h, q] under a running cost
    engine = InterpolatingAdjoint(keep_paths=True).segments(problem, fwd, solver, rtol, atol)
    crossings: list[Crossing] = []
    sweep(problem, observations, engine, record=crossings)
    span = abs(problem.t1 - problem.t0) or 1.0
    pieces_t: list[np.ndarray] = []
    pieces_y: list[np.ndarray] = []
    for c in crossings:  # last segment first: t runs from t1 back to t0
        start_y, end_y = c.jumped.vector(), c.crossed.vector()
        if c.crossed.path is None:  # a zero-length segment: the jump alone
            grid, values = np.array([c.start]), start_y[None, :]
        else:
            grid = np.linspace(c.start, c.end, max(int(points * abs(c.start - c.end) / span), 2))
            values = np.asarray(c.crossed.path(grid)).T
            values[0], values[-1] = start_y, end_y
        pieces_t.append(grid)  # t_i appears twice across segments: before and after its jump
        pieces_y.append(values)
    y_all = np.real(np.concatenate(pieces_y))
    explicit = np.real(np.asarray(observations.loss.d_theta, dtype=complex))
    t_all = np.concatenate(pieces_t)
    return AdjointPath(t_all, y_all[:, :n], y_all[:, n : n + p], y_all[:, -1], explicit_theta=explicit)


def parameter_entry_names(problem: Problem) -> list[str]:
    """Names of the flat parameter entries: ``a`` for scalars, ``W1[0,1]`` for matrices.

    Examples
    --------
    >>> from adjoint_sym import Problem, FinalLoss
    >>> from adjoint_sym.builders import linear_system
    >>> prob = Problem(linear_system(2), [1.0, 0.0], {"A": [[0.0, 1.0], [-1.0, 0.0]]}, 0.0, 1.0,
    ...                FinalLoss("h[0]**2"))
    >>> parameter_entry_names(prob)
    ['A[0,0]', 'A[0,1]', 'A[1,0]', 'A[1,1]']
    """
    names: list[str] = []
    for name, shape in problem.system.param_shapes.items():
        if shape:
            names.extend(f"{name}[{','.join(map(str, idx))}]" for idx in np.ndindex(shape))
        else:
            names.append(name)
    return names


def adjoint_trajectories(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    params: Sequence[str] | None = None,
    axes: Sequence[Axes] | None = None,
    points: int = 200,
) -> Figure:
    """The adjoint ``a(t)`` and ``a_theta(t)`` over the backward sweep, in two axes.

    Parameters
    ----------
    problem : Problem
    solver, rtol, atol
        Passed to :func:`adjoint_path`.
    params : sequence of str, optional
        Parameter blocks whose entries to draw in the lower axes (default: all).
    axes : pair of matplotlib Axes, optional
        Draw into them; by default a new figure with two stacked axes.
    points : int
        Sample times over the span.

    Returns
    -------
    matplotlib.figure.Figure
        Upper axes: one line per state entry (``a(t) = dL/dh(t)``); lower axes: one
        line per entry of the chosen parameters (``a_theta(t)``); x label ``t``.
        The time runs backward, from ``t1`` (right) to ``t0`` (left).

    Examples
    --------
    >>> from adjoint_sym import Problem, FinalLoss
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0},
    ...                0.0, 1.0, FinalLoss("x**2 + y**2"))
    >>> fig = adjoint_trajectories(prob, params=["a", "b"])
    >>> [len(ax.get_lines()) for ax in fig.axes]
    [2, 2]
    """
    _check_problem(problem)
    entry_names = parameter_entry_names(problem)
    chosen = _chosen_entries(problem, params)
    if axes is None:
        fig, (ax_a, ax_theta) = new_figure(2, figsize=(6.4, 6.0))
    else:
        if len(axes) != 2:
            raise InvalidModelError(f"axes must be two matplotlib Axes (for a and a_theta), got {len(axes)}")
        ax_a, ax_theta = axes
        fig = ax_a.figure
    path = adjoint_path(problem, solver=solver, rtol=rtol, atol=atol, points=points)
    for j, name in enumerate(problem.system.state_names):
        ax_a.plot(path.t, path.a[:, j], label=name)
    lines = [ax_theta.plot(path.t, path.a_theta[:, k], label=entry_names[k])[0] for k in chosen]
    explicit = _explicit_markers(ax_theta, path, dict(zip(chosen, lines)), problem.t0)
    ax_a.set_ylabel("a(t) = dL/dh(t)")
    ax_theta.set_ylabel("a_theta(t)")
    ax_theta.set_xlabel("t")
    ax_a.set_title(f"Adjoint of {problem.system.name or 'the system'}, integrated from t1 back to t0")
    finish(ax_a, problem.system.n)
    finish(ax_theta, len(chosen) + explicit)
    return tidy(fig)


def _explicit_markers(ax: Axes, path: AdjointPath, lines: dict, t0: float) -> int:
    """Mark ``dL/dtheta = a_theta(t0) + dL/dtheta|explicit`` at ``t0`` where the loss reads a parameter.

    ``a_theta(t0)`` alone is not the gradient then (a loss ``x + c`` has ``a_c = 0`` and
    ``dL/dc = 1``); the marker, in the line's colour and labelled "dL/dtheta at t0", is.
    Returns 1 when a legend entry was added.
    """
    marked = [(k, line) for k, line in lines.items() if path.explicit_theta[k] != 0]
    for k, line in marked:
        ax.plot([t0], [path.dtheta[k]], marker="D", linestyle="none", color=line.get_color(), zorder=3)
    if not marked:
        return 0
    ax.plot([], [], marker="D", linestyle="none", color="gray", label="dL/dtheta at t0")
    return 1


def _chosen_entries(problem: Problem, params: Sequence[str] | None) -> list[int]:
    shapes = problem.system.param_shapes
    if params is None:
        return list(range(problem.system.n_params))
    if isinstance(params, str):
        params = [params]
    unknown = [name for name in params if name not in shapes]
    if unknown:
        raise InvalidModelError(f"unknown parameter {unknown[0]!r}; the system's parameters are {list(shapes)}")
    out: list[int] = []
    k = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape)) if shape else 1
        if name in params:
            out.extend(range(k, k + size))
        k += size
    return out


# -- shared helpers -------------------------------------------------------------------------


def _check_problem(problem: object) -> None:
    if not isinstance(problem, Problem):
        raise InvalidModelError(f"expected a Problem, got {type(problem).__name__}")


__all__ = [
    "LEGEND_MAX",
    "AdjointPath",
    "adjoint_path",
    "adjoint_trajectories",
    "convergence",
    "fitted_order",
    "layout_problems",
    "parameter_entry_names",
    "trajectories",
]
