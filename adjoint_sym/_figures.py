"""Pyplot-free matplotlib figures, shared by :mod:`adjoint_sym.plot` and the verifier.

Figures are built on the Agg canvas without pyplot, so nothing pops up and nothing
accumulates in a session; matplotlib (the ``[plot]`` extra) is imported only when a
figure is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Above this many lines an axes gets no legend (it would hide the curves).
LEGEND_MAX = 12


def new_figure(nrows: int = 1, figsize: tuple[float, float] = (6.4, 4.0)) -> tuple[Figure, list[Axes]]:
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


def finish(ax: Axes, n_lines: int) -> None:
    if 0 < n_lines <= LEGEND_MAX:
        ax.legend(loc="best", fontsize="small")
    ax.grid(True, alpha=0.3)


def target_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is None:
        fig, (new,) = new_figure(1)
        return fig, new
    return ax.figure, ax
