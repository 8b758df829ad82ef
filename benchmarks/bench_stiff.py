"""Large stiff systems: the first stiff gradient of a 1-D Brusselator, by its size (issue 17).

The Brusselator by the method of lines (Hairer & Wanner, Solving ODEs II, sec. IV.1):
``u' = 1 + u^2 v - 4u + c (u_{i-1} - 2u_i + u_{i+1})``, ``v' = 3u - u^2 v + c (...)`` on
``N`` interior cells with Dirichlet values ``u = 1``, ``v = 3``, ``c = 0.02 (N + 1)^2``;
``h0`` from ``u = 1 + sin(2 pi x)``, ``v = 3``; ``t in [0, 1]``; ``L = u_{N/2}(1)``.  Its
Jacobian is banded (a few nonzeros per row), so everything symbolic must cost about
one derivative per nonzero: the ``n^2`` of a dense treatment made the 64-state system
take 33 s to its first BDF gradient and the 256-state one more than 900 s.

Printed per size: the time to build the problem (parse, validate), the first gradient
(derive the Jacobian and the VJP, compile, solve forward with BDF, adjoint backward) and
a second gradient of the same system (kernels cached), with their ratio.  Targets: the
256-state first gradient in seconds, the 1,024-state one in under a minute.

    python benchmarks/bench_stiff.py [--cells 32 128 512]
"""

from __future__ import annotations

import common  # isort: skip  (first: it pins BLAS to one thread before numpy loads)

import argparse
import time

import numpy as np

from adjoint_sym import FinalLoss, ODESystem, Problem, gradient


def brusselator(cells: int) -> Problem:
    """The 1-D Brusselator of the module docstring on ``cells`` interior points (2 * cells states)."""
    u = [f"u{i}" for i in range(cells)]
    v = [f"v{i}" for i in range(cells)]
    rhs_u, rhs_v = [], []
    for i in range(cells):
        ul, ur = (u[i - 1] if i > 0 else "1"), (u[i + 1] if i < cells - 1 else "1")
        vl, vr = (v[i - 1] if i > 0 else "3"), (v[i + 1] if i < cells - 1 else "3")
        rhs_u.append(f"1 + {u[i]}**2*{v[i]} - 4*{u[i]} + c*({ul} - 2*{u[i]} + {ur})")
        rhs_v.append(f"3*{u[i]} - {u[i]}**2*{v[i]} + c*({vl} - 2*{v[i]} + {vr})")
    system = ODESystem.from_strings(u + v, ["c"], "t", rhs_u + rhs_v, name=f"brusselator-{cells}")
    x = np.linspace(0.0, 1.0, cells + 2)[1:-1]
    h0 = np.concatenate([1.0 + np.sin(2 * np.pi * x), np.full(cells, 3.0)])
    return Problem(system, h0, {"c": 0.02 * (cells + 1) ** 2}, 0.0, 1.0, FinalLoss(f"u{cells // 2}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--solver", default="BDF")
    args = parser.parse_args()
    rows = []
    for cells in args.cells:
        common.forget_compiled()
        started = time.process_time()
        problem = brusselator(cells)
        built = time.process_time()
        gradient(problem, solver=args.solver, rtol=1e-6, atol=1e-9)
        first = time.process_time()
        gradient(problem, solver=args.solver, rtol=1e-6, atol=1e-9)
        second = time.process_time()
        rows.append(
            [
                f"{2 * cells}",
                f"{built - started:.2f}",
                f"{first - built:.2f}",
                f"{second - first:.2f}",
                f"{(first - built) / max(second - first, 1e-9):.1f}",
            ]
        )
    headers = ["states", "build", "first gradient", "second gradient", "first / second"]
    print(common.table(headers, rows, f"Brusselator, {args.solver}, rtol 1e-6, process CPU seconds"))
    print(common.machine())


if __name__ == "__main__":
    main()
