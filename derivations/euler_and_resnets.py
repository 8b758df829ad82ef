"""Euler steps, gradient descent and residual networks: claims C1 to C5 of the note.

Run as ``python derivations/euler_and_resnets.py [--out DIR] [--quick]``.

Each ``claim_*`` function takes the note's premise as a parameter (the step-size
relation, the claimed rate of the loss, the difference quotient, the step of the
residual network), proves or refutes it with SymPy, runs a numeric experiment that
would expose it, and returns a :class:`~_claims.Claim` whose verdict is
computed from those checks.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import sympy as sp
from _claims import Check, Claim, as_results, figure_saver, leading_term, measured_order, script_main

from adjoint_sym import FinalLoss, ODESystem, Problem
from adjoint_sym.builders import neural_ode
from adjoint_sym.numeric import forward, integrate

#: Order tolerance: a fitted log-log slope over step halvings deviates from the
#: asymptotic order by the next term of the error series, a few hundredths here.
ORDER_SLACK = 0.15
#: "The error shrinks": over the step ranges used (at least a factor 2^5 = 32 between the
#: largest and smallest step) an order-1 method gains 32x; requiring 8x flags a method
#: that does not converge while leaving room for pre-asymptotic behaviour.
SHRINK = 8

eta, D, t = sp.symbols("eta Delta t", positive=True)

# -- C1: gradient descent and the gradient flow ------------------------------------------

#: A non-quadratic loss in two variables for the experiments (its gradient is derived by SymPy).
_Y = sp.symbols("y1 y2", real=True)
_LOSS_2D = (_Y[0] - 1) ** 2 / 2 + 3 * _Y[1] ** 2 / 2 + _Y[0] ** 4 / 4 + _Y[0] * _Y[1] / 2


def claim_gradient_descent(
    step_relation: Callable[[sp.Expr], sp.Expr] = lambda e: e,
    dLdt_claim: Callable[[sp.Expr], sp.Expr] = lambda grad: grad,
    quick: bool = False,
) -> tuple[Claim, dict]:
    """C1. ``y_{k+1} = y_k - eta grad L``; "as a scalar, grad L is just dL/dt".

    Parameters
    ----------
    step_relation : callable
        The Euler step ``D`` as a function of the learning rate (the premise: ``D = eta``).
    dLdt_claim : callable
        The claimed ``dL/dt`` along the gradient flow, as a function of the scalar
        gradient ``L'(y)`` (the note: ``L'(y)`` itself).
    """
    # Symbolic 1: a gradient-descent step is the explicit Euler step of dy/dt = -grad L.
    L = sp.Function("L")
    y = sp.symbols("y1:3", real=True)
    grad = sp.Matrix([sp.diff(L(*y), v) for v in y])
    gd = sp.Matrix(y) - eta * grad
    euler = sp.Matrix(y) + step_relation(eta) * (-grad)
    residual = sp.simplify(gd - euler)
    proof_step = Check(
        "GD step minus Euler step of dy/dt = -grad L (generic L, two variables)",
        residual == sp.zeros(2, 1),
        f"residual {list(residual)} with D = {step_relation(eta)}",
    )
    # Symbolic 2: along the flow, dL/dt = grad L . dy/dt = -|grad L|^2 (chain rule).
    yt = sp.Function("y")(t)
    Lfun = sp.Function("L")
    grad_1d = sp.Derivative(Lfun(yt), yt)  # L'(y): the scalar gradient
    dLdt = sp.diff(Lfun(yt), t).subs(sp.Derivative(yt, t), -grad_1d)  # chain rule, then the flow
    rate_residual = sp.simplify(dLdt - dLdt_claim(grad_1d))
    proof_rate = Check(
        "dL/dt along dy/dt = -L'(y) minus the claimed rate",
        rate_residual == 0,
        f"chain rule gives dL/dt = {_show(sp.simplify(dLdt))}; residual {_show(rate_residual)}",
    )

    # Numeric 1: gradient descent (hand-coded gradient) against Euler on the SymPy-derived flow.
    flow_sys = ODESystem(list(_Y), [], t, [-sp.diff(_LOSS_2D, v) for v in _Y])
    f = Problem(flow_sys, [2.0, -1.0], {}, 0.0, 1.0, FinalLoss("y1")).kernels.f.fn

    def grad_np(v):
        return np.array([v[0] - 1 + v[0] ** 3 + v[1] / 2, 3 * v[1] + v[0] / 2])

    rate = 0.05
    step = float(step_relation(sp.Float(rate)))
    a = b = np.array([2.0, -1.0])
    for _ in range(20 if quick else 200):
        a = a - rate * grad_np(a)
        b = b + step * f(0.0, b, np.zeros(0))
    # Same arithmetic in a different order: agreement to a few ulps per step.
    dev = float(np.max(np.abs(a - b)) / np.max(np.abs(a)))
    numeric_step = Check(
        "GD iterates vs Euler iterates of the flow (eta = 0.05)",
        dev < 1e-12,
        f"max relative deviation {dev:.2e} after {20 if quick else 200} steps",
    )

    # Numeric 2: along a computed flow of L(y) = (y-1)^2/2 + y^4/4, dL/dt by differences vs the claim.
    ys = sp.Symbol("y", real=True)
    L1 = (ys - 1) ** 2 / 2 + ys**4 / 4
    L1p = sp.diff(L1, ys)
    l_np, lp_np = sp.lambdify(ys, L1), sp.lambdify(ys, L1p)
    claim_np = sp.lambdify(ys, dLdt_claim(L1p))
    sol = integrate(lambda _t, v: -lp_np(v), (0.0, 2.0), np.array([2.0]), solver="DOP853", rtol=1e-12, atol=1e-14)
    ts = np.linspace(0.1, 1.9, 7 if quick else 19)
    dt = 1e-4
    # Central difference of L(y(t)): truncation ~ dt^2 |L'''| ~ 1e-8, far below the O(1) gap a wrong rate makes.
    measured = (l_np(sol.sol(ts + dt)[0]) - l_np(sol.sol(ts - dt)[0])) / (2 * dt)
    claimed = claim_np(sol.sol(ts)[0])
    gap = float(np.max(np.abs(measured - claimed)) / np.max(np.abs(measured)))
    numeric_rate = Check(
        "dL/dt measured along the flow vs the claimed rate",
        gap < 1e-5,
        f"max relative gap {gap:.2e} over {len(ts)} times (measured dL/dt = {measured[0]:.4g} at t = 0.1, "
        f"claimed {claimed[0]:.4g})",
    )
    claim = Claim(
        "C1",
        "y_{t+1} = y_t - eta grad L is the discrete form; as a scalar, grad L is just dL/dt",
        "A gradient-descent step y - eta grad L(y) is exactly one explicit Euler step, with step D = eta, of the "
        "gradient flow dy/dt = -grad L(y). grad L is the derivative with respect to y, not t: along the flow "
        "dL/dt = grad L . dy/dt = -|grad L|^2 (scalar: dL/dt = -L'(y)^2), never positive.",
        [proof_step, proof_rate],
        [numeric_step, numeric_rate],
    )
    return claim, {"flow_t": ts, "dLdt": measured, "claimed": claimed}


# -- C2 / C3: difference quotients and the Euler step --------------------------------------


def _show(expr: sp.Expr) -> str:
    """``Derivative(y(t), (t, k))`` printed as ``y^(k)(t)``."""
    return sp.sstr(expr.replace(lambda e: isinstance(e, sp.Derivative), lambda e: sp.Symbol(_prime(e))))


def _prime(e: sp.Derivative) -> str:
    k = sum(c for _, c in e.variable_count)
    return f"{e.expr.func}{chr(39) * k}({', '.join(map(str, e.expr.args))})" if k < 4 else f"{e.expr.func}^({k})"


def _smooth(tt):
    return np.sin(tt) + np.exp(tt / 2)


def _smooth_d1(tt):
    return np.cos(tt) + np.exp(tt / 2) / 2


def claim_forward_difference(
    quotient: Callable[[Callable, sp.Expr, sp.Expr], sp.Expr] = lambda y, tt, d: (y(tt + d) - y(tt)) / d,
    reading: str = "discrete",
    quick: bool = False,
) -> tuple[Claim, dict]:
    """C2. The quotient ``(y(t+D) - y(t))/D`` is the derivative of the discrete picture, and
    ``dy/dt = lim_{D->0}`` of it is the continuous one.

    Parameters
    ----------
    quotient : callable
        ``(y, t, D) -> expression`` the note uses for the derivative (premise: the forward difference).
    reading : {"discrete", "equal at finite D"}
        What the note claims of the quotient at a finite step: that it is the discrete
        picture's derivative, a difference equation (the note's words), or that it *equals*
        ``dy/dt`` (a stronger claim the note does not make).
    """
    if reading not in ("discrete", "equal at finite D"):
        raise ValueError(f"reading must be 'discrete' or 'equal at finite D', got {reading!r}")
    y = sp.Function("y")
    error = quotient(y, t, D) - sp.diff(y(t), t)
    order, coefficient = leading_term(error, D)
    consistent = order is None or order >= 1
    proof_limit = Check(
        "limit D -> 0 of the quotient minus dy/dt",
        consistent,
        f"leading error term {_show(coefficient)} * D^{order}" if order is not None else "error vanishes to O(D^4)",
    )
    if reading == "discrete":  # the note calls the quotient the discrete version: it must approximate dy/dt
        proof_exact = Check(
            "at finite D the quotient is the difference equation's derivative: dy/dt plus an error of order >= 1",
            consistent,
            f"truncation error {_show(coefficient)} * D^{order} + ...: an approximation of order {order}, "
            "as a difference equation is",
        )
    else:
        proof_exact = Check(
            "quotient equals dy/dt at finite D",
            order is None,
            f"truncation error {_show(coefficient)} * D^{order} + ...: an approximation of order {order}",
            failure="conditional",
        )
    ks = np.arange(3, 10 if quick else 16)
    steps = 2.0**-ks
    t0 = 1.0  # y''(1) = -0.43: away from the inflection near t = 0.3, where the D^1 term vanishes
    yn = sp.lambdify(t, sp.sin(t) + sp.exp(t / 2))
    dsym = sp.Symbol("d")
    q = sp.lambdify((t, dsym), quotient(sp.Lambda(t, sp.sin(t) + sp.exp(t / 2)), t, dsym))
    errors = np.abs(np.array([q(t0, h) for h in steps]) - _smooth_d1(t0))
    p = measured_order(steps, errors)
    del yn
    numeric = Check(
        "measured order of the error (y = sin t + exp(t/2), t = 1)",
        errors[-1] < errors[0] / SHRINK and (order is None or abs(p - order) < ORDER_SLACK),
        f"errors {errors[0]:.2e} -> {errors[-1]:.2e} for D = 2^-{ks[0]} .. 2^-{ks[-1]}; measured order {p:.3f}",
    )
    claim = Claim(
        "C2",
        "discrete: dy/dt = (y(t+D) - y(t))/D (a difference equation); continuous: dy/dt = lim_{D->0} of it "
        "(a differential equation)",
        f"(y(t+D) - y(t))/D = dy/dt + {_show(coefficient)}*D^{order} + O(D^{(order or 0) + 1}): the difference "
        f"equation's derivative approximates dy/dt to order {order}, and its limit D -> 0 is dy/dt (the definition "
        "of the derivative). Both of the note's statements hold as written.",
        [proof_limit, proof_exact],
        [numeric],
    )
    return claim, {"fd_steps": steps, "fd_errors": errors}


def _linear_test_exact(tt, y0=1.0):
    """``y' = -2 y + t``: ``y = t/2 - 1/4 + (y0 + 1/4) e^{-2t}``."""
    return tt / 2 - 0.25 + (y0 + 0.25) * np.exp(-2 * tt)


