"""Wide networks: adjoint_sym's routes next to JAX and diffrax on the tanh MLP, in one run (issue 17).

``python benchmarks/bench_wide.py [--quick] [--sizes 32 128 512]`` measures, on
``dh/dt = tanh(W h + b)`` of :func:`common.mlp_problem` (``t in [0, 1]``,
``L = |h(1)|^2``, ``rtol=1e-7, atol=1e-9``), round-robin in one process:

==================  ====================================================================
route               what runs
==================  ====================================================================
default             ``gradient(problem)``: the interpolating adjoint through ``solve_ivp``
fast                ``gradient(problem, backend="fast")``: compiled RK45, matrix-level
                    tapes of BLAS calls, the parameter adjoint as a seminorm quadrature
hand backsolve      the hand-written numpy baseline (``baseline_numpy.backsolve``)
JAX odeint          ``jax.experimental.ode.odeint`` (Dopri5 + its adjoint) under ``jit``
diffrax             ``diffeqsolve(Dopri5, PIDController, RecursiveCheckpointAdjoint)``
                    under ``jit``: discretize-then-optimize through the solver's steps
==================  ====================================================================

and prints, per width, the time per gradient, each route's error against a tight
reference (``gradient(problem, rtol=1e-11)``), the issue's ratios (``fast / JAX``,
target <= 1; ``fast / diffrax``, target <= 2) and the cost of a first gradient: for
adjoint_sym the derivation and lowering of a new system (kernel caches cleared; the
engine is compiled once per installation and loaded from numba's cache), for JAX and
diffrax the trace and XLA compilation; and apart, the first ``Problem(...)`` of each
width, whose loss ``sum_i h_i^2`` is differentiated entry by entry.  JAX and diffrax are optional
(``pip install jax diffrax``): without them their rows say so.  Every library runs on
one thread (BLAS pinned by :mod:`common`, XLA's by its flags); times are process CPU
time (see :data:`common.clock`).  Nothing here asserts.
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import argparse
import importlib.util
import os
import warnings

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import baseline_numpy as base
import numpy as np

from adjoint_sym import gradient
from adjoint_sym.adjoint.fast import fast_system

RTOL, ATOL = common.RTOL, common.ATOL
HAVE_JAX = importlib.util.find_spec("jax") is not None
HAVE_DIFFRAX = HAVE_JAX and importlib.util.find_spec("diffrax") is not None


def flat(dh0, dW, db) -> np.ndarray:
    return np.concatenate([np.ravel(dh0), np.ravel(dW), np.ravel(db)])


# -- JAX and diffrax -------------------------------------------------------------------------
def jax_routes(n: int) -> dict:
    """``name -> (jitted value_and_grad, args)`` of the JAX peers that are installed."""
    if not HAVE_JAX:
        return {}
    import jax
    import jax.numpy as jnp
    from jax.experimental.ode import odeint

    jax.config.update("jax_enable_x64", True)
    h0, w = common.mlp_data(n)
    args = (jnp.asarray(h0), jnp.asarray(w["W"]), jnp.asarray(w["b"].ravel()))

    def odeint_loss(h0, W, b):
        hs = odeint(lambda h, t, W, b: jnp.tanh(W @ h + b), h0, jnp.array([0.0, 1.0]), W, b, rtol=RTOL, atol=ATOL)
        return jnp.sum(hs[-1] ** 2)

    routes = {"JAX odeint": (jax.jit(jax.value_and_grad(odeint_loss, argnums=(0, 1, 2))), args)}
    if HAVE_DIFFRAX:
        import diffrax

        def diffrax_loss(h0, W, b):
            term = diffrax.ODETerm(lambda t, y, args: jnp.tanh(args[0] @ y + args[1]))
            sol = diffrax.diffeqsolve(
                term,
                diffrax.Dopri5(),
                t0=0.0,
                t1=1.0,
                dt0=None,
                y0=h0,
                args=(W, b),
                stepsize_controller=diffrax.PIDController(rtol=RTOL, atol=ATOL),
                adjoint=diffrax.RecursiveCheckpointAdjoint(),
            )
            return jnp.sum(sol.ys[-1] ** 2)

        routes["diffrax"] = (jax.jit(jax.value_and_grad(diffrax_loss, argnums=(0, 1, 2))), args)
    return routes


def blocked(fn, args):
    def call():
        value, grads = fn(*args)
        value.block_until_ready()
        return grads

    return call


# -- one width -------------------------------------------------------------------------------
def measure_width(n: int, repeats: int, budget: float) -> dict:
    out: dict = {"n": n}
    # the first Problem() of this width: its loss's gradient is compiled entry by entry (O(n^2) SymPy work)
    out["problem s"], _ = common.once(lambda: common.mlp_problem(n))
    hand = base.problems()[f"mlp-{n}"] if n in common.MLP_SIZES else base.mlp(n)
    # first gradients: adjoint_sym with the kernel caches cleared (engine already loaded), peers' compile
    gradient(common.mlp_problem(2), backend="fast", rtol=RTOL, atol=ATOL)  # numba's cache loaded: not timed
    common.forget_compiled()
    fast_system.cache_clear()
    prob = common.mlp_problem(n)
    out["fast first s"], _ = common.once(lambda: gradient(prob, backend="fast", rtol=RTOL, atol=ATOL))
    kernels = fast_system(prob.system)
    out["fast derive s"], out["fast lower s"] = kernels.derive_time, kernels.compile_time
    out["default first s"], _ = common.once(lambda: gradient(prob, rtol=RTOL, atol=ATOL))
    routes = {
        "default": lambda: gradient(prob, rtol=RTOL, atol=ATOL),
        "fast": lambda: gradient(prob, backend="fast", rtol=RTOL, atol=ATOL),
        "hand backsolve": lambda: base.backsolve(hand),
    }
    grads: dict = {}
    for name, (fn, args) in jax_routes(n).items():
        out[f"{name} first s"], value = common.once(blocked(fn, args))
        grads[name] = flat(*value)
        routes[name] = blocked(fn, args)
    timings = common.measure_paired(routes, repeats=repeats, budget=budget)
    out.update({name: t.ms for name, t in timings.items()})
    ref = gradient(prob, rtol=1e-11, atol=1e-13)
    reference = flat(ref.dh0, ref.dparams["W"], ref.dparams["b"])
    for name in ("default", "fast"):
        g = gradient(prob, backend="fast" if name == "fast" else "default", rtol=RTOL, atol=ATOL)
        grads[name] = flat(g.dh0, g.dparams["W"], g.dparams["b"])
    hand_g = base.backsolve(hand)
    grads["hand backsolve"] = hand_g.flat[: reference.size]
    out["errors"] = {name: common.rel_err(g, reference) for name, g in grads.items()}
    return out


def ratio(m: dict, a: str, b: str):
    return m[a] / m[b] if a in m and b in m else None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 128, 512])
    args = parser.parse_args(argv)
    repeats, budget = (3, 1.0) if args.quick else (9, 6.0)
    print(f"# Wide networks: adjoint_sym, JAX and diffrax on the tanh MLP\n\n{common.machine()}\n")
    if not HAVE_JAX:
        print("JAX: not installed, its rows are skipped (pip install jax)")
    if not HAVE_DIFFRAX:
        print("diffrax: not installed, its rows are skipped (pip install diffrax)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        measured = [measure_width(n, repeats, budget) for n in args.sizes]
    names = ["default", "fast", "hand backsolve", "JAX odeint", "diffrax"]
    rows = [[m["n"], *(m.get(name) for name in names)] for m in measured]
    print(common.table(["n", *(f"{name} ms" for name in names)], rows, "Time per gradient (same run, round-robin)"))
    rows = [
        [
            m["n"],
            ratio(m, "fast", "JAX odeint"),
            ratio(m, "fast", "diffrax"),
            ratio(m, "default", "diffrax"),
            ratio(m, "fast", "default"),
            ratio(m, "fast", "hand backsolve"),
        ]
        for m in measured
    ]
    headers = ["n", "fast / JAX (target <= 1)", "fast / diffrax (target <= 2)", "default / diffrax", "fast / default"]
    print(common.table([*headers, "fast / hand backsolve"], rows, "Ratios (< 1: adjoint_sym's route is faster)"))
    rows = [[m["n"], *(m["errors"].get(name) for name in names)] for m in measured]
    print(common.table(["n", *names], rows, "Error against adjoint_sym at rtol=1e-11 (relative to max |gradient|)"))
    rows = [
        [
            m["n"],
            m["problem s"],
            m["fast derive s"],
            m["fast lower s"],
            m["fast first s"],
            m["default first s"],
            m.get("JAX odeint first s"),
            m.get("diffrax first s"),
        ]
        for m in measured
    ]
    headers = ["n", "first Problem() s", "fast: VJP s", "fast: tapes s", "fast first gradient s", "default first s"]
    print(
        common.table(
            [*headers, "JAX jit first s", "diffrax jit first s"],
            rows,
            "First gradient of a new system (numba's engine already loaded; VJP and tapes are wall time; "
            "the gradients exclude Problem())",
        )
    )


if __name__ == "__main__":
    main()
