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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .dense import DenseState
from .errors import InvalidModelError
from .problem import Problem
from .solve import forward, integrate

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Above this many lines an axes gets no legend (it would hide the curves).
LEGEND_MAX = 12


def _new_figure(nrows: int = 1, figsize: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, list[Axes]]:
    """A pyplot-free figure with ``nrows`` stacked axes; a clear error without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "adjoint_sym.plot needs matplotlib, which is not installed; install the plot extra: "
            "pip install 'adjoint_sym[plot]'"
        ) from exc
    fig = Figure(figsize=figsize, layout="constrained")
    axes = fig.subplots(nrows, 1, sharex=True, squeeze=False)[:, 0]
    return fig, list(axes)


def _finish(ax: Axes, n_lines: int) -> None:
    if 0 < n_lines <= LEGEND_MAX:
        ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3)


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

    Observation targets of an :class:`~adjoint_sym.loss.ObservationLoss` are drawn as
    markers in the colour of their state's line (one scatter per state, labelled
    ``"<state> targets"``).

    Parameters
    ----------
    problem : Problem
    solver, rtol, atol
        Passed to :func:`adjoint_sym.solve.forward`.
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
    fig, ax = _target_axes(ax)
    fwd = forward(problem, solver=solver, rtol=rtol, atol=atol)
    times = np.linspace(problem.t0, problem.t1, max(int(points), 2))
    states = np.real(fwd.at(times))
    names = problem.system.state_names
    targets = getattr(problem.loss, "targets", None)
    for j, name in enumerate(names):
        (line,) = ax.plot(times, states[:, j], label=name)
        if targets is not None:
            ax.scatter(problem.times, targets[:, j], color=line.get_color(), s=18, zorder=3, label=f"{name} targets")
    ax.set_xlabel("t")
    ax.set_ylabel("h(t)")
    ax.set_title(f"State of {problem.system.name or 'the system'}")
    _finish(ax, len(names) * (1 + (targets is not None)))
    return fig


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
    """

    t: np.ndarray
    a: np.ndarray
    a_theta: np.ndarray
    a_t: np.ndarray


def adjoint_path(
    problem: Problem,
    *,
    solver: str = "DOP853",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    points: int = 200,
) -> AdjointPath:
    """Integrate ``[a, a_theta, a_t]`` backward, reading ``h(t)`` from the forward solve.

    The interpolating form of the adjoint: ``da/dt = -a^T f_h``,
    ``da_theta/dt = -a^T f_theta``, ``da_t/dt = -a^T f_t`` with the compiled matrix-level
    vector-Jacobian product, from ``a(t1) = dL/dh(t1)``, ``a_theta(t1) = 0``,
    ``a_t(t1) = -dL/dt1``, adding ``dL/dh(t_i)`` and ``-dL/dt_i`` at each observation
    time on the way back.  Needs no matplotlib.

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
    theta = problem.theta
    kernels = problem.kernels
    f, vjp = kernels.f.fn, kernels.vjp.fn
    fwd = forward(problem, solver=solver, rtol=rtol, atol=atol)
    times = problem.times
    states = fwd.at(times)
    loss = problem.evaluate_loss(states)
    span = abs(problem.t1 - problem.t0) or 1.0

    h_of = DenseState(fwd.sol) if fwd.sol is not None else (lambda t: problem.h0)

    def rhs(t: float, y: np.ndarray) -> np.ndarray:
        return -vjp(t, h_of(t), y[:n], theta)

    y = np.zeros(n + p + 1)
    pieces_t: list[np.ndarray] = []
    pieces_y: list[np.ndarray] = []
    starts = [problem.t0, *times[:-1]]
    for i in range(len(times) - 1, -1, -1):
        t_i = float(times[i])
        dt_i = loss.d_states[i] @ f(t_i, states[i], theta) + loss.d_times[i]
        y = y.copy()  # the previous segment ended at t_i before the jump: t_i is sampled twice
        y[:n] += loss.d_states[i]
        y[-1] -= dt_i
        end = float(starts[i])
        res = integrate(
            rhs, (t_i, end), y, solver=solver, rtol=rtol, atol=atol, what="adjoint solve (plot)", dense=True
        )
        if res.sol is None:  # zero-length segment
            grid = np.array([t_i])
            values = y[None, :].copy()
        else:
            count = max(int(points * abs(t_i - end) / span), 2)
            grid = np.linspace(t_i, end, count)
            values = np.asarray(res.sol(grid)).T
            values[0], values[-1] = res.y[:, 0], res.y[:, -1]
        pieces_t.append(grid)
        pieces_y.append(values)
        y = res.y[:, -1]
    t_all = np.concatenate(pieces_t)
    y_all = np.real(np.concatenate(pieces_y))
    return AdjointPath(t=t_all, a=y_all[:, :n], a_theta=y_all[:, n : n + p], a_t=y_all[:, -1])


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
        fig, (ax_a, ax_theta) = _new_figure(2, figsize=(6.4, 6.0))
    else:
        if len(axes) != 2:
            raise InvalidModelError(f"axes must be two matplotlib Axes (for a and a_theta), got {len(axes)}")
        ax_a, ax_theta = axes
        fig = ax_a.figure
    path = adjoint_path(problem, solver=solver, rtol=rtol, atol=atol, points=points)
    for j, name in enumerate(problem.system.state_names):
        ax_a.plot(path.t, path.a[:, j], label=name)
    for k in chosen:
        ax_theta.plot(path.t, path.a_theta[:, k], label=entry_names[k])
    ax_a.set_ylabel("a(t) = dL/dh(t)")
    ax_theta.set_ylabel("a_theta(t)")
    ax_theta.set_xlabel("t")
    ax_a.set_title(f"Adjoint of {problem.system.name or 'the system'}, integrated from t1 back to t0")
    _finish(ax_a, problem.system.n)
    _finish(ax_theta, len(chosen))
    return fig


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


# -- convergence -----------------------------------------------------------------------------


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
    fig, ax = _target_axes(ax)
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
    _finish(ax, len(ax.get_lines()))
    return fig


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


# -- shared helpers -------------------------------------------------------------------------


def _check_problem(problem: object) -> None:
    if not isinstance(problem, Problem):
        raise InvalidModelError(f"expected a Problem, got {type(problem).__name__}")


def _target_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is None:
        fig, (new,) = _new_figure(1)
        return fig, new
    return ax.figure, ax


__all__ = [
    "LEGEND_MAX",
    "AdjointPath",
    "adjoint_path",
    "adjoint_trajectories",
    "convergence",
    "fitted_order",
    "parameter_entry_names",
    "trajectories",
]