def claim_euler_step(
    coefficient: Callable[[sp.Expr], sp.Expr] = lambda d: d,
    quick: bool = False,
) -> tuple[Claim, dict]:
    """C3. ``y(t+D) = y(t) + D dy/dt``.

    Parameters
    ----------
    coefficient : callable
        The factor multiplying ``dy/dt`` (premise: ``D``).
    """
    y = sp.Function("y")
    local = y(t + D) - (y(t) + coefficient(D) * sp.diff(y(t), t))
    order, lead = leading_term(local, D)
    consistent = order is None or order >= 2
    expect_global = None if order is None else order - 1
    proof_consistent = Check(
        "local error is o(D) (consistency)",
        consistent,
        f"y(t+D) - y(t) - c(D) y'(t) = {_show(lead)} * D^{order} + ..."
        if order is not None
        else "local error vanishes to O(D^4)",
    )
    proof_exact = Check(
        "step is exact at finite D",
        order is None,
        f"local truncation error {_show(lead)} * D^{order}: order {order} locally, {expect_global} globally",
        failure="conditional",
    )
    c = sp.lambdify(D, coefficient(D))
    ks = np.arange(3, 9 if quick else 13)
    steps = 2.0**-ks
    t_start, y_start = 0.2, _linear_test_exact(0.2)
    local_err = np.array(
        [abs(y_start + c(h) * (-2 * y_start + t_start) - _linear_test_exact(t_start + h)) for h in steps]
    )
    global_err = []
    for h in steps:
        n = round(1.0 / h)
        v, tt = 1.0, 0.0
        for _ in range(n):
            v, tt = v + c(h) * (-2 * v + tt), tt + h
        global_err.append(abs(v - _linear_test_exact(1.0)))
    global_err = np.array(global_err)
    p_local, p_global = measured_order(steps, local_err), measured_order(steps, global_err)
    expect_local = order if order is not None else None
    numeric_local = Check(
        "measured local order (y' = -2y + t, one step from t = 0.2)",
        local_err[-1] < local_err[0] / SHRINK and (expect_local is None or abs(p_local - expect_local) < ORDER_SLACK),
        f"local error {local_err[0]:.2e} -> {local_err[-1]:.2e}; measured order {p_local:.3f}",
    )
    numeric_global = Check(
        "measured global order at t = 1 (N = 1/D steps)",
        global_err[-1] < global_err[0] / SHRINK
        and (expect_global is None or abs(p_global - expect_global) < ORDER_SLACK),
        f"global error {global_err[0]:.2e} -> {global_err[-1]:.2e}; measured order {p_global:.3f}",
    )
    claim = Claim(
        "C3",
        "y(t + D) = y(t) + D dy/dt",
        f"y(t+D) = y(t) + D y'(t) + {_show(lead)}*D^{order} + O(D^{(order or 0) + 1}): one explicit Euler step, local "
        f"error of order {order}, global error of order {None if order is None else order - 1} over a fixed span.",
        [proof_consistent, proof_exact],
        [numeric_local, numeric_global],
    )
    return claim, {"euler_steps": steps, "euler_local": local_err, "euler_global": global_err}


