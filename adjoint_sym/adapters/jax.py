"""An ODESystem as a JAX function, and gradients by ``jax.experimental.ode.odeint``.

Needs ``pip install jax`` (imported on first use).  :func:`jax_gradient` switches JAX to
64-bit floats (``jax_enable_x64``, a process-wide setting) because gradients are
compared at ``1e-6``.  ``odeint`` differentiates by its own adjoint (a backward solve
of the augmented system, as in Chen et al. 2018)::

    from adjoint_sym.adapters.jax import jax_gradient
    from adjoint_sym.testing import check_gradient_function
    check_gradient_function(jax_gradient)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np

from ..numeric.problem import Problem
from ..symbolic.system import ODESystem
from . import check_times, expression_loss_functions, loss_expressions, named, require, rhs_function

EXTRA = "jax"


def _jax():
    jax = require("jax", EXTRA)
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_functions() -> dict:
    """SymPy function names to ``jax.numpy`` (and ``jax.scipy.special.erf``)."""
    _jax()
    jnp = require("jax.numpy", EXTRA)
    special = require("jax.scipy.special", EXTRA)
    names = ("sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh", "exp", "log", "sqrt")
    sympy_names = ("sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "tanh", "exp", "log", "sqrt")
    out = {s: getattr(jnp, n) for s, n in zip(sympy_names, names)}
    out["erf"] = special.erf
    return out


def to_jax_function(system: ODESystem) -> Callable:
    """``f(t, h, theta) -> jnp.ndarray`` of shape (n,), traceable and differentiable."""
    _jax()
    jnp = require("jax.numpy", EXTRA)
    fn = rhs_function(system, jax_functions())

    def f(t, h, theta):
        values = fn(t, *[h[i] for i in range(h.shape[0])], *[theta[k] for k in range(theta.shape[0])])
        return jnp.stack([jnp.asarray(v, dtype=jnp.float64) * jnp.ones((), dtype=jnp.float64) for v in values])

    return f


@lru_cache(maxsize=128)
def _value_and_grad(system: ODESystem, exprs: tuple, sign: float, rtol: float, atol: float, mxstep: int) -> Callable:
    """The jitted ``(h0, theta, ts) -> (L, (dL/dh0, dL/dtheta, dL/dts))`` of one system and loss.

    ``odeint`` compiles per right-hand side (a static argument), so a fresh closure per
    call would recompile every time (about 2 s); problems that share the system and the
    loss and differ in numbers (as hypothesis draws and shrinks them) reuse this one.
    """
    jax = _jax()
    ode = require("jax.experimental.ode", EXTRA)
    f = to_jax_function(system)
    losses = expression_loss_functions(system, exprs, jax_functions())

    def g(y, s, theta):
        return sign * f(sign * s, y, theta)

    def total(h0, theta, ts):
        ys = ode.odeint(g, h0, sign * ts, theta, rtol=rtol, atol=atol, mxstep=mxstep)
        value = 0.0
        for i, fn in enumerate(losses):
            value = value + fn(ts[i + 1], *list(ys[i + 1]), *list(theta))[0]
        return value

    return jax.jit(jax.value_and_grad(total, argnums=(0, 1, 2)))


def jax_gradient(problem: Problem, *, rtol: float = 1e-10, atol: float = 1e-12, mxstep: int = 100_000) -> dict:
    """``loss``, ``dh0``, ``dparams``, ``dt0``, ``dt1``, ``dtimes`` by JAX's ``odeint``.

    ``odeint`` needs increasing times: a backward span (``t1 < t0``) is solved in
    ``s = -t`` with ``dh/ds = -f(-s, h)``, and JAX differentiates through the change.

    Examples
    --------
    >>> from adjoint_sym import FinalLoss, ODESystem  # doctest: +SKIP
    >>> sys = ODESystem.from_strings(["x"], ["a"], "t", ["-a*x"])  # doctest: +SKIP
    >>> g = jax_gradient(Problem(sys, [1.0], {"a": 1.0}, 0.0, 1.0, FinalLoss("x")))  # doctest: +SKIP
    >>> round(g["dt0"], 6)  # e^-1, h0 held fixed while t0 moves  # doctest: +SKIP
    0.367879
    """
    _jax()  # 64-bit floats before any array is made
    jnp = require("jax.numpy", EXTRA)
    check_times(problem)
    sign = 1.0 if problem.t1 >= problem.t0 else -1.0
    fn = _value_and_grad(problem.system, loss_expressions(problem), sign, float(rtol), float(atol), int(mxstep))
    h0 = jnp.asarray(problem.h0, dtype=jnp.float64)
    theta = jnp.asarray(problem.theta, dtype=jnp.float64)
    ts = jnp.asarray([problem.t0, *problem.times], dtype=jnp.float64)
    value, (dh0, dtheta, dts) = fn(h0, theta, ts)
    dts = np.asarray(dts, dtype=float)
    return {
        "loss": float(value),
        "dh0": np.asarray(dh0, dtype=float),
        "dparams": named(problem, np.asarray(dtheta, dtype=float)),
        "dt0": float(dts[0]),
        "dt1": float(dts[-1]) if problem.is_final_loss else None,
        "dtimes": dts[1:],
    }


__all__ = ["jax_functions", "jax_gradient", "to_jax_function"]
