"""Numeric kernels of one ODE system, compiled once and cached.

================  =========================================  ======================
kernel            returns                                    derived
================  =========================================  ======================
``f``             ``f(t, h, theta)``, shape (n,) [+ batch]    the rhs as written
``vjp_h``         ``a^T f_h`` for a (n,) or (n, k) cotangent  matrix-level VJP
``jvp_h``         ``f_h V`` for a (n,) or (n, k) tangent        matrix-level JVP
``jac_h``         ``f_h``, shape (n, n)                        entry-wise Jacobian
``jac_theta``     ``f_theta``, shape (n, p)                    entry-wise Jacobian
``f_t``           ``f_t``, shape (n,)                          entry-wise
================  =========================================  ======================

The Jacobians come from entry-wise differentiation or from the forward-mode rules of
:func:`adjoint_sym.symbolic.jvp.jvp`, so the references that use them
share no derivative with the adjoint, whose vector-Jacobian kernels live in
:mod:`adjoint_sym.adjoint.kernels`.  :meth:`CompiledSystem.state_jacobian` is the Newton
Jacobian of stiff solvers: entry-wise for scalar systems, one batched JVP with the
identity at matrix level (where an entry-wise Jacobian would expand the network into
scalars).  ``vjp_h`` and :meth:`CompiledSystem.jac_h_from_vjp` are kept for the adjoint,
which builds on its own products.  Kernels are compiled lazily: a wide network never
pays for an entry-wise Jacobian unless a reference asks.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import numpy as np
import sympy as sp

from ..symbolic.jvp import jvp
from ..symbolic.system import ODESystem
from .compile import Argument, Kernel, compile_kernel, scalar_argument


class CompiledSystem:
    """The kernels of ``system``; get one through :func:`compiled`."""

    def __init__(self, system: ODESystem) -> None:
        self.system = system
        self.n = system.n
        self.n_params = system.n_params
        self.time_argument = scalar_argument(system.t)
        self.theta_argument = Argument("theta", tuple(system.params))

    def state_argument(self, batched: bool) -> Argument:
        return Argument("h", tuple(self.system.state), batched=batched)

    @cached_property
    def f(self) -> Kernel:
        return compile_kernel(
            "f", [self.time_argument, self.state_argument(True), self.theta_argument], [self.system.rhs]
        )

    # -- the vector-Jacobian product, symbolically (compiled into kernels here and in adjoint/)
    @cached_property
    def cotangent(self) -> sp.Basic:
        """The symbolic cotangent ``a``: an ``(n, 1)`` matrix symbol at matrix level, else dummies."""
        if self.system.is_matrix_level:
            return sp.MatrixSymbol("cotangent", self.n, 1)
        return sp.ImmutableMatrix([sp.Dummy(f"c{i}") for i in range(self.n)])

    def cotangent_argument(self, batched: bool) -> Argument:
        c = self.cotangent
        slots = (c,) if isinstance(c, sp.MatrixSymbol) else tuple(c)
        return Argument("a", slots, batched=batched)

    @cached_property
    def vjp_blocks(self) -> tuple:
        """``(a^T f_h, [a^T f_theta_k], a^T f_t)`` for the symbolic :attr:`cotangent`."""
        return self.system.vjp(self.cotangent)

    @cached_property
    def vjp_h(self) -> Kernel:
        """``a^T df/dh`` alone; with ``a`` of shape (n, k), ``k`` products at once."""
        args = [self.time_argument, self.state_argument(False), self.cotangent_argument(True), self.theta_argument]
        return compile_kernel("vjp_h", args, [self.vjp_blocks[0]])

    # -- the Jacobian-vector product, forward mode: the numeric layer's own f_h ----------
    @cached_property
    def tangent(self) -> sp.Basic:
        """The symbolic tangent ``v`` of the state, shaped like it."""
        if self.system.is_matrix_level:
            return sp.MatrixSymbol("tangent", self.n, 1)
        return sp.ImmutableMatrix([sp.Dummy(f"v{i}") for i in range(self.n)])

    @cached_property
    def jvp_h(self) -> Kernel:
        """``f_h v``; with ``v`` of shape (n, k), ``k`` products at once."""
        v = self.tangent
        if self.system.is_matrix_level:
            product = jvp(self.system.rhs, {self.system.state[0]: v})
            slots = (v,)
        else:
            product = sp.ImmutableMatrix(self.system.jacobian_h * v)
            slots = tuple(v)
        args = [self.time_argument, self.state_argument(False), Argument("v", slots, batched=True), self.theta_argument]
        return compile_kernel("jvp_h", args, [product])

    def state_jacobian(self, t: float, h: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``df/dh``, shape (n, n), without the adjoint's VJP: what stiff solvers get.

        Entry-wise for scalar systems; at matrix level one batched forward-mode JVP with
        the identity (no expansion of the network into scalars).
        """
        if not self.system.is_matrix_level:
            return self.jac_h(t, h, theta)
        return self.jvp_h(t, h, np.eye(self.n, dtype=np.result_type(h, theta, float)), theta)

    # -- entry-wise Jacobians: what the references differentiate with ---------------------
    def _jacobian_kernel(self, name: str, expr: sp.Basic, shape: tuple[int, ...] | None = None) -> Kernel:
        args = [self.time_argument, self.state_argument(False), self.theta_argument]
        return compile_kernel(name, args, [expr], output_shape=shape)

    @cached_property
    def jac_h(self) -> Kernel:
        return self._jacobian_kernel("jac_h", self.system.jacobian_h, (self.n, self.n))

    @cached_property
    def jac_theta(self) -> Kernel:
        return self._jacobian_kernel("jac_theta", self.system.jacobian_theta, (self.n, self.n_params))

    @cached_property
    def f_t(self) -> Kernel:
        return self._jacobian_kernel("f_t", self.system.derivative_t)

    def jac_h_from_vjp(self, t: float, h: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``df/dh`` from one batched VJP with the identity: matrix level, no expansion."""
        return self.vjp_h(t, h, np.eye(self.n, dtype=np.result_type(h, theta)), theta).T

    def __repr__(self) -> str:
        return f"CompiledSystem({self.system!r})"


@lru_cache(maxsize=64)
def compiled(system: ODESystem) -> CompiledSystem:
    """The cached :class:`CompiledSystem` of ``system`` (systems are hashable)."""
    return CompiledSystem(system)