# -- C4 / C5: residual networks --------------------------------------------------------------


def _neural_params(n: int, rng: np.random.Generator, linear_time: bool) -> dict:
    params = {"W": rng.normal(size=(n, n)), "b": rng.normal(size=(n, 1))}
    if linear_time:
        params |= {"V": 0.5 * rng.normal(size=(n, n)), "c": 0.5 * rng.normal(size=(n, 1))}
    return params


def claim_residual_block(step: sp.Expr | int = 1, quick: bool = False) -> tuple[Claim, dict]:
    """C4. ``h_{t+1} = f(h_t, theta)`` (feed-forward), ``h_{t+1} = h_t + f(h_t, theta)`` (residual).

    Parameters
    ----------
    step : sympy expression
        The Euler step identified with one residual block (premise: ``D = 1``).
    """
    n = 2
    system = neural_ode(n)
    f = sp.Matrix(system.explicit_rhs)
    h = sp.Matrix(system.flat_state)
    step = sp.sympify(step)  # a number or SymPy expression supplied by the caller, never user text
    euler = h + step * f
    resnet = h + f
    feedforward = f
    res_residual = sp.simplify(euler - resnet)
    ff_residual = sp.simplify(h + f - feedforward)
    proof = Check(
        "residual block minus Euler step of dh/dt = tanh(W h + b)",
        res_residual == sp.zeros(n, 1),
        f"residual {[str(e) for e in res_residual]} with D = {step}",
    )
    proof_ff = Check(
        "feed-forward layer is not an Euler step of dh/dt = f: the Euler step adds the skip term h",
        ff_residual == h,
        "Euler(D=1) - feed-forward = h: a plain layer is an Euler step of dh/dt = f(h) - h instead",
    )
    rng = np.random.default_rng(4)
    devs = []
    for _ in range(3 if quick else 20):
        params = _neural_params(n, rng, False)
        prob = Problem(system, rng.normal(size=n), params, 0.0, 1.0, FinalLoss("h[0]"))
        h0 = prob.h0
        block = h0 + np.tanh(params["W"] @ h0 + params["b"][:, 0])  # the residual block, in plain numpy
        step_value = float(step)
        euler_np = h0 + step_value * prob.kernels.f.fn(0.0, h0, prob.theta)  # Euler on the compiled ODE
        devs.append(float(np.max(np.abs(block - euler_np))))
    numeric = Check(
        "residual block vs one Euler step of the compiled ODE (random W, b)",
        max(devs) < 1e-13,  # identical arithmetic up to rounding of tanh
        f"max deviation {max(devs):.1e} over {len(devs)} random layers",
    )
    claim = Claim(
        "C4",
        "feed-forward h_{t+1} = f(h_t, theta); residual h_{t+1} = h_t + f(h_t, theta)",
        "A residual block h + f(h, theta) is exactly one explicit Euler step with D = 1 of dh/dt = f(h, theta); "
        "a plain feed-forward layer f(h, theta) is not (it is an Euler step of dh/dt = f(h, theta) - h).",
        [proof, proof_ff],
        [numeric],
    )
    return claim, {}


