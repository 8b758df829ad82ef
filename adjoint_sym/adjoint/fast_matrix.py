"""The fast backend for matrix-level systems: tapes of BLAS calls, and the parameter adjoint as a quadrature.

A matrix-level system (``dh/dt = tanh(W h + b)``, a two-layer network) is never expanded
into scalars here.  Its ``f`` and its symbolic VJP (:meth:`ODESystem.vjp`, the code
under test) are lowered to tapes of matrix operations (:mod:`adjoint_sym.adjoint.fast_lower`)
that one compiled interpreter runs (:mod:`adjoint_sym.adjoint.fast_tape`): a new system
of any width costs milliseconds of lowering and no compilation.

The backward solve steps ``a`` alone under error control; ``a_t`` and ``a_theta``,
whose rates ``-a^T f_t`` and ``-a^T f_theta`` do not feed back into anything, are
integrated on the same steps with the same Runge-Kutta weights but kept out of the error
norm: the seminorm of Kidger, Chen and Lyons (2021), who show it leaves the gradient's
accuracy intact while the parameter adjoint no longer dictates the step size.  A
parameter block whose VJP is an outer product (``dL/dW`` of ``W x`` is ``u x^T``) is not
formed at each stage: the stages' factors ``u``, ``x`` are kept, and the block's
integral over a segment is one BLAS matrix product ``U^T diag(w) X`` over all of them.

Both tapes read the engine's input vector ``[t, h (n), a (n), theta (p)]`` in place;
the VJP tape writes ``[a^T f_h (n), a^T f_t, dense blocks of a^T f_theta, factors]``.

References
----------
Kidger, Chen, Lyons (2021), "Hey, that's not an ODE": Faster ODE Adjoints via Seminorms. ICML.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from ..symbolic.cse import cse
from ..symbolic.system import ODESystem
from .fast_lower import Lowering, View, is_zero, shape_of


@dataclass(frozen=True)
class Factor:
    """A parameter block (``rows x cols`` at ``theta[offset:]``) accumulated as ``sum_k w_k u_k v_k^T``.

    ``u`` and ``v`` are where the factors start in the payload rows of the engine.
    """

    offset: int
    rows: int
    cols: int
    u: int
    v: int


def _outer(term: sp.Basic) -> tuple[sp.Basic, sp.Basic] | None:
    """``(u, v)`` with ``term = u v^T`` (columns ``u``, ``v``) if ``term`` is a product with a 1-wide middle."""
    if not isinstance(term, sp.MatMul):
        return None
    coeff, mats = term.as_coeff_matrices()
    for k in range(1, len(mats)):
        if mats[k - 1].shape[1] == 1 and mats[k].shape[0] == 1:
            left, right = sp.MatMul(*mats[:k]), sp.MatMul(*mats[k:])
            u = left if coeff == 1 else sp.MatMul(coeff, left)
            return u, right.T
    return None


def _split(params, d_theta, theta_offsets) -> tuple[list, list]:
    """Each parameter's VJP block as outer-product factor pairs ``(u, v, offset, rows, cols)`` where
    its terms are ``u v^T``, and the rest as a dense output ``(expr, offset, size)``."""
    dense, factors = [], []
    for param, block in zip(params, d_theta):
        if is_zero(block):  # the parameter does not reach f: nothing to integrate
            continue
        rows, cols = shape_of(param)
        terms = block.args if isinstance(block, sp.MatAdd) else (block,)
        pairs = [_outer(term) if rows > 1 and cols > 1 else None for term in terms]
        rest = [term for term, pair in zip(terms, pairs) if pair is None]
        if rest:
            dense.append((rest[0] if len(rest) == 1 else sp.MatAdd(*rest), theta_offsets[param], rows * cols))
        factors.extend((u, v, theta_offsets[param], rows, cols) for u, v in filter(None, pairs))
    return dense, factors


class MatrixFastSystem:
    """The tapes of one matrix-level system; get one through :func:`matrix_fast_system`.

    Attributes
    ----------
    f_tape, vjp_tape : ndarray of int64
        The programs of :mod:`adjoint_sym.adjoint.fast_tape`.
    mem_size : int
        The length of the memory both tapes run on (inputs, constants, registers).
    width : int
        The VJP tape's output size; ``dense`` lists ``(theta offset, size)`` of the blocks
        accumulated entry by entry (after ``a_t`` in the payload), ``factors`` the
        outer-product blocks.
    """

    kind = "matrix"

    def __init__(self, system: ODESystem) -> None:
        started = time.perf_counter()
        self.system = system
        n, p = int(system.n), int(system.n_params)
        self.n, self.n_params = n, p
        cotangent = sp.MatrixSymbol("_cotangent", n, 1)
        bindings: dict = {system.t: View(0, 1, 1), system.state[0]: View(1, n, 1), cotangent: View(1 + n, n, 1)}
        theta_offsets, k = {}, 0
        for param in system.params:  # theta's blocks, read in place from the engine's input vector
            bindings[param] = View(1 + 2 * n + k, *shape_of(param))
            theta_offsets[param] = k
            k += bindings[param].size
        d_h, d_theta, d_t = system.vjp(cotangent)
        dense, factors = _split(system.params, d_theta, theta_offsets)
        self.derive_time = time.perf_counter() - started
        started = time.perf_counter()
        self.f_tape, f_low = self._lower(bindings, 1 + 2 * n + p, [system.rhs])
        vjp_outputs = [d_h, d_t, *(e for e, _, _ in dense), *(x for u, v, *_ in factors for x in (u, v))]
        # the VJP's constants and registers after f's: both tapes run on one memory
        self.vjp_tape, vjp_low = self._lower(bindings, f_low.top, vjp_outputs)
        self.lowerings = (f_low, vjp_low)
        self.mem_size = int(self.vjp_tape[1])
        self.dense = tuple((offset, size) for _, offset, size in dense)
        self.n_dense = 1 + sum(size for _, size in self.dense)  # a_t first
        position, out = 0, []
        for *_, offset, rows, cols in factors:
            out.append(Factor(offset, rows, cols, position, position + rows))
            position += rows + cols
        self.factors = tuple(out)
        self.width = n + self.n_dense + position
        self.compile_time = time.perf_counter() - started

    @staticmethod
    def _lower(bindings: dict, start: int, outputs: list) -> tuple[np.ndarray, Lowering]:
        replacements, reduced = cse(outputs, prefix="_fast")
        low = Lowering(bindings, start)
        for symbol, value in replacements:
            low.bindings[symbol] = low.value(value)
        size = 0
        for block in reduced:
            size += low.write(block, size)
        return low.tape(size), low

    def memory(self, theta: np.ndarray) -> np.ndarray:
        """A fresh ``mem`` for both tapes: theta and the constants in place."""
        mem = np.zeros(self.mem_size)
        mem[1 + 2 * self.n : 1 + 2 * self.n + self.n_params] = theta
        for low in self.lowerings:
            low.fill_constants(mem)
        return mem

    def parameter_adjoint(self, acc: np.ndarray, rows: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """``a_theta``'s change over one segment from the engine's quadrature payload."""
        out = np.zeros(self.n_params)
        k = 1  # acc[0] is a_t
        for offset, size in self.dense:
            out[offset : offset + size] += acc[k : k + size]
            k += size
        for f in self.factors:
            if rows.shape[0]:
                block = (rows[:, f.u : f.u + f.rows] * weights[:, None]).T @ rows[:, f.v : f.v + f.cols]
                out[f.offset : f.offset + f.rows * f.cols] += block.ravel()
        return out

    def __repr__(self) -> str:
        return f"MatrixFastSystem({self.system!r})"


@lru_cache(maxsize=64)
def matrix_fast_system(system: ODESystem) -> MatrixFastSystem:
    """The cached :class:`MatrixFastSystem` of ``system`` (systems are hashable)."""
    return MatrixFastSystem(system)


__all__ = ["Factor", "MatrixFastSystem", "matrix_fast_system"]
