"""Numeric kernels of one ODE system, compiled once and cached.

================  =========================================  ======================
kernel            returns                                    derived
================  =========================================  ======================
``f``             ``f(t, h, theta)``, shape (n,) [+ batch]    the rhs as written
``vjp``           ``[a^T f_h, a^T f_theta, a^T f_t]``         matrix-level VJP
``vjp_h``         ``a^T f_h`` for a (n,) or (n, k) cotangent  matrix-level VJP
``jac_h``         ``f_h``, shape (n, n)                        entry-wise Jacobian
``jac_theta``     ``f_theta``, shape (n, p)                    entry-wise Jacobian
``f_t``           ``f_t``, shape (n,)                          entry-wise
================  =========================================  ======================

The vector-Jacobian products come from :meth:`ODESystem.vjp` (one derivative of the
scalar ``a . f``), the Jacobians from entry-wise differentiation, so the forward
sensitivity reference shares no derivative with the adjoint.  Entry-wise kernels are
compiled lazily: a wide network never pays for them unless a reference asks.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from .compile import Argument, Kernel, compile_kernel, scalar_argument
from .matrix_calculus import scale
from .system import ODESystem


class CompiledSystem:
    """The kernels of ``system``; get one through :func:`compiled`."""

    def __init__(self, system: ODESystem) -> None:
        self.system = system
        self.n = system.n
        self.n_params = system.n_params
        self._t = scalar_argument(system.t)
        self._theta = Argument("theta", tuple(system.params))

    def _state(self, batched: bool) -> Argument:
        return Argument("h", tuple(system_state(self.system)), batched=batched)

    @cached_property
    def f(self) -> Kernel:
        return compile_kernel("f", [self._t, self._state(True), self._theta], [self.system.rhs])

    @cached_property
    def _cotangent(self) -> sp.Basic:
        if self.system.is_matrix_level:
            return sp.MatrixSymbol("cotangent", self.n, 1)
        return sp.ImmutableMatrix([sp.Dummy(f"c{i}") for i in range(self.n)])

    def _cotangent_argument(self, batched: bool) -> Argument:
        c = self._cotangent
        slots = (c,) if isinstance(c, sp.MatrixSymbol) else tuple(c)
        return Argument("a", slots, batched=batched)

    @cached_property
    def _products(self) -> tuple:
        return self.system.vjp(self._cotangent)

    @cached_property
    def vjp(self) -> Kernel:
        d_h, d_theta, d_t = self._products
        args = [self._t, self._state(False), self._cotangent_argument(False), self._theta]
        return compile_kernel("vjp", args, [d_h, *d_theta, d_t])

    @cached_property
    def backsolve_rhs(self) -> Kernel:
        """Chen et al.'s Algorithm 1 right-hand side in one call.

        ``(t, y, theta) -> [f, -a^T f_h, -a^T f_theta, -a^T f_t]`` with ``h = y[:n]`` and
        ``a = y[n:2n]``: one kernel shares ``sigma(z)`` between ``f`` and the VJP and
        saves the per-step slicing and concatenation.
        """
        d_h, d_theta, d_t = self._products
        y = Argument("y", (*system_state(self.system), *self._cotangent_argument(False).slots))
        outputs = [self.system.rhs, *(_negated(b) for b in (d_h, *d_theta, d_t))]
        return compile_kernel("backsolve_rhs", [self._t, y, self._theta], outputs)

    @cached_property
    def adjoint_rhs(self) -> Kernel:
        """``(t, h, y, theta) -> -[a^T f_h, a^T f_theta, a^T f_t]`` with ``a = y[:n]``."""
        d_h, d_theta, d_t = self._products
        args = [self._t, self._state(False), self._cotangent_argument(False), self._theta]
        return compile_kernel("adjoint_rhs", args, [_negated(b) for b in (d_h, *d_theta, d_t)])

    @cached_property
    def vjp_batched(self) -> Kernel:
        """``vjp`` over a batch of nodes: ``t`` (B,), ``h`` and ``a`` (n, B) -> (n+p+1, B).

        Scalar systems only: for matrix-level ones a batch would sum outer products.
        """
        if self.system.is_matrix_level:
            raise NotImplementedError("batched VJPs are defined for scalar systems only")
        d_h, d_theta, d_t = self._products
        args = [self._t, self._state(True), self._cotangent_argument(True), self._theta]
        return compile_kernel("vjp_batched", args, [d_h, *d_theta, d_t])

    @cached_property
    def vjp_h(self) -> Kernel:
        """``a^T df/dh`` alone; with ``a`` of shape (n, k), ``k`` products at once."""
        d_h = self._products[0]
        args = [self._t, self._state(False), self._cotangent_argument(True), self._theta]
        return compile_kernel("vjp_h", args, [d_h])

    @cached_property
    def jac_h(self) -> Kernel:
        args = [self._t, self._state(False), self._theta]
        return compile_kernel("jac_h", args, [self.system.jacobian_h], output_shape=(self.n, self.n))

    @cached_property
    def jac_theta(self) -> Kernel:
        args = [self._t, self._state(False), self._theta]
        shape = (self.n, self.n_params)
        return compile_kernel("jac_theta", args, [self.system.jacobian_theta], output_shape=shape)

    @cached_property
    def f_t(self) -> Kernel:
        args = [self._t, self._state(False), self._theta]
        return compile_kernel("f_t", args, [self.system.derivative_t])

    def jac_h_from_vjp(self, t: float, h: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``df/dh`` from one batched VJP with the identity: matrix level, no expansion."""
        return self.vjp_h(t, h, np.eye(self.n, dtype=np.result_type(h, theta)), theta).T

    def __repr__(self) -> str:
        return f"CompiledSystem({self.system!r})"


def _negated(block: sp.Basic) -> sp.Basic:
    if isinstance(block, sp.ZeroMatrix):
        return block
    if isinstance(block, sp.MatrixExpr) and not isinstance(block, sp.MatrixBase):
        return scale(sp.S.NegativeOne, block)
    return -block


def system_state(system: ODESystem) -> tuple:
    return tuple(system.state)


@lru_cache(maxsize=64)
def compiled(system: ODESystem) -> CompiledSystem:
    """The cached :class:`CompiledSystem` of ``system`` (systems are hashable)."""
    return CompiledSystem(system)
