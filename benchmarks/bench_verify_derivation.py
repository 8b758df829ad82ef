"""Verdicts and times of ``verify_derivation`` on correct and deliberately wrong derivations (issue 15).

Run as ``python benchmarks/bench_verify_derivation.py``.  Each case is a problem and a
claimed derivation, with the verdict the mathematics says it must get and why (sign
flips, missing transposes, dropped terms, wrong terminal values, correct ones written in
a different but equal form, trigonometric and hyperbolic identities).  The table prints
each verdict, whether it is the right one, the named mistake and the time of the call
(process CPU time and wall time); the target is every verdict right, each under 2 s.
Nothing is asserted: the tests (``tests/test_verify_derivation.py``) check verdicts, this
script measures time.
"""

from __future__ import annotations

import time

import common  # noqa: F401 - one BLAS thread before numpy loads

from adjoint_sym import FinalLoss, ObservationLoss, ODESystem, Problem, verify_derivation

LV = ODESystem.from_strings(
    ["x", "y"], ["a", "b", "c", "d"], "t", ["a*x - b*x*y", "d*x*y - c*y"], name="Lotka-Volterra"
)
LV_PROB = Problem(LV, [1.0, 1.0], {"a": 1.5, "b": 1.0, "c": 3.0, "d": 1.0}, 0.0, 2.0, FinalLoss("x**2 + y**2"))
PENDULUM = ODESystem.from_strings(["q", "p"], ["g", "l"], "t", ["p", "-(g/l)*sin(q)"], name="pendulum")
PEND_PROB = Problem(PENDULUM, [1.0, 0.0], {"g": 9.81, "l": 2.0}, 0.0, 1.5, FinalLoss("q**2 + p"))
LAYER = ODESystem.from_strings(
    ["x", "y"],
    {"W": (2, 2), "b": ()},
    "t",
    ["tanh(W[0, 0]*x + W[0, 1]*y + b)", "tanh(W[1, 0]*x + W[1, 1]*y) + sin(t)"],
    name="tanh layer",
)
LAYER_PROB = Problem(LAYER, [0.5, -0.3], {"W": [[0.4, -1.2], [0.9, 0.3]], "b": 0.2}, 0.0, 1.0, FinalLoss("x*y + t"))
DECAY = ODESystem.from_strings(["x"], ["k"], "t", ["-k*x"], name="decay")
OBS_PROB = Problem(DECAY, [2.0], {"k": 0.7}, 0.0, 3.0, ObservationLoss([1.0, 2.0, 3.0], targets=[[1.0], [0.5], [0.2]]))

LV_ADJOINT = ["-a_x*(a - b*y) - a_y*d*y", "a_x*b*x - a_y*(d*x - c)"]
Z0 = "W[0, 0]*x + W[0, 1]*y + b"
Z1 = "W[1, 0]*x + W[1, 1]*y"
LAYER_ADJOINT = [
    f"-a_x*(1 - tanh({Z0})**2)*W[0, 0] - a_y*(1 - tanh({Z1})**2)*W[1, 0]",
    f"-a_x*(1 - tanh({Z0})**2)*W[0, 1] - a_y*(1 - tanh({Z1})**2)*W[1, 1]",
]

