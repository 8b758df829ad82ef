"""The result of one gradient computation."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Gradient:
    """A loss and its gradient with respect to every input of the problem.

    Attributes
    ----------
    loss : float
    dh0 : ndarray, shape (n,)
        ``dL/dh(t0)``.
    dparams : dict
        ``dL/dtheta`` by parameter name, shaped like each parameter.
    dt0 : float
        ``dL/dt0`` with ``h0`` held fixed.
    dt1 : float or None
        ``dL/dt1`` for final losses.  ``None`` for observation losses: there ``t1`` is the
        last observation time, and ``dtimes[-1]`` is the derivative that moves it (alone);
        the ``repr`` says so.
    dtimes : ndarray or None
        ``dL/dt_i`` per observation time, each moved alone.
    method : str
        The variant that ran (``"interpolating"`` when ``"adjoint"`` was asked for with an
        explicit solver, ``"quadrature"`` with an implicit one; a reference's own name).
    stats : dict
        Counts and timings: ``nfev_forward``, ``nfev_backward``, ``steps_forward``,
        ``steps_backward``, ``wall_time`` and method-specific entries.
    requested : str or None
        The method asked for (``"adjoint"``, or an adjoint instance's repr); ``None`` when
        the gradient did not come through :func:`adjoint_sym.gradient`.
    solver : str or None
        The ``solve_ivp`` method that ran.
    rtol, atol : float or None
        The solver tolerances it ran with.
    options : dict
        The method's options as given (``adjoint_rtol``, ``steps``, ``backend``, ...).

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, Problem, gradient
    >>> from adjoint_sym.builders import lotka_volterra
    >>> prob = Problem(lotka_volterra(), [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 1.0,
    ...                FinalLoss("x"))
    >>> g = gradient(prob, rtol=1e-9, atol=1e-11)
    >>> g.requested, g.method, g.solver, g.rtol, g.atol
    ('adjoint', 'interpolating', 'DOP853', 1e-09, 1e-11)
    """

    loss: float
    dh0: np.ndarray
    dparams: dict
    dt0: float | None
    dt1: float | None
    method: str
    dtimes: np.ndarray | None = None
    stats: dict = field(default_factory=dict, compare=False)
    requested: str | None = field(default=None, compare=False)
    solver: str | None = field(default=None, compare=False)
    rtol: float | None = field(default=None, compare=False)
    atol: float | None = field(default=None, compare=False)
    options: dict = field(default_factory=dict, compare=False)

    @property
    def dtheta(self) -> np.ndarray:
        """``dL/dtheta`` as the flat vector (parameters in order, matrices row-major)."""
        parts = [np.atleast_1d(np.asarray(v, dtype=float)).reshape(-1) for v in self.dparams.values()]
        return np.concatenate(parts) if parts else np.zeros(0)

    def quantities(self, state_names=None) -> dict[str, float]:
        """Every scalar derivative by a readable name: ``dL/dh0[x]``, ``dL/dW1[0,1]``, ..."""
        out: dict[str, float] = {}
        names = state_names or [str(i) for i in range(len(self.dh0))]
        for name, v in zip(names, self.dh0):
            out[f"dL/dh0[{name}]"] = float(v)
        for name, value in self.dparams.items():
            arr = np.asarray(value, dtype=float)
            if arr.ndim == 0:
                out[f"dL/d{name}"] = float(arr)
            else:
                for idx in np.ndindex(arr.shape):
                    out[f"dL/d{name}[{','.join(map(str, idx))}]"] = float(arr[idx])
        if self.dt0 is not None:
            out["dL/dt0"] = float(self.dt0)
        if self.dt1 is not None:
            out["dL/dt1"] = float(self.dt1)
        if self.dtimes is not None:
            for i, v in enumerate(self.dtimes):
                out[f"dL/dt_obs[{i}]"] = float(v)
        return out

    def as_dict(self) -> dict:
        """A JSON-ready dictionary (the command line's ``--json`` contract)."""
        return {
            "loss": float(self.loss),
            "dL_dh0": [float(v) for v in self.dh0],
            "dL_dparams": {k: (np.asarray(v).tolist() if np.ndim(v) else float(v)) for k, v in self.dparams.items()},
            "dL_dt0": None if self.dt0 is None else float(self.dt0),
            "dL_dt1": None if self.dt1 is None else float(self.dt1),
            "dL_dtimes": None if self.dtimes is None else [float(v) for v in self.dtimes],
            "method": self.method,
            "stats": {k: v for k, v in self.stats.items() if isinstance(v, int | float | str | bool)},
            # what was asked and how it ran, so a JSON record can be reproduced on its own
            "requested": self.requested,
            "solver": self.solver,
            "rtol": None if self.rtol is None else float(self.rtol),
            "atol": None if self.atol is None else float(self.atol),
            "options": {k: v for k, v in self.options.items() if isinstance(v, int | float | str | bool)},
        }

    def to_markdown(self) -> str:
        rows = [f"| {k} | {v:.10g} |" for k, v in self.quantities().items()]
        head = f"**{self.method}**: L = {float(self.loss):.12g}\n\n| quantity | value |\n|---|---|\n"
        return head + "\n".join(rows) + "\n"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>{v:.10g}</td></tr>" for k, v in self.quantities().items())
        return (
            f"<p><b>{self.method}</b>: L = {float(self.loss):.12g}</p>"
            f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>"
        )

    def __repr__(self) -> str:
        dp = ", ".join(
            f"{k}={float(v):.6g}" if np.ndim(v) == 0 else f"{k}=<{np.shape(v)}>" for k, v in self.dparams.items()
        )
        dt1 = f"{float(self.dt1):.6g}" if self.dt1 is not None else "None"
        if self.dt1 is None and self.dtimes is not None:
            dt1 = "None (an observation loss: t1 is the last observation time, see dtimes[-1])"
        dt0 = "None" if self.dt0 is None else f"{float(self.dt0):.6g}"
        asked = f"requested={self.requested!r}, " if self.requested not in (None, self.method) else ""
        return (
            f"Gradient(method={self.method!r}, {asked}loss={float(self.loss):.10g}, "
            f"dh0={np.array2string(self.dh0, precision=6)}, dparams={{{dp}}}, dt0={dt0}, dt1={dt1})"
        )
