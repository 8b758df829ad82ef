"""An ODESystem as a PyTorch module, and gradients by ``torchdiffeq.odeint_adjoint``.

Needs ``pip install torch torchdiffeq`` (imported on first use).  Everything runs in
float64.  :func:`torchdiffeq_gradient` is a gradient function for
:func:`adjoint_sym.testing.check_gradient_function`: torchdiffeq's adjoint (Chen et
al. 2018, the paper's own implementation) checked against adjoint_sym's references::

    from adjoint_sym.adapters.torch import torchdiffeq_gradient
    from adjoint_sym.testing import check_gradient_function
    check_gradient_function(torchdiffeq_gradient)
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..numeric.problem import Problem
from ..symbolic.system import ODESystem
from . import check_times, loss_functions, named, require, rhs_function

EXTRA = "torch torchdiffeq"


def _torch():
    return require("torch", EXTRA)


def torch_functions() -> dict:
    """SymPy function names to torch functions."""
    torch = _torch()
    names = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "log", "sqrt", "erf")
    return {name: getattr(torch, name) for name in names}


def _stack(torch, values, like):
    """Entries (tensors or Python numbers for constant entries) as one tensor shaped like ``like``.

    A constant entry is written ``0 * h_0 + c``, not ``full_like``: it stays in the autograd
    graph, because torchdiffeq's adjoint calls ``torch.autograd.grad`` on ``f`` and fails
    ("element 0 of tensors does not require grad") when ``f`` does not depend on ``h`` at all.
    """
    zero = like[..., 0] * 0.0
    out = [v if isinstance(v, torch.Tensor) else zero + float(v) for v in values]
    return torch.stack([v.expand_as(zero) for v in out], dim=-1)


@lru_cache(maxsize=1)
def _module_class():
    torch = _torch()

    class SystemModule(torch.nn.Module):
        """``forward(t, h) = f(t, h, theta)`` with ``theta`` a float64 parameter vector."""

        def __init__(self, system: ODESystem, theta) -> None:
            super().__init__()
            self.system = system
            self._f = rhs_function(system, torch_functions())
            self.theta = torch.nn.Parameter(torch.as_tensor(np.asarray(theta, dtype=float), dtype=torch.float64))

        def forward(self, t, h):
            entries = [h[..., i] for i in range(h.shape[-1])]
            values = self._f(t, *entries, *[self.theta[k] for k in range(self.theta.shape[0])])
            return _stack(torch, values, h)

    return SystemModule


def to_torch_module(system: ODESystem, theta=None):
    """``system`` as a ``torch.nn.Module`` with ``forward(t, h)``, as torchdiffeq expects.

    Parameters
    ----------
    system : ODESystem
    theta : array-like, optional
        Initial flat parameter vector (default zeros); the module's ``theta`` parameter.
    """
    theta = np.zeros(system.n_params) if theta is None else theta
    return _module_class()(system, theta)


def torchdiffeq_gradient(
    problem: Problem, *, method: str = "dopri5", rtol: float = 1e-10, atol: float = 1e-12, adjoint: bool = True
) -> dict:
    """``loss``, ``dh0``, ``dparams``, ``dt0``, ``dt1``, ``dtimes`` by torchdiffeq.

    Parameters
    ----------
    problem : Problem
    method : str
        A torchdiffeq solver (``"dopri5"``, ``"dopri8"``, ...).
    rtol, atol : float
        torchdiffeq's tolerances (forward and adjoint).
    adjoint : bool
        ``odeint_adjoint`` (default) or ``odeint`` (backpropagation through the solver).
    """
    torch = _torch()
    torchdiffeq = require("torchdiffeq", EXTRA)
    check_times(problem)
    func = to_torch_module(problem.system, problem.theta)
    h0 = torch.tensor(problem.h0, dtype=torch.float64, requires_grad=True)
    ts = torch.tensor([problem.t0, *problem.times], dtype=torch.float64, requires_grad=True)
    if adjoint:
        params = tuple(func.parameters()) if problem.system.n_params else ()
        ys = torchdiffeq.odeint_adjoint(func, h0, ts, rtol=rtol, atol=atol, method=method, adjoint_params=params)
    else:
        ys = torchdiffeq.odeint(func, h0, ts, rtol=rtol, atol=atol, method=method)
    theta = func.theta
    loss = 0.0
    for i, fn in enumerate(loss_functions(problem, torch_functions())):
        h = ys[i + 1]
        value = fn(ts[i + 1], *[h[j] for j in range(h.shape[0])], *[theta[k] for k in range(theta.shape[0])])[0]
        loss = loss + value
    if not isinstance(loss, torch.Tensor):
        loss = torch.tensor(float(loss), dtype=torch.float64, requires_grad=True)
    loss.backward()

    def grad(x, size):
        return np.zeros(size) if x.grad is None else x.grad.detach().cpu().numpy().astype(float)

    dts = grad(ts, len(problem.times) + 1)
    return {
        "loss": float(loss.detach()),
        "dh0": grad(h0, problem.system.n),
        "dparams": named(problem, grad(theta, problem.system.n_params)),
        "dt0": float(dts[0]),
        "dt1": float(dts[-1]) if problem.is_final_loss else None,
        "dtimes": dts[1:],
    }


__all__ = ["to_torch_module", "torch_functions", "torchdiffeq_gradient"]
