"""The adjoint's kernels: vector-Jacobian products of ``f``, compiled once per system.

================  ===================================================================
kernel            returns
================  ===================================================================
``vjp``           ``[a^T f_h, a^T f_theta, a^T f_t]``
``adjoint_rhs``   ``-[a^T f_h, a^T f_theta, a^T f_t]``: the interpolating adjoint
``backsolve_rhs`` ``[f, -a^T f_h, -a^T f_theta, -a^T f_t]``: Algorithm 1 of Chen et al.
``vjp_batched``   ``vjp`` over a batch of nodes (scalar systems): the quadrature
================  ===================================================================

All come from one symbolic derivative, :meth:`ODESystem.vjp` (the derivative of the
scalar ``a . f``), kept at matrix level for matrix-level systems.  These are the code
under test: nothing in :mod:`adjoint_sym.reference` may use them.
"""

from __future__ import annotations

from functools import cached_property, lru_cache

import sympy as sp

from ..numeric.compile import Argument, Kernel, compile_kernel
from ..numeric.kernels import CompiledSystem, compiled
from ..symbolic.matrix_calculus import scale
from ..symbolic.system import ODESystem


class AdjointKernels:
    """The adjoint kernels of ``system``; get one through :func:`adjoint_kernels`."""

    def __init__(self, system: ODESystem) -> None:
        self.system = system
        self.numeric: CompiledSystem = compiled(system)
        self.n, self.n_params = system.n, system.n_params

    def _arguments(self, batched: bool = False) -> list[Argument]:
        k = self.numeric
        return [k.time_argument, k.state_argument(batched), k.cotangent_argument(batched), k.theta_argument]

    @property
    def _products(self) -> tuple:
        return self.numeric.vjp_blocks

    @property
    def f(self) -> Kernel:
        return self.numeric.f

    @property
    def vjp_h(self) -> Kernel:
        """``a^T f_h`` alone (shared with the stiff solvers' Newton Jacobian)."""
        return self.numeric.vjp_h

    def jac_h_from_vjp(self, t, h, theta):
        return self.numeric.jac_h_from_vjp(t, h, theta)

    @cached_property
    def vjp(self) -> Kernel:
        d_h, d_theta, d_t = self._products
        return compile_kernel("vjp", self._arguments(), [d_h, *d_theta, d_t])

    @cached_property
    def backsolve_rhs(self) -> Kernel:
        """Chen et al.'s Algorithm 1 right-hand side in one call.

        ``(t, y, theta) -> [f, -a^T f_h, -a^T f_theta, -a^T f_t]`` with ``h = y[:n]`` and
        ``a = y[n:2n]``: one kernel shares ``sigma(z)`` between ``f`` and the VJP and
        saves the per-step slicing and concatenation.
        """
        k = self.numeric
        y = Argument("y", (*k.state_argument(False).slots, *k.cotangent_argument(False).slots))
        products, negate_from = self._negated_products(self.n)
        arguments = [k.time_argument, y, k.theta_argument]
        return compile_kernel("backsolve_rhs", arguments, [self.system.rhs, *products], negate_from=negate_from)

    @cached_property
    def adjoint_rhs(self) -> Kernel:
        """``(t, h, y, theta) -> -[a^T f_h, a^T f_theta, a^T f_t]`` with ``a = y[:n]``."""
        products, negate_from = self._negated_products(0)
        return compile_kernel("adjoint_rhs", self._arguments(), products, negate_from=negate_from)

    def _negated_products(self, offset: int) -> tuple[list, int | None]:
        """``-[a^T f_h, a^T f_theta, a^T f_t]`` as blocks for outputs starting at ``offset``.

        Scalar systems negate each expression (SymPy folds the sign in for free); matrix
        blocks are negated in place after they are written (one numpy call for all).
        """
        d_h, d_theta, d_t = self._products
        blocks = [d_h, *d_theta, d_t]
        if self.system.is_matrix_level:
            return blocks, offset
        return [_negated(b) for b in blocks], None

    @cached_property
    def vjp_batched(self) -> Kernel:
        """``vjp`` over a batch of nodes: ``t`` (B,), ``h`` and ``a`` (n, B) -> (n+p+1, B).

        Scalar systems only: for matrix-level ones a batch would sum outer products.
        """
        if self.system.is_matrix_level:
            raise NotImplementedError("batched VJPs are defined for scalar systems only")
        d_h, d_theta, d_t = self._products
        return compile_kernel("vjp_batched", self._arguments(batched=True), [d_h, *d_theta, d_t])

    def __repr__(self) -> str:
        return f"AdjointKernels({self.system!r})"


def _negated(block: sp.Basic) -> sp.Basic:
    if isinstance(block, sp.ZeroMatrix):
        return block
    if isinstance(block, sp.MatrixExpr) and not isinstance(block, sp.MatrixBase):
        return scale(sp.S.NegativeOne, block)
    return -block


@lru_cache(maxsize=64)
def adjoint_kernels(system: ODESystem) -> AdjointKernels:
    """The cached :class:`AdjointKernels` of ``system`` (systems are hashable)."""
    return AdjointKernels(system)
