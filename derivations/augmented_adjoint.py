"""The augmented state and the augmented adjoint: claims C12 to C14 of the note.

Run as ``python derivations/augmented_adjoint.py [--out DIR] [--quick]``.

The note stacks ``[h, theta, t]`` with ``f_aug = [f, 0, 1]`` (C12), names the adjoint
blocks ``a = dL/dh``, ``a_theta = dL/dtheta``, ``a_t = dL/dt`` (C13) and gives their
dynamics ``d a_aug/dt = -[a f_h, a f_theta, a f_t]`` (C14).  Below: the augmented flow is
solved with the premise's rates; the plain adjoint of the augmented system is compared
with the three blocks symbolically; and the blocks are integrated from t1 back to t0
and read out against complex-step gradients, at t0 and at t1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _claims import Check, Claim, as_results, figure_saver, relative_error, script_main
from _common import AGREE, ATOL, RTOL, backward, corpus_checks, dLdh_at, forward_tight, problems, reference, terminal

from adjoint_sym import AugmentedSystem, ODESystem, gradient
from adjoint_sym.builders import neural_ode
from adjoint_sym.identities import augmented_adjoint_is_three_blocks
from adjoint_sym.numeric import integrate

#: A small non-autonomous scalar system for the entry-wise symbolic checks.
_TOY = ODESystem.from_strings(
    state=["x", "y"], params=["k", "w"], time="t", rhs=["-k*x + sin(w*t)*y", "x*y - w*y**2/2"]
)


def _pm(sign: int) -> str:
    return "+" if sign > 0 else "-"


def claim_augmented_state(theta_rate: int = 0, clock_rate: int = 1, quick: bool = False) -> tuple[Claim, dict]:
    """C12. ``[h, theta, t]`` with ``dtheta/dt = 0``, ``dt/dt = 1``, ``f_aug = [f, 0, 1]``.

    Parameters
    ----------
    theta_rate, clock_rate : number
        The rates of the parameter and clock blocks (premise: 0 and 1).
    """
    sysm = _TOY
    s, s0 = sp.symbols("s s0", real=True)
    # The augmented flow from (theta, tau = s0) at s0: theta(s) = theta + rate (s - s0), tau(s) = s0 + clock (s - s0).
    moved = {p: p + theta_rate * (s - s0) for p in sysm.flat_params} | {sysm.t: s0 + clock_rate * (s - s0)}
    original = sp.Matrix(sysm.explicit_rhs).xreplace({sysm.t: s})
    residual = sp.simplify(sp.Matrix(sysm.explicit_rhs).xreplace(moved) - original)
    proof = Check(
        "h-block of the augmented flow minus f(h, s, theta) (toy non-autonomous system, entry-wise)",
        residual == sp.zeros(sysm.n, 1),
        f"residual {list(residual)} with dtheta/dt = {theta_rate}, dt/dt = {clock_rate}",
    )
    lib = AugmentedSystem.of(neural_ode(2, time="linear"))
    f_aug = lib.rhs
    lib_ok = f_aug[0] == lib.system.rhs and all(sp.Matrix(b).is_zero_matrix for b in f_aug[1:-1]) and f_aug[-1] == 1
    proof_lib = Check(
        "adjoint_sym's AugmentedSystem of the tanh layer is [f, 0, 0, 0, 0, 1]",
        bool(lib_ok),
        f"blocks: f, {', '.join(str(sp.Matrix(b).shape) + ' zeros' for b in f_aug[1:-1])}, {f_aug[-1]}",
    )
    experiment = []
    data = {}
    for label, prob in problems(quick):
        f, n, p = prob.kernels.f.fn, prob.system.n, prob.system.n_params

        def rhs(tt, z, f=f, n=n, p=p):
            return np.concatenate([f(z[-1], z[:n], z[n : n + p]), np.full(p, float(theta_rate)), [float(clock_rate)]])

        z0 = np.concatenate([prob.h0, prob.theta, [prob.t0]])
        aug = integrate(rhs, (prob.t0, prob.t1), z0, solver="DOP853", rtol=RTOL, atol=ATOL, what="augmented solve")
        fwd = forward_tight(prob)
        e = relative_error(aug.y[:n, -1], fwd.y[:, -1])
        drift = float(np.max(np.abs(aug.y[n:, -1] - np.concatenate([prob.theta, [prob.t1]]))))
        experiment.append(
            Check(
                f"{label}: augmented solve vs the forward solve at t1",
                e < AGREE and drift < AGREE,
                f"h(t1) relative deviation {e:.1e}; theta and t at t1 off by {drift:.1e}",
            )
        )
        data = data or {"aug": aug, "problem": prob}
    claim = Claim(
        "C12",
        "augmented state [h, theta, t] with dtheta/dt = 0, dt/dt = 1, f_aug = [f(h(t), t, theta), 0, 1]",
        "d/dt [h, theta, t] = f_aug([h, theta, t]) = [f(h, t, theta), 0, 1] (the note's display drops the '='): "
        "theta stays constant, the clock state equals t, and the h-block is the original flow.",
        [proof, proof_lib],
        experiment,
    )
    return claim, data


def claim_augmented_meaning(a_t_terminal_sign: int = 1, quick: bool = False) -> tuple[Claim, dict]:
    """C13. ``a = dL/dh``, ``a_theta = dL/dtheta``, ``a_t = dL/dt``.

    Parameters
    ----------
    a_t_terminal_sign : {+1, -1}
        The terminal value ``a_t(t1) = sign * dL/dt1``.  Read literally at ``t = t1``, the
        note's ``a_t = dL/dt`` says ``+1``; Chen et al.'s Algorithm 1 starts from ``-dL/dt1``.
        ``a(t1) = dL/dh(t1)`` and ``a_theta(t1) = dL/dtheta`` with ``h(t1)`` held (0 here)
        are the other terminal values.
    """
    experiment, data = [], {}
    for label, prob in problems(quick):
        fwd = forward_tight(prob)
        term = terminal(prob, fwd)
        ref = reference(prob)
        back = backward(prob, fwd, term.dLdh1, term.dLdtheta_explicit, a_t_terminal_sign * term.dLdt1)
        _, a_theta0, a_t0 = back.at_t0()
        times = np.linspace(prob.t0, prob.t1, 3 if quick else 5)
        n = prob.system.n
        e_a = max(relative_error(back.path(tt)[:n], dLdh_at(prob, fwd, float(tt))) for tt in times[:-1])
        e_a = max(e_a, relative_error(term.dLdh1, dLdh_at(prob, fwd, prob.t1)))
        e_theta0 = relative_error(a_theta0, ref.dtheta)
        e_theta1 = relative_error(term.dLdtheta_explicit, ref.dtheta)
        e_t0 = relative_error(a_t0, ref.dt0)
        experiment += [
            Check(
                f"{label}: a(t) = dL/dh(t) at {len(times)} times in [t0, t1]",
                e_a < AGREE,
                f"max relative deviation {e_a:.1e} from complex-step dL/dh(t)",
            ),
            Check(f"{label}: a_theta(t0) = dL/dtheta", e_theta0 < AGREE, f"relative deviation {e_theta0:.1e}"),
            Check(
                f"{label}: a_t(t0) = dL/dt0, from a_t(t1) = {_pm(a_t_terminal_sign)}dL/dt1",
                e_t0 < AGREE,
                f"a_t(t0) = {a_t0:.6g}, complex-step dL/dt0 = {ref.dt0:.6g}",
            ),
            Check(
                f"{label}: a_theta = dL/dtheta at every t, not only at t0",
                e_theta1 < AGREE,
                f"a_theta(t1) is the loss's explicit dL/dtheta (here 0), the total dL/dtheta only at t0: "
                f"deviation {e_theta1:.1e} at t1",
                failure="conditional",
            ),
        ]
        data = data or {"problem": prob, "back": back, "ref": ref, "fwd": fwd, "sign": a_t_terminal_sign}
    # The note's reading at t1 as a derivation, decided by verify_derivation: a(t1) = dL/dh(t1) and
    # a_t(t1) = sign * dL/dt1 (dL/dt1 = dL/dh(t1) . f(h(t1), t1) for this loss without explicit t).
    dLdt1 = "2*x*(-k*x + y) + (-x - k*y + cos(t))"
    start = dLdt1 if a_t_terminal_sign > 0 else f"-({dLdt1})"
    proof_api = corpus_checks("note_C13_augmented_meaning.toml", {"terminal_time": start})
    claim = Claim(
        "C13",
        "augmented adjoint [a, a_theta, a_t] with a = dL/dh, a_theta = dL/dtheta, a_t = dL/dt",
        "a(t) = dL/dh(t) at every t. a_theta and a_t are the gradients only at t0: a_theta(t0) = dL/dtheta starting "
        "from a_theta(t1) = 0 (plus any explicit dL/dtheta), and a_t(t0) = dL/dt0 (h0 held fixed) starting from "
        "a_t(t1) = -dL/dt1, the opposite sign of the note's a_t = dL/dt read at t1 (Chen et al., Algorithm 1).",
        proof_api,
        experiment,
    )
    return claim, data


def _three_block_residual(sysm: ODESystem, dyn_sign: int) -> sp.Matrix:
    """Plain adjoint ``-J_aug^T a_aug`` of the augmented system minus ``dyn_sign * [a f_h, a f_theta, a f_t]``."""
    aug = AugmentedSystem.of(sysm).as_system()
    z = list(aug.state)
    rename = dict(zip([*sysm.flat_state, *sysm.flat_params, sysm.t], z))
    a_aug = sp.Matrix(sp.symbols(f"a0:{len(z)}", real=True))
    plain = -aug.jacobian_h.T * a_aug
    a = a_aug[: sysm.n, :]
    blocks = sp.Matrix.vstack(sysm.jacobian_h.T * a, sysm.jacobian_theta.T * a, sysm.derivative_t.T * a).xreplace(
        rename
    )
    return sp.simplify(plain - dyn_sign * blocks)


def claim_augmented_dynamics(dyn_sign: int = -1, quick: bool = False) -> tuple[Claim, dict]:
    """C14. ``d a_aug/dt = -[a f_h, a f_theta, a f_t]``, integrated from t1 back to t0.

    Parameters
    ----------
    dyn_sign : {-1, +1}
        The sign in front of the three blocks (the note: ``-1``).
    """
    res = _three_block_residual(_TOY, dyn_sign)
    proofs = [
        Check(
            f"plain adjoint of [h, theta, t] minus {_pm(dyn_sign)}[a f_h, a f_theta, a f_t] (toy system, entry-wise)",
            res.is_zero_matrix,
            f"residual {list(res)}",
        )
    ]
    # The three blocks as a derivation, decided by verify_derivation (a non-autonomous linear system).
    blocks = {
        "adjoint": ["k*a_x + a_y", "-a_x + k*a_y"],
        "param_integrand": ["a_x*x + a_y*y"],
        "adjoint_time": "a_y*sin(t)",
    }
    if dyn_sign == +1:
        blocks = {k: [f"-({e})" for e in v] if isinstance(v, list) else f"-({v})" for k, v in blocks.items()}
    proofs += corpus_checks("note_C14_augmented_dynamics.toml", blocks)
    if dyn_sign == -1 and not quick:  # the library's own identity on the tanh layer (matrix level, expanded)
        lib = augmented_adjoint_is_three_blocks(neural_ode(2))
        proofs.append(Check("adjoint_sym identity on the tanh layer, n = 2", bool(lib), repr(lib)))
    experiment, data = [], {}
    for label, prob in problems(quick):
        fwd = forward_tight(prob)
        term = terminal(prob, fwd)
        ref = reference(prob)
        back = backward(prob, fwd, term.dLdh1, term.dLdtheta_explicit, -term.dLdt1, sign=dyn_sign)
        a0, a_theta0, a_t0 = back.at_t0()
        got = np.concatenate([a0, a_theta0, [a_t0]])
        want = np.concatenate([ref.dh0, ref.dtheta, [ref.dt0]])
        e = relative_error(got, want)
        lib = gradient(prob, "backsolve", rtol=RTOL, atol=ATOL)
        e_lib = relative_error(np.concatenate([lib.dh0, lib.dtheta, [lib.dt0]]), want)
        experiment += [
            Check(
                f"{label}: [a, a_theta, a_t](t0) from Chen's terminal values vs complex step",
                e < AGREE,
                f"max relative deviation {e:.1e} over {len(got)} entries",
            ),
            Check(
                f"{label}: adjoint_sym's backsolve (Algorithm 1, one backward solve of [h, a, a_theta, a_t])",
                e_lib < AGREE,
                f"max relative deviation {e_lib:.1e}",
            ),
        ]
        data = data or {"problem": prob, "back": back, "ref": ref}
    claim = Claim(
        "C14",
        "d a_aug/dt = -[a df/dh, a df/dtheta, a df/dt]",
        "d/dt [a, a_theta, a_t] = -[a^T df/dh, a^T df/dtheta, a^T df/dt] is the plain adjoint of the augmented "
        "system; integrated from t1 back to t0 from [dL/dh(t1), 0, -dL/dt1] it yields [dL/dh0, dL/dtheta, dL/dt0].",
        proofs,
        experiment,
    )
    return claim, data


def _figure(save, c13: dict, c13_flipped: dict) -> list[str]:
    from matplotlib.figure import Figure  # pyplot-free: no display, no global backend

    prob, ref = c13["problem"], c13["ref"]
    ts = np.linspace(prob.t1, prob.t0, 200)
    fig = Figure(figsize=(14, 4.0))
    axes = fig.subplots(1, 3)
    a, a_theta, _ = c13["back"].blocks(ts)
    for i in range(a.shape[0]):
        axes[0].plot(ts, a[i], label=f"a[{i}](t)")
        axes[0].plot([prob.t0], [ref.dh0[i]], "ko", ms=4)
    for i in range(min(4, a_theta.shape[0])):
        axes[1].plot(ts, a_theta[i], label=f"a_theta[{i}](t)")
        axes[1].plot([prob.t0], [ref.dtheta[i]], "ko", ms=4)
    for d, style in ((c13, "-"), (c13_flipped, "--")):
        axes[2].plot(ts, d["back"].blocks(ts)[2], style, label=f"a_t(t), a_t(t1) = {d['sign']:+d} dL/dt1")
    axes[2].plot([prob.t0], [ref.dt0], "ko", label="complex-step dL/dt0")
    axes[0].set_title("a(t) (dots: complex-step dL/dh0)")
    axes[1].set_title("a_theta(t) (dots: dL/dtheta)")
    axes[2].set_title("a_t(t) from both terminal signs")
    for ax in axes:
        ax.set_xlabel("t")
        ax.legend(fontsize=7)
    return [save(fig, "augmented_adjoint.png")]


def run(out_dir: str | Path | None = None, quick: bool = False) -> dict[str, dict]:
    """Decide C12 to C14; write the figures into ``out_dir`` when given."""
    c12, _ = claim_augmented_state(quick=quick)
    c13, d13 = claim_augmented_meaning(quick=quick)
    c14, _ = claim_augmented_dynamics(quick=quick)
    save = figure_saver(out_dir)
    if save is not None:
        _, flipped = claim_augmented_meaning(a_t_terminal_sign=-d13["sign"], quick=True)
        figs = _figure(save, d13, flipped)
        c13 = Claim(**{**c13.__dict__, "figures": figs})
        c14 = Claim(**{**c14.__dict__, "figures": figs})
    return as_results([c12, c13, c14])


if __name__ == "__main__":
    raise SystemExit(script_main(run, __doc__))