#: (label, problem, claim, expected holds, why)
CASES = [
    (
        "LV, every piece correct",
        LV_PROB,
        {
            "adjoint": LV_ADJOINT,
            "terminal": ["2*x", "2*y"],
            "param_integrand": ["-a_x*x", "a_x*x*y", "a_y*y", "-a_y*x*y"],
            "adjoint_time": "0",
            "terminal_time": "-(2*x*(a*x - b*x*y) + 2*y*(d*x*y - c*y))",
            "dL_dt0": "-(a_x*(a*x - b*x*y) + a_y*(d*x*y - c*y))",
            "dL_dt1": "a_x*(a*x - b*x*y) + a_y*(d*x*y - c*y)",
        },
        True,
        "Chen et al. eqs. 4-5 and Algorithm 1 on LV",
    ),
    (
        "LV, equal but rearranged",
        LV_PROB,
        {
            "adjoint": ["a_x*(b*y - a) - d*y*a_y", "b*x*a_x + (c - d*x)*a_y"],
        },
        True,
        "the same polynomial, other order and grouping",
    ),
    (
        "LV, flipped sign",
        LV_PROB,
        {"adjoint": ["a_x*(a - b*y) + a_y*d*y", "-a_x*b*x + a_y*(d*x - c)"]},
        False,
        "da/dt = +a^T f_h",
    ),
    (
        "LV, missing transpose",
        LV_PROB,
        {"adjoint": ["-(a - b*y)*a_x + b*x*a_y", "-d*y*a_x - (d*x - c)*a_y"]},
        False,
        "-J a for -J^T a",
    ),
    (
        "LV, dropped term",
        LV_PROB,
        {"adjoint": ["-a_x*(a - b*y)", "a_x*b*x - a_y*(d*x - c)"]},
        False,
        "-a_y d y left out",
    ),
    ("LV, terminal sign", LV_PROB, {"terminal": ["-2*x", "-2*y"]}, False, "a = -dL/dh"),
    ("LV, terminal factor", LV_PROB, {"terminal": ["x", "y"]}, False, "d(x^2)/dx taken as x"),
    ("LV, terminal missing", LV_PROB, {"terminal": ["0", "0"]}, False, "no terminal value"),
    (
        "LV, limits reversed",
        LV_PROB,
        {"param_integrand": ["-a_x*x", "a_x*x*y", "a_y*y", "-a_y*x*y"], "param_limits": ["t0", "t1"]},
        False,
        "eq. 5's integrand with t0..t1",
    ),
    (
        "LV, a_t started at +dL/dt1",
        LV_PROB,
        {"terminal_time": "2*x*(a*x - b*x*y) + 2*y*(d*x*y - c*y)"},
        False,
        "Algorithm 1 starts at -dL/dt1",
    ),
    ("LV, dL/dt0 sign", LV_PROB, {"dL_dt0": "a_x*(a*x - b*x*y) + a_y*(d*x*y - c*y)"}, False, "dL/dt0 = +a.f"),
    (
        "pendulum, cos as 1 - 2 sin^2(q/2)",
        PEND_PROB,
        {"adjoint": ["a_p*(g/l)*(1 - 2*sin(q/2)**2)", "-a_q"]},
        True,
        "a trigonometric identity",
    ),
    (
        "pendulum, cos as cos^2 - sin^2",
        PEND_PROB,
        {"adjoint": ["a_p*(g/l)*(cos(q)**2 - sin(q)**2)", "-a_q"]},
        False,
        "cos^2 - sin^2 is cos(2q), not cos(q)",
    ),
    (
        "pendulum, sin for cos",
        PEND_PROB,
        {"adjoint": ["a_p*(g/l)*sin(q)", "-a_q"]},
        False,
        "derivative of sin taken as sin",
    ),
    (
        "tanh layer, correct",
        LAYER_PROB,
        {
            "adjoint": LAYER_ADJOINT,
            "terminal": ["y", "x"],
            "adjoint_time": "-a_y*cos(t)",
            "dL_dt1": "y*tanh(" + Z0 + ") + x*(tanh(" + Z1 + ") + sin(t)) + 1",
        },
        True,
        "non-symmetric W, explicit t in f and L",
    ),
    (
        "tanh layer, sech^2 for 1 - tanh^2",
        LAYER_PROB,
        {
            "adjoint": [
                f"-a_x*W[0, 0]/cosh({Z0})**2 - a_y*W[1, 0]/cosh({Z1})**2",
                f"-a_x*W[0, 1]/cosh({Z0})**2 - a_y*W[1, 1]/cosh({Z1})**2",
            ]
        },
        True,
        "a hyperbolic identity",
    ),
    (
        "tanh layer, missing transpose",
        LAYER_PROB,
        {
            "adjoint": [
                f"-a_x*(1 - tanh({Z0})**2)*W[0, 0] - a_y*(1 - tanh({Z0})**2)*W[0, 1]",
                f"-a_x*(1 - tanh({Z1})**2)*W[1, 0] - a_y*(1 - tanh({Z1})**2)*W[1, 1]",
            ]
        },
        False,
        "W for W^T",
    ),
    (
        "tanh layer, dL/dt1 without dL/dt",
        LAYER_PROB,
        {"dL_dt1": "y*tanh(" + Z0 + ") + x*(tanh(" + Z1 + ") + sin(t))"},
        False,
        "the loss's explicit t dropped",
    ),
    (
        "observations, jumps correct",
        OBS_PROB,
        {"adjoint": ["k*a_x"], "jumps": ["2*(x - target_x)"]},
        True,
        "appendix B",
    ),
    (
        "observations, jumps missing",
        OBS_PROB,
        {"adjoint": ["k*a_x"], "terminal": ["2*(x - target_x)"]},
        False,
        "only the last observation enters a",
    ),
    ("observations, jump sign", OBS_PROB, {"jumps": ["-2*(x - target_x)"]}, False, "mixed lambda / -lambda"),
]


def main() -> None:
    rows, right, slowest = [], 0, 0.0
    for label, problem, claim, expected, why in CASES:
        cpu, wall = time.process_time(), time.perf_counter()
        verdict = verify_derivation(problem, claim)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        ok = verdict.holds is expected
        right += ok
        slowest = max(slowest, cpu)
        named = "; ".join(p.diagnosis for p in verdict.pieces if p.diagnosis) or "-"
        rows.append(
            f"| {label} | {why} | {_word(expected)} | {_word(verdict.holds)} | {'yes' if ok else '**NO**'} "
            f"| {named} | {cpu:.2f} | {wall:.2f} |"
        )
    print(f"verify_derivation on {len(CASES)} derivations: {right} verdicts right, slowest {slowest:.2f} s CPU\n")
    print("| derivation | what it is | must be | verdict | right | mistake named | CPU s | wall s |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


def _word(holds) -> str:
    return {True: "holds", False: "fails", None: "undecided"}[holds]


if __name__ == "__main__":
    main()
