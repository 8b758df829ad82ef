"""How the adjoint forms ``a^T df/d(h, theta, t)``: one extension point, two forms.

The backward sweep needs the vector-Jacobian products of ``f`` in four shapes (the
products themselves, their negation as the interpolating adjoint's rate, Algorithm 1's
``[f, -products]``, and the state block alone for the quadrature variant).  A
:class:`VectorJacobianProduct` states the products once (its one abstract method) and
derives the other shapes; a form that can do better, such as the compiled symbolic VJP
with its fused kernels, overrides them.  How ``a^T df/dx`` is formed is thus a choice
separate from how ``h(t)`` is recovered on the way back (:mod:`adjoint_sym.adjoint.methods`).

=====================  ==============================================================
form                   products from
=====================  ==============================================================
:class:`SymbolicVJP`   :meth:`ODESystem.vjp`: one derivative of the scalar ``a . f``,
                       matrix-level for networks, compiled with fused kernels
:class:`JacobianVJP`   the entry-wise Jacobians ``a @ [f_h | f_theta | f_t]``
=====================  ==============================================================
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

import numpy as np

from ..symbolic.system import ODESystem
from .kernels import adjoint_kernels


class VectorJacobianProduct(ABC):
    """``a^T df/d(h, theta, t)`` of one system; subclass and define :meth:`products`.

    Parameters
    ----------
    system : ODESystem
    """

    def __init__(self, system: ODESystem) -> None:
        self.system = system
        self.n, self.n_params = system.n, system.n_params

    @abstractmethod
    def products(self, t: float, h: np.ndarray, a: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``[a^T f_h, a^T f_theta, a^T f_t]``, shape ``(n + p + 1,)``."""

    def adjoint_rate(self, t: float, h: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``d[a, a_theta, a_t]/dt = -products`` with ``a = y[:n]`` (the interpolating adjoint)."""
        return -self.products(t, h, y[: self.n], theta)

    def backsolve_rate(self, t: float, y: np.ndarray, theta: np.ndarray, f) -> np.ndarray:
        """``d[h, a, a_theta, a_t]/dt = [f, -products]`` (Algorithm 1 of Chen et al.)."""
        n = self.n
        return np.concatenate([f(t, y[:n], theta), -self.products(t, y[:n], y[n : 2 * n], theta)])

    def state_products(self, t: float, h: np.ndarray, a: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """``a^T f_h`` alone (the quadrature variant integrates ``a`` by itself)."""
        return self.products(t, h, a, theta)[: self.n]

    def batched_products(self, ts: np.ndarray, hs: np.ndarray, as_: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """:meth:`products` at many nodes: ``hs`` and ``as_`` of shape (n, B) -> (n + p + 1, B)."""
        return np.stack([self.products(t, hs[:, k], as_[:, k], theta) for k, t in enumerate(ts)], axis=1)

    # -- the same with theta fixed, once per gradient (the backward solve's right-hand sides)
    def adjoint_rate_at(self, theta: np.ndarray) -> Callable[[float, np.ndarray, np.ndarray], np.ndarray]:
        """``(t, h, y) ->`` :meth:`adjoint_rate` at ``theta``."""
        rate = self.adjoint_rate
        return lambda t, h, y: rate(t, h, y, theta)

    def backsolve_rate_at(self, theta: np.ndarray, f) -> Callable[[float, np.ndarray], np.ndarray]:
        """``(t, y) ->`` :meth:`backsolve_rate` at ``theta``."""
        rate = self.backsolve_rate
        return lambda t, y: rate(t, y, theta, f)

    def state_products_at(self, theta: np.ndarray) -> Callable[[float, np.ndarray, np.ndarray], np.ndarray]:
        """``(t, h, a) ->`` :meth:`state_products` at ``theta``."""
        products = self.state_products
        return lambda t, h, a: products(t, h, a, theta)


class SymbolicVJP(VectorJacobianProduct):
    """The symbolic VJP of :meth:`ODESystem.vjp`, compiled (the library's adjoint).

    Examples
    --------
    >>> import numpy as np
    >>> from adjoint_sym import ODESystem
    >>> system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> SymbolicVJP(system).products(0.0, np.array([2.0]), np.array([1.0]), np.array([0.5]))
    array([-0.5, -2. ,  0. ])
    """

    def __init__(self, system: ODESystem) -> None:
        super().__init__(system)
        self.kernels = adjoint_kernels(system)

    def products(self, t, h, a, theta):
        return self.kernels.vjp.fn(t, h, a, theta)

    def adjoint_rate(self, t, h, y, theta):
        return self.kernels.adjoint_rhs.fn(t, h, y, theta)

    def backsolve_rate(self, t, y, theta, f):
        return self.kernels.backsolve_rhs.fn(t, y, theta)

    def state_products(self, t, h, a, theta):
        return self.kernels.vjp_h.fn(t, h, a, theta)

    def batched_products(self, ts, hs, as_, theta):
        if self.system.is_matrix_level:  # a batch of matrix-level products would sum outer products
            return super().batched_products(ts, hs, as_, theta)
        return self.kernels.vjp_batched.fn(ts, hs, as_, theta)

    # The fused kernels with theta's blocks unpacked once (Kernel.bind): the backward
    # solve calls them directly, no closure in between.  A subclass that redefines a
    # product keeps the generic closures, which call its own definition.
    def adjoint_rate_at(self, theta):
        if type(self).adjoint_rate is not SymbolicVJP.adjoint_rate:
            return super().adjoint_rate_at(theta)
        return self.kernels.adjoint_rhs.bind(theta)

    def backsolve_rate_at(self, theta, f):
        if type(self).backsolve_rate is not SymbolicVJP.backsolve_rate:
            return super().backsolve_rate_at(theta, f)
        return self.kernels.backsolve_rhs.bind(theta)

    def state_products_at(self, theta):
        if type(self).state_products is not SymbolicVJP.state_products:
            return super().state_products_at(theta)
        return self.kernels.vjp_h.bind(theta)


class JacobianVJP(VectorJacobianProduct):
    """``a @ [f_h | f_theta | f_t]`` from the entry-wise Jacobians (the ``form="jacobian"`` adjoint).

    Examples
    --------
    >>> import numpy as np
    >>> from adjoint_sym import ODESystem
    >>> system = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"])
    >>> JacobianVJP(system).products(0.0, np.array([2.0]), np.array([1.0]), np.array([0.5]))
    array([-0.5, -2. ,  0. ])
    """

    def __init__(self, system: ODESystem) -> None:
        super().__init__(system)
        numeric = adjoint_kernels(system).numeric
        self._jac_h, self._jac_theta, self._f_t = numeric.jac_h.fn, numeric.jac_theta.fn, numeric.f_t.fn

    def products(self, t, h, a, theta):
        return np.concatenate(
            [a @ self._jac_h(t, h, theta), a @ self._jac_theta(t, h, theta), [a @ self._f_t(t, h, theta)]]
        )


__all__ = ["JacobianVJP", "SymbolicVJP", "VectorJacobianProduct"]
