"""Pyplot-free matplotlib figures, shared by :mod:`adjoint_sym.plot` and the verifier.

Figures are built on the Agg canvas without pyplot, so nothing pops up and nothing
accumulates in a session; matplotlib (the ``[plot]`` extra) is imported only when a
figure is drawn.

:func:`tidy` finishes a figure so that it reads: a title too long for the figure is
wrapped, tick labels that would overlap are thinned, a legend that covers a line moves
beside the axes.  :func:`layout_problems` states those facts as checks (the tests run it
on every figure the package draws).
"""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Above this many lines an axes gets no legend (it would hide the curves).
LEGEND_MAX = 12
#: Pixels a text may stick out of the figure before it counts as clipped (anti-aliasing).
_SLACK = 1.0


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


# -- making a figure read ---------------------------------------------------------------------


def tidy(fig: Figure) -> Figure:
    """Wrap clipped titles, thin overlapping tick labels, move a legend off the lines."""
    for _ in range(5):  # each fix changes the layout; a few rounds settle it
        fig.draw_without_rendering()
        renderer = fig._get_renderer()
        changed = False
        for ax in fig.axes:
            changed |= _wrap_title(ax, fig, renderer)
            changed |= _thin_ticks(ax, renderer)
            changed |= _move_legend(ax, renderer)
        if not changed:
            break
    return fig


def _wrap_title(ax: Axes, fig: Figure, renderer) -> bool:
    title = ax.title
    text = title.get_text()
    if not text or _inside(title.get_window_extent(renderer), fig.bbox):
        return False
    box = title.get_window_extent(renderer)
    # the title is centred over its axes: the room it has is twice the shorter side
    centre = (box.x0 + box.x1) / 2
    room = 2 * min(centre - fig.bbox.x0, fig.bbox.x1 - centre)
    widest = max(len(line) for line in text.split("\n"))
    chars = max(12, int(widest * 0.9 * room / max(box.width, 1.0)))
    title.set_text("\n".join(textwrap.wrap(text.replace("\n", " "), chars)))
    return True


def _thin_ticks(ax: Axes, renderer) -> bool:
    from matplotlib.ticker import LogLocator, MaxNLocator

    changed = False
    for axis in (ax.xaxis, ax.yaxis):
        labels = _tick_labels(axis)
        if not _overlapping(labels, renderer):
            continue
        n = max(2, len(labels) // 2)
        if axis.get_scale() == "log":
            axis.set_major_locator(LogLocator(numticks=n))
        else:
            axis.set_major_locator(MaxNLocator(nbins=n))
        changed = True
    return changed


_LOCATIONS = (
    "upper right",
    "upper left",
    "lower left",
    "lower right",
    "center right",
    "center left",
    "upper center",
    "lower center",
)


def _move_legend(ax: Axes, renderer) -> bool:
    """Another corner for a legend that covers a line; beside the axes when every corner does."""
    legend = ax.get_legend()
    if legend is None or getattr(legend, "_adjoint_sym_placed", False) or not _covers(legend, ax, renderer):
        return False
    fig = ax.figure
    for loc in _LOCATIONS:
        legend.set_loc(loc)
        fig.draw_without_rendering()
        if not _covers(legend, ax, fig._get_renderer()):
            legend._adjoint_sym_placed = True
            return True
    handles, labels = ax.get_legend_handles_labels()
    moved = ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", borderaxespad=0)
    moved._adjoint_sym_placed = True
    return True


# -- the facts, as checks ---------------------------------------------------------------------


def layout_problems(fig: Figure) -> list[str]:
    """What keeps a figure from reading well (empty when it is well laid out).

    Checks, on the figure as drawn: every title, axis label and visible tick label lies
    inside the figure; the visible tick labels of an axis do not overlap each other; no
    legend covers a point of a line.

    Examples
    --------
    >>> from adjoint_sym._figures import new_figure
    >>> fig, (ax,) = new_figure()
    >>> _ = ax.set_title("a title far too long for its figure " * 4)
    >>> layout_problems(fig)[0].startswith("clipped: title")
    True
    """
    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    problems: list[str] = []
    for i, ax in enumerate(fig.axes):
        texts = [("title", ax.title), ("x label", ax.xaxis.label), ("y label", ax.yaxis.label)]
        for what, axis in (("x tick label", ax.xaxis), ("y tick label", ax.yaxis)):
            labels = _tick_labels(axis)
            texts += [(what, t) for t in labels]
            for a, b in _overlapping(labels, renderer):
                problems.append(f"overlapping: axes {i} {what}s {a.get_text()!r} and {b.get_text()!r}")
        for what, text in texts:
            if text.get_text() and text.get_visible() and not _inside(text.get_window_extent(renderer), fig.bbox):
                problems.append(f"clipped: {what} {text.get_text()!r} of axes {i} leaves the figure")
        legend = ax.get_legend()
        if legend is not None and _covers(legend, ax, renderer):
            problems.append(f"covering: the legend of axes {i} lies over a line")
    return problems


def _tick_labels(axis) -> list:
    """The tick labels drawn: visible, not empty, at a tick inside the axis' view."""
    scale = axis.get_transform()  # compare where ticks sit on the scale (log axes: decades)
    low, high = sorted(float(v) for v in scale.transform(np.asarray(axis.get_view_interval(), dtype=float)))
    span = (high - low) * 1e-9
    out = []
    for tick in axis.get_major_ticks():
        loc = float(scale.transform(np.array([tick.get_loc()], dtype=float))[0])
        for label in (tick.label1, tick.label2):
            if label.get_visible() and label.get_text() and low - span <= loc <= high + span:
                out.append(label)
    return out


def _inside(box, outer) -> bool:
    return (
        box.x0 >= outer.x0 - _SLACK
        and box.y0 >= outer.y0 - _SLACK
        and box.x1 <= outer.x1 + _SLACK
        and box.y1 <= outer.y1 + _SLACK
    )


def _overlapping(labels, renderer) -> list[tuple]:
    boxes = [t.get_window_extent(renderer) for t in labels]
    pairs = []
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            a, b = boxes[i], boxes[j]
            # strictly overlapping areas: labels that merely touch still read
            if min(a.x1, b.x1) - max(a.x0, b.x0) > _SLACK and min(a.y1, b.y1) - max(a.y0, b.y0) > _SLACK:
                pairs.append((labels[i], labels[j]))
    return pairs


def _covers(legend, ax: Axes, renderer) -> bool:
    """Whether a point of a line (its segments sampled finely) falls in the legend's box."""
    box = legend.get_window_extent(renderer)
    for line in ax.get_lines():
        xy = np.asarray(line.get_xydata(), dtype=float)
        xy = xy[np.all(np.isfinite(xy), axis=1)]
        if len(xy) == 0 or not line.get_visible():
            continue
        points = line.get_transform().transform(xy)  # display pixels, scales applied
        if len(points) > 1:  # a segment crossing the box between two points counts too
            s = np.linspace(0.0, 1.0, 8, endpoint=False)
            steps = (points[1:] - points[:-1])[:, None, :]
            points = np.concatenate([(points[:-1, None, :] + s[None, :, None] * steps).reshape(-1, 2), points[-1:]])
        inside = (points[:, 0] > box.x0) & (points[:, 0] < box.x1) & (points[:, 1] > box.y0) & (points[:, 1] < box.y1)
        if inside.any():
            return True
    return False