def claim_resnet_limit(
    step: Callable[[float, int], float] = lambda span, depth: span / depth,
    quick: bool = False,
) -> tuple[Claim, dict]:
    """C5. ``y(t+D) = y(t) + D f(t, h(t), theta_t)``: a deep residual network tends to the ODE flow.

    Parameters
    ----------
    step : callable
        ``(span, depth) -> D``: the step of each residual block (premise: ``D = span / depth``).
    """
    # Symbolic: local truncation error of Euler on dh/dt = f(h, t): D^2/2 (f_h f + f_t).
    hf = sp.Function("h")
    fg = sp.Function("f")
    h_t = hf(t)
    second = sp.diff(fg(h_t, t), t).subs(sp.Derivative(h_t, t), fg(h_t, t))
    flow = h_t + D * fg(h_t, t) + D**2 / 2 * second  # Taylor of the flow to second order
    lte = sp.expand(flow - (h_t + D * fg(h_t, t)))
    order, lead = leading_term(lte, D, order=3)
    f_h, f_t, f_ = sp.symbols("f_h f_t f")
    lead = lead.replace(lambda e: isinstance(e, sp.Subs), lambda e: f_t).subs(
        {sp.Derivative(fg(h_t, t), h_t): f_h, fg(h_t, t): f_}
    )
    proof = Check(
        "Euler step equals the flow at finite D",
        order is None,
        f"local truncation error ({lead}) * D^{order}, i.e. (D^2/2) h''(t)",
        failure="conditional",
    )
    system = neural_ode(2, time="linear")
    rng = np.random.default_rng(7)
    params = _neural_params(2, rng, True)
    span = 1.0
    prob = Problem(system, [0.5, -0.3], params, 0.0, span, FinalLoss("h[0]"))
    exact = forward(prob, rtol=1e-12, atol=1e-14).y[:, -1]
    f = prob.kernels.f.fn
    depths = 2 ** np.arange(3, 9 if quick else 12)
    errors, steps = [], []
    for depth in depths:
        d = step(span, int(depth))
        hk = prob.h0.copy()
        for k in range(int(depth)):
            hk = hk + d * f(k * d, hk, prob.theta)  # residual block k with weights W(t_k), b(t_k)
        errors.append(float(np.max(np.abs(hk - exact))))
        steps.append(span / depth)
    errors = np.array(errors)
    p = measured_order(steps, errors)
    converges = Check(
        "depth-N residual network vs the ODE flow (tanh layer, W(t) = W + tV, b(t) = b + tc)",
        errors[-1] < errors[0] / SHRINK,
        f"error {errors[0]:.2e} at depth {depths[0]} -> {errors[-1]:.2e} at depth {depths[-1]}",
    )
    measured = Check(
        "measured order of convergence in D = T/N",
        abs(p - 1) < ORDER_SLACK,
        f"measured order {p:.3f} (Euler: 1)",
    )
    claim = Claim(
        "C5",
        "dy/dt = f(h_t, theta), then y(t+D) = y(t) + D f(t, h(t), theta_t)",
        "With h (not y) as the state, h(t+D) = h(t) + D f(h(t), t, theta) + O(D^2) is one Euler step of "
        "dh/dt = f(h, t, theta); a residual network of depth N with step D = T/N (layer k using theta(t_k)) "
        f"converges to the ODE flow h(T) with error O(D) (measured order {p:.2f}); at finite depth it is "
        "only an approximation.",
        [proof],
        [converges, measured],
    )
    return claim, {"resnet_steps": np.array(steps), "resnet_errors": errors}


