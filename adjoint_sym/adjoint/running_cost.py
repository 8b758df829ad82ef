"""A running cost in the adjoint: the products of the Hamiltonian ``H = a . f + g``.

For ``L = Phi + int_{t0}^{t1} g(h, theta, t) dt`` the backward sweep is that of the point
loss with every product ``a^T df/dx`` replaced by ``dH/dx = a^T df/dx + dg/dx``
(:mod:`adjoint_sym.symbolic.running_cost`).  :class:`HamiltonianVJP` wraps any
:class:`~adjoint_sym.adjoint.vjp.VectorJacobianProduct` and adds the running cost's
gradient, compiled once per (system, integrand) pair (:class:`RunningCostKernels`), to
each of its shapes, so every engine (interpolating, quadrature, backsolve) and every
form of ``a^T df/dx`` (symbolic, Jacobian, a planted mutant) carries the cost unchanged.

The cost's value enters twice, both outside the sweep's ODEs:

* the loss value ``Phi + int g dt``: the forward solve carries the quadrature variable
  ``q' = g``, ``q(t0) = 0`` (:func:`forward_with_cost`), under the solver's error control;
* the time terms: ``a_t`` jumps by ``-g(h(t1), t1)`` at ``t1`` with the loss's own
  motion (:class:`~adjoint_sym.adjoint.backward.Observations`), which gives
  ``dL/dt1 = ... + g(t1)`` and ``dL/dt0 = -a(t0) . f(h0, t0) - g(h0, t0)``.

These kernels are the code under test: nothing in :mod:`adjoint_sym.reference` may use them.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from ..numeric.compile import Argument, Kernel, compile_kernel, scalar_argument
from ..numeric.problem import Problem
from ..numeric.solve import IMPLICIT, SolveResult, integrate
from ..symbolic.running_cost import running_cost_gradient
from ..symbolic.system import ODESystem
from .vjp import VectorJacobianProduct


class RunningCostKernels:
    """The compiled gradient ``[g_h, g_theta, g_t]`` of one integrand; get one through :func:`running_cost_kernels`."""

    def __init__(self, system: ODESystem, g: sp.Expr) -> None:
        self.system, self.g = system, g
        self.n, self.n_params = system.n, system.n_params
        self.blocks = running_cost_gradient(system, g)

    def _arguments(self, batched: bool) -> list[Argument]:
        s = self.system
        return [
            scalar_argument(s.t),
            Argument("h", tuple(s.state), batched=batched),
            Argument("theta", tuple(s.params)),
        ]

    @cached_property
    def gradient(self) -> Kernel:
        """``(t, h, theta) -> [g_h, g_theta, g_t]``, shape ``(n + p + 1,)``."""
        g_h, g_theta, g_t = self.blocks
        return compile_kernel("running_cost_gradient", self._arguments(False), [g_h, *g_theta, g_t])

    @cached_property
    def gradient_batched(self) -> Kernel:
        """:attr:`gradient` at many nodes: ``t`` (B,), ``h`` (n, B) -> (n + p + 1, B) (scalar systems)."""
        g_h, g_theta, g_t = self.blocks
        return compile_kernel("running_cost_gradient_batched", self._arguments(True), [g_h, *g_theta, g_t])

    @cached_property
    def state_gradient(self) -> Kernel:
        """``(t, h, theta) -> g_h``: the coupling of ``q' = g`` to ``h`` in a stiff solver's Jacobian."""
        return compile_kernel("running_cost_h", self._arguments(False), [self.blocks[0]])

    def __repr__(self) -> str:
        return f"RunningCostKernels({self.system!r}, {self.g})"


@lru_cache(maxsize=64)
def running_cost_kernels(system: ODESystem, g: sp.Expr) -> RunningCostKernels:
    """The cached :class:`RunningCostKernels` of a (system, integrand) pair."""
    return RunningCostKernels(system, g)


class HamiltonianVJP(VectorJacobianProduct):
    """``dH/d(h, theta, t)`` for ``H = a . f + g``: an inner form of ``a^T df/dx`` plus ``dg/dx``.

    Parameters
    ----------
    inner : VectorJacobianProduct
        How ``a^T df/dx`` is formed (its fused kernels are kept).
    cost : RunningCostKernels

    Examples
    --------
    >>> import numpy as np
    >>> from adjoint_sym import ODESystem
    >>> from adjoint_sym.adjoint.vjp import SymbolicVJP
    >>> system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> g = system.symbol_table()["x"] ** 2
    >>> H = HamiltonianVJP(SymbolicVJP(system), running_cost_kernels(system, g))
    >>> H.products(0.0, np.array([2.0]), np.array([1.0]), np.array([0.5]))  # [-k a + 2x, -x a, 0]
    array([ 3.5, -2. ,  0. ])
    """

    def __init__(self, inner: VectorJacobianProduct, cost: RunningCostKernels) -> None:
        super().__init__(inner.system)
        self.inner, self.cost = inner, cost
        self._gradient, self._batched = cost.gradient.fn, None

    def cost_gradient(self, t: float, h: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``[g_h, g_theta, g_t]`` at one time (a mutant overrides it to plant a dropped term)."""
        return self._gradient(t, h, theta)

    def cost_gradient_batched(self, ts: np.ndarray, hs: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """:meth:`cost_gradient` at many nodes, shape ``(n + p + 1, B)``."""
        if self.system.is_matrix_level:
            return np.stack([self.cost_gradient(t, hs[:, k], theta) for k, t in enumerate(ts)], axis=1)
        if self._batched is None:
            self._batched = self.cost.gradient_batched.fn
        return self._batched(ts, hs, theta)

    def products(self, t, h, a, theta):
        return self.inner.products(t, h, a, theta) + self.cost_gradient(t, h, theta)

    def adjoint_rate(self, t, h, y, theta):
        return self.inner.adjoint_rate(t, h, y, theta) - self.cost_gradient(t, h, theta)

    def backsolve_rate(self, t, y, theta, f):
        out = np.array(self.inner.backsolve_rate(t, y, theta, f))
        out[self.n :] -= self.cost_gradient(t, y[: self.n], theta)
        return out

    def state_products(self, t, h, a, theta):
        return self.inner.state_products(t, h, a, theta) + self.cost_gradient(t, h, theta)[: self.n]

    def batched_products(self, ts, hs, as_, theta):
        return self.inner.batched_products(ts, hs, as_, theta) + self.cost_gradient_batched(ts, hs, theta)


def hamiltonian(vjp: VectorJacobianProduct, problem: Problem) -> VectorJacobianProduct:
    """``vjp`` with the problem's running cost added (:class:`HamiltonianVJP`), or ``vjp`` itself."""
    g = problem.running_cost
    if g is None or isinstance(vjp, HamiltonianVJP):
        return vjp
    return HamiltonianVJP(vjp, running_cost_kernels(problem.system, g))


def forward_with_cost(problem: Problem, *, solver: str, rtol: float, atol: float, dense: bool) -> SolveResult:
    """Solve ``[h, q]`` with ``q' = g(h, theta, t)``, ``q(t0) = 0``: the trajectory and the integral.

    Row ``n`` of the result is ``q(t) = int_{t0}^{t} g dt``; the dense output (when kept)
    covers both, and the engines read its first ``n`` rows.  ``dense=False`` keeps the
    observation times only, as the plain forward solve does.
    """
    k, theta, n = problem.kernels, problem.theta, problem.system.n
    f, value = k.f.fn, problem.running_value
    cost = running_cost_kernels(problem.system, problem.running_cost)

    def fun(t, z):
        h = z[:n]
        return np.concatenate([f(t, h, theta), [value(t, h, theta)]])

    jac = None
    if solver in IMPLICIT:
        coupling = cost.state_gradient.fn

        def jac(t, z):
            out = np.zeros((n + 1, n + 1))
            out[:n, :n] = k.state_jacobian(t, z[:n], theta)
            out[n, :n] = coupling(t, z[:n], theta)
            return out

    return integrate(
        fun,
        (problem.t0, problem.t1),
        np.concatenate([problem.h0, [0.0]]),
        solver=solver,
        rtol=rtol,
        atol=atol,
        jac=jac,
        dense=dense,
        t_eval=None if dense else np.asarray(problem.times, dtype=float),
    )


__all__ = ["HamiltonianVJP", "RunningCostKernels", "forward_with_cost", "hamiltonian", "running_cost_kernels"]