def _figures(save, data: dict) -> dict[str, list[str]]:
    from matplotlib.figure import Figure  # pyplot-free: no display, no global backend

    out: dict[str, list[str]] = {}
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    series = [
        ("fd_steps", "fd_errors", "C2 forward difference"),
        ("euler_steps", "euler_local", "C3 Euler, local"),
        ("euler_steps", "euler_global", "C3 Euler, global"),
        ("resnet_steps", "resnet_errors", "C5 ResNet vs ODE flow"),
    ]
    for xs, ys, label in series:
        if xs in data:
            p = measured_order(data[xs], data[ys])
            ax.loglog(data[xs], data[ys], "o-", label=f"{label} (order {p:.2f})")
    ax.set_xlabel("step D")
    ax.set_ylabel("error")
    ax.set_title("Convergence orders (C2, C3, C5)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    name = save(fig, "euler_convergence.png")
    for cid in ("C2", "C3", "C5"):
        out[cid] = [name]
    if "flow_t" in data:
        fig = Figure(figsize=(6.4, 4.0))
        ax = fig.subplots()
        ax.plot(data["flow_t"], data["dLdt"], "o-", label="dL/dt measured along the flow")
        ax.plot(data["flow_t"], data["claimed"], "s--", label="claimed rate")
        ax.set_xlabel("t")
        ax.set_title("C1: rate of the loss along dy/dt = -L'(y)")
        ax.legend()
        out["C1"] = [save(fig, "gradient_flow_rate.png")]
    return out


def run(out_dir: str | Path | None = None, quick: bool = False) -> dict[str, dict]:
    """Decide C1 to C5; write the figures into ``out_dir`` when given."""
    data: dict = {}
    claims = []
    for fn in (claim_gradient_descent, claim_forward_difference, claim_euler_step, claim_residual_block):
        claim, d = fn(quick=quick)
        claims.append(claim)
        data |= d
    claim, d = claim_resnet_limit(quick=quick)
    claims.append(claim)
    data |= d
    save = figure_saver(out_dir)
    if save is not None:
        figs = _figures(save, data)
        claims = [Claim(**{**c.__dict__, "figures": figs.get(c.id, [])}) for c in claims]
    return as_results(claims)


if __name__ == "__main__":
    raise SystemExit(script_main(run, __doc__))
