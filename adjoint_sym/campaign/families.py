"""Families of campaign problems: each covers one hard regime of the adjoint and its checks.

A family is a function ``Sampler -> spec``: it picks one of a few templates (a system
whose coefficients are parameters, so that every problem of a template shares one
compiled system per worker) and draws the values, the span and the loss.  A spec is a
JSON-ready dict (see :mod:`adjoint_sym.campaign.problems`): expression templates are
exactly the spec files of ``adjoint-sym check``; the neural family names a builder.

================  ==================================================================
family            what it stresses
================  ==================================================================
``equilibrium``   starts at an equilibrium, at zero or on an invariant zero: constant
                  trajectories, exact zeros in the gradient, error estimates that vanish
``long_span``     spans of 3 to 10 time units over oscillating and limit-cycle systems
``growing``       growing modes (``e^2`` to ``e^8``): conditioning ``kappa`` far above 1
``stiff``         stiffness ``|lambda| * span`` of 100 to 10^5, with LSODA, BDF or Radau
``neural``        small matrix-level tanh networks (one layer, or two with 2-4 hidden)
``observation``   observation losses with 1 to 4 times (squared errors or an expression)
``backward``      ``t1 < t0``: integration backward in time, final or observation loss
``integral``      running costs ``int_{t0}^{t1} g dt`` (alone, or plus a final or an
                  observation loss) from an equilibrium, over long spans, on growing
                  modes, backward, and on decoupled systems whose gradient has exact zeros
================  ==================================================================

A loss with a running cost is written as the spec files write it: one table
``{"kind": "integral", "expr": g}``, or a list of tables that add up (``[{"kind":
"final", ...}, {"kind": "integral", ...}]``, a :class:`~adjoint_sym.numeric.loss.SumLoss`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .sampler import Sampler

#: Coefficients of loss terms: readable and exact in binary.
_COEFFICIENTS = (-1.0, -0.5, 0.5, 1.0, 2.0)
#: The solver settings of the checker's default (:func:`adjoint_sym.verify.check`).
_EXPLICIT = {"method": "DOP853", "rtol": 1e-8, "atol": 1e-10}
#: Stiff solvers, weighted by cost: Radau's finite-difference reference is ~10x BDF's.
_STIFF_SOLVERS, _STIFF_WEIGHTS = ("LSODA", "BDF", "Radau"), (0.6, 0.3, 0.1)


# -- pieces -----------------------------------------------------------------------------------
def expression_spec(name, state, rhs, params, h0, t0, t1, loss, solver=None) -> dict:
    """A spec in the format of ``adjoint-sym`` spec files (see :mod:`adjoint_sym.cli.spec`)."""
    return {
        "name": name,
        "state": list(state),
        "time": "t",
        "rhs": list(rhs),
        "params": dict(params),
        "h0": [float(v) for v in h0],
        "t0": float(t0),
        "t1": float(t1),
        "loss": loss,
        "solver": dict(solver or _EXPLICIT),
    }


def final_loss(s: Sampler, names: Sequence[str], time_term: bool = True) -> dict:
    """``sum_i c_i x_i + d_i x_i^2`` (at least one term), sometimes ``+ t*x_0``."""
    terms = []
    for name in names:
        c, d = s.choice((0.0, *_COEFFICIENTS)), s.choice((0.0, *_COEFFICIENTS))
        if c:
            terms.append(f"{c:g}*{name}")
        if d:
            terms.append(f"{d:g}*{name}**2")
    if time_term and s.coin(0.25):  # an explicit dL/dt1
        terms.append(f"t*{names[0]}")
    expr = " + ".join(terms) if terms else names[0]
    return {"kind": "final", "expr": expr.replace("+ -", "- ")}


def observation_loss(s: Sampler, names: Sequence[str], t0: float, t1: float, max_times: int = 4) -> dict:
    """1 to ``max_times`` times strictly after ``t0`` on a grid of twentieths, the last ``t1``;
    squared errors to targets, or (one in three) an expression read at every time."""
    count = s.integer(1, max_times)
    grid = sorted({s.integer(1, 19) for _ in range(count - 1)})
    times = [round(t0 + (t1 - t0) * k / 20, 6) for k in grid] + [float(t1)]
    if s.coin(1 / 3):
        return {"kind": "observations", "times": times, "expr": final_loss(s, names, time_term=False)["expr"]}
    return {"kind": "observations", "times": times, "targets": [s.vector(len(names), -1.0, 1.0, 2) for _ in times]}


def any_loss(s: Sampler, names: Sequence[str], t0: float, t1: float) -> dict:
    return observation_loss(s, names, t0, t1) if s.coin(0.3) else final_loss(s, names)


def _lotka_volterra(s: Sampler) -> dict:
    return {"a": s.uniform(0.5, 1.5), "b": s.uniform(0.5, 1.5), "c": s.uniform(0.5, 1.5), "d": s.uniform(0.5, 1.5)}


_LV = (["x", "y"], ["a*x - b*x*y", "d*x*y - c*y"])
_OSCILLATOR = (["x", "y"], ["y", "-k*x - c*y"])
_LOGISTIC = (["x"], ["r*x*(1 - x/K)"])


# -- families ----------------------------------------------------------------------------------
def equilibrium(s: Sampler) -> dict:
    """Start at an equilibrium (at rest, often at zero) or with a component at an invariant zero
    (prey extinct): what does not move has exact zeros in its sensitivities."""
    t0 = s.choice((0.0, 0.5, 1.0))
    t1 = t0 + s.uniform(0.5, 3.0, 2)
    template = s.choice(("logistic", "lotka-volterra", "oscillator"))
    if template == "logistic":
        params = {"r": s.uniform(0.5, 2.0, 2), "K": s.choice((0.5, 1.0, 1.5, 2.0))}
        h0 = [s.choice((0.0, params["K"]))]
        state, rhs = _LOGISTIC
    elif template == "lotka-volterra":
        # c/d and a/b are exact in binary when b and d are powers of two: the fixed point is exact
        params = {"a": s.choice((0.5, 1.0, 1.5)), "b": s.choice((0.5, 1.0, 2.0))}
        params |= {"c": s.choice((0.5, 1.0, 1.5)), "d": s.choice((0.5, 1.0, 2.0))}
        fixed = [params["c"] / params["d"], params["a"] / params["b"]]
        h0 = fixed if s.coin(0.5) else [0.0, s.uniform(0.5, 1.5)]  # or prey extinct: x stays 0
        state, rhs = _LV
    else:
        params = {"k": s.uniform(0.5, 4.0, 2), "c": s.uniform(0.1, 1.0, 2)}
        h0, (state, rhs) = [0.0, 0.0], _OSCILLATOR
    return expression_spec(f"equilibrium/{template}", state, rhs, params, h0, t0, t1, final_loss(s, state))


def long_span(s: Sampler) -> dict:
    """3 to 10 time units of oscillation, limit cycles and forcing."""
    t0 = s.choice((0.0, 1.0))
    t1 = t0 + s.uniform(3.0, 10.0, 2)
    template = s.choice(("oscillator", "forced-oscillator", "van-der-pol", "lotka-volterra", "pendulum"))
    if template == "oscillator":
        state, rhs = _OSCILLATOR
        params = {"k": s.uniform(0.5, 4.0, 2), "c": s.uniform(0.05, 0.5, 2)}
        h0 = s.vector(2, -1.0, 1.0, 2)
    elif template == "forced-oscillator":  # non-autonomous: dL/dt0 and dL/dt1 see f_t
        state, rhs = ["x", "y"], ["y", "-k*x - c*y + F*cos(w*t)"]
        params = {"k": s.uniform(0.5, 4.0, 2), "c": s.uniform(0.1, 0.5, 2)}
        params |= {"F": s.uniform(0.2, 1.0, 2), "w": s.uniform(0.5, 2.0, 2)}
        h0 = s.vector(2, -1.0, 1.0, 2)
    elif template == "van-der-pol":
        state, rhs = ["x", "y"], ["y", "mu*(1 - x**2)*y - x"]
        params, h0 = {"mu": s.uniform(0.2, 1.0, 2)}, s.vector(2, -1.0, 1.0, 2)
    elif template == "lotka-volterra":
        (state, rhs), params, h0 = _LV, _lotka_volterra(s), s.vector(2, 0.5, 1.5, 2)
    else:
        state, rhs = ["x", "y"], ["y", "-g*sin(x) - c*y"]
        params, h0 = {"g": s.uniform(0.5, 2.0, 2), "c": s.uniform(0.0, 0.3, 2)}, [s.uniform(-1.5, 1.5, 2), 0.0]
    return expression_spec(f"long_span/{template}", state, rhs, params, h0, t0, t1, final_loss(s, state))


def growing(s: Sampler) -> dict:
    """Growing modes: the flow amplifies perturbations by ``e^2`` to ``e^8``."""
    t0 = s.choice((0.0, 0.5))
    template = s.choice(("exponential", "saddle", "unstable-spiral"))
    if template == "exponential":
        state, rhs = ["x"], ["a*x"]
        params = {"a": s.uniform(0.5, 2.0, 2)}
        h0, span = [s.uniform(0.1, 1.0, 2)], s.uniform(1.0, min(6.0, 8.0 / params["a"]), 2)  # a * span <= 8
    elif template == "saddle":  # one growing and one decaying mode, coupled
        state, rhs = ["x", "y"], ["l*x + b*y", "-m*y"]
        params = {"l": s.uniform(0.3, 1.5, 2), "b": s.uniform(-1.0, 1.0, 2), "m": s.uniform(0.2, 1.0, 2)}
        h0, span = s.vector(2, -1.0, 1.0, 2), s.uniform(1.0, 4.0, 2)
    else:
        state, rhs = ["x", "y"], ["s*x - w*y", "w*x + s*y"]
        params = {"s": s.uniform(0.2, 0.8, 2), "w": s.uniform(1.0, 3.0, 2)}
        h0, span = s.vector(2, -1.0, 1.0, 2), s.uniform(1.0, 5.0, 2)
    t1 = t0 + span
    return expression_spec(f"growing/{template}", state, rhs, params, h0, t0, t1, final_loss(s, state))


def stiff(s: Sampler) -> dict:
    """Stiffness ``|lambda| * span`` from 100 to 10^5, solved by LSODA, BDF or Radau."""
    solver = {"method": s.choice(_STIFF_SOLVERS, _STIFF_WEIGHTS), "rtol": 1e-8, "atol": 1e-10}
    template = s.choice(("prothero-robinson", "stiff-linear", "robertson"))
    t0 = 0.0
    if template == "prothero-robinson":  # x -> sin(t) at rate k: non-autonomous and stiff
        state, rhs = ["x"], ["-k*(x - sin(t)) + cos(t)"]
        params, h0, t1 = {"k": s.log_uniform(100.0, 10_000.0)}, [s.uniform(-1.0, 1.0, 2)], s.uniform(1.0, 3.0, 2)
    elif template == "stiff-linear":
        state, rhs = ["x", "y"], ["-k*x + y", "-a*y"]
        params = {"k": s.log_uniform(100.0, 10_000.0), "a": s.uniform(0.5, 2.0, 2)}
        h0, t1 = s.vector(2, -1.0, 1.0, 2), s.uniform(1.0, 3.0, 2)
    else:  # Robertson's kinetics, rate constants within 25% of the classic ones
        state = ["x", "y", "z"]
        rhs = ["-k1*x + k3*y*z", "k1*x - k2*y**2 - k3*y*z", "k2*y**2"]
        params = {
            "k1": s.uniform(0.03, 0.05, 4),
            "k2": s.log_uniform(2.25e7, 3.75e7),
            "k3": s.log_uniform(7.5e3, 1.25e4),
        }
        h0, t1 = [1.0, 0.0, 0.0], s.uniform(0.5, 5.0, 2)
        solver["atol"] = 1e-12  # y stays near 1e-5: the absolute tolerance must resolve it
        loss = {"kind": "final", "expr": f"{s.choice((0.5, 1.0, 2.0)):g}*x + 10000*y + z**2"}
        return expression_spec("stiff/robertson", state, rhs, params, h0, t0, t1, loss, solver)
    return expression_spec(f"stiff/{template}", state, rhs, params, h0, t0, t1, final_loss(s, state), solver)


def neural(s: Sampler) -> dict:
    """A small matrix-level tanh network: ``tanh(W h + b)`` or ``W2 tanh(W1 h + b1) + b2``."""
    n = s.integer(1, 3)
    if s.coin(0.5):
        hidden = s.integer(2, 4)
        network = {"builder": "two_layer", "n": n, "hidden": hidden, "activation": "tanh"}
        shapes = {"W1": (hidden, n), "b1": (hidden, 1), "W2": (n, hidden), "b2": (n, 1)}
    else:
        network = {"builder": "neural_ode", "n": n, "activation": "tanh", "time": s.choice(("none", "input"))}
        shapes = {"W": (n, n), "b": (n, 1)} | ({"u": (n, 1)} if network["time"] == "input" else {})
    gain = s.uniform(0.5, 2.0, 2)  # weights ~ gain / sqrt(fan-in): from contracting to expanding
    params = {}
    for name, (rows, cols) in shapes.items():
        bound = gain / cols**0.5 if name.startswith("W") else 0.5
        params[name] = s.matrix(rows, cols, -bound, bound)
    t0 = s.choice((0.0, 0.5))
    t1 = t0 + s.uniform(0.5, 2.0, 2)
    names = [f"h[{i}, 0]" for i in range(n)]
    return {
        "name": f"neural/{network['builder']}",
        "network": network,
        "params": params,
        "h0": s.vector(n, -1.0, 1.0, 2),
        "t0": t0,
        "t1": t1,
        "loss": any_loss(s, names, t0, t1),
        "solver": dict(_EXPLICIT),
    }


def _small_system(s: Sampler) -> tuple[str, list[str], list[str], dict, list[float]]:
    """A decay, logistic, oscillator or Lotka-Volterra system with values (observation, backward)."""
    template = s.choice(("decay", "logistic", "oscillator", "lotka-volterra"))
    if template == "decay":
        return template, ["x"], ["-k*x"], {"k": s.uniform(0.2, 2.0, 2)}, [s.uniform(-1.0, 1.0, 2)]
    if template == "logistic":
        state, rhs = _LOGISTIC
        return (
            template,
            state,
            rhs,
            {"r": s.uniform(0.5, 2.0, 2), "K": s.uniform(1.0, 2.0, 2)},
            [s.uniform(0.1, 1.0, 2)],
        )
    if template == "oscillator":
        state, rhs = _OSCILLATOR
        params = {"k": s.uniform(0.5, 4.0, 2), "c": s.uniform(0.05, 0.5, 2)}
        return template, state, rhs, params, s.vector(2, -1.0, 1.0, 2)
    state, rhs = _LV
    return template, state, rhs, _lotka_volterra(s), s.vector(2, 0.5, 1.5, 2)


def observation(s: Sampler) -> dict:
    """Observation losses: the adjoint jumps by ``dL/dh(t_i)`` at every observation time."""
    template, state, rhs, params, h0 = _small_system(s)
    t0 = s.choice((0.0, 0.5))
    t1 = t0 + s.uniform(0.5, 3.0, 2)
    loss = observation_loss(s, state, t0, t1)
    return expression_spec(f"observation/{template}", state, rhs, params, h0, t0, t1, loss)


def backward(s: Sampler) -> dict:
    """``t1 < t0``: the forward solve runs backward in time and the adjoint forward."""
    template, state, rhs, params, h0 = _small_system(s)
    t0 = s.choice((0.5, 1.0, 2.0))
    t1 = round(t0 - s.uniform(0.5, 2.0, 2), 6)
    return expression_spec(f"backward/{template}", state, rhs, params, h0, t0, t1, any_loss(s, state, t0, t1))


def integrand(s: Sampler, names: Sequence[str], weight: str | None = None) -> str:
    """A running cost ``g``: ``sum_i c_i x_i + d_i x_i^2`` (at least one term), sometimes
    ``+ t*x_0`` or ``+ cos(t)*x_0`` (explicit ``dg/dt``: ``dL/dt0``, ``dL/dt1`` move), times
    the cost-only parameter ``weight`` if given (its gradient is ``int g/weight dt``: the
    running cost's explicit ``dg/dtheta`` and nothing else)."""
    expr = final_loss(s, names, time_term=False)["expr"]
    if s.coin(0.3):
        expr += f" + {s.choice(('t', 'cos(t)'))}*{names[0]}"
    return f"{weight}*({expr})" if weight else expr


def integral_loss(s: Sampler, names: Sequence[str], t0: float, t1: float, weight: str | None = None, *,
                  whole_state: bool = True) -> dict | list[dict]:  # fmt: skip
    """A running cost alone (half the time), plus a final loss (three in ten) or plus an
    observation loss (one in five).  The point term reads only ``names``: without
    ``whole_state`` an observation loss is an expression (squared errors read every state)."""
    cost = {"kind": "integral", "expr": integrand(s, names, weight)}
    u = s.unit()
    if u < 0.5:
        return cost
    if u < 0.8:
        return [final_loss(s, names), cost]
    point = observation_loss(s, names, t0, t1, max_times=3)
    if "targets" in point and not whole_state:
        point = {"kind": "observations", "times": point["times"], "expr": final_loss(s, names, False)["expr"]}
    return [point, cost]


def integral(s: Sampler) -> dict:
    """Running costs ``L = int_{t0}^{t1} g(h, t, theta) dt`` (plus sometimes a point loss) over
    the hard regimes: the adjoint gains ``-dg/dh``, ``a_theta`` gains ``-dg/dtheta``, and
    ``dL/dt1``, ``dL/dt0`` gain ``g`` at the ends."""
    template = s.choice(("equilibrium", "long-span", "growing", "backward", "decoupled", "weighted"))
    t0 = s.choice((0.0, 0.5, 1.0))
    t1 = t0 + s.uniform(0.5, 3.0, 2)
    params: dict
    if template == "equilibrium":  # at rest or at zero: g is constant along the trajectory
        if s.coin(0.5):
            (state, rhs), params = _LOGISTIC, {"r": s.uniform(0.5, 2.0, 2), "K": s.choice((0.5, 1.0, 2.0))}
            h0 = [s.choice((0.0, params["K"]))]
        else:
            (state, rhs), params = _OSCILLATOR, {"k": s.uniform(0.5, 4.0, 2), "c": s.uniform(0.1, 1.0, 2)}
            h0 = [0.0, 0.0]
    elif template == "long-span":  # 3 to 10 time units: the cost accumulates over many periods
        t1 = t0 + s.uniform(3.0, 10.0, 2)
        if s.coin(0.5):
            state, rhs = _OSCILLATOR
            params = {"k": s.uniform(0.5, 4.0, 2), "c": s.uniform(0.05, 0.5, 2)}
        else:
            state, rhs = ["x", "y"], ["y", "mu*(1 - x**2)*y - x"]
            params = {"mu": s.uniform(0.2, 1.0, 2)}
        h0 = s.vector(2, -1.0, 1.0, 2)
    elif template == "growing":  # x = x0 e^(a t): a quadratic cost grows twice as fast
        state, rhs = ["x"], ["a*x"]
        params = {"a": s.uniform(0.5, 2.0, 2)}
        h0, t1 = [s.uniform(0.1, 1.0, 2)], t0 + s.uniform(1.0, min(6.0, 8.0 / params["a"]), 2)  # a * span <= 8
    elif template == "backward":  # t1 < t0: int_{t0}^{t1} g dt = -int_{t1}^{t0} g dt
        _, state, rhs, params, h0 = _small_system(s)
        t0, t1 = t1, t0
    elif template == "decoupled":  # y and m never reach L: dL/dy0 = dL/dm = 0 exactly
        state, rhs = ["x", "y"], ["-k*x", "-m*y + u"]
        params = {"k": s.uniform(0.2, 2.0, 2), "m": s.uniform(0.2, 2.0, 2), "u": s.uniform(-1.0, 1.0, 2)}
        h0 = s.vector(2, -1.0, 1.0, 2)
        loss = integral_loss(s, ["x"], t0, t1, whole_state=False)
        return expression_spec("integral/decoupled", state, rhs, params, h0, t0, t1, loss)
    else:  # a cost weight q no rhs uses: dL/dq comes from the running cost's dg/dtheta alone
        template, state, rhs, params, h0 = _small_system(s)
        params = params | {"q": s.choice(_COEFFICIENTS[2:])}
        loss = integral_loss(s, state, t0, t1, weight="q")
        return expression_spec(f"integral/weighted-{template}", state, rhs, params, h0, t0, t1, loss)
    loss = integral_loss(s, state, t0, t1)
    return expression_spec(f"integral/{template}", state, rhs, params, h0, t0, t1, loss)


#: The families by name, in the order problems cycle through them.
FAMILIES: dict[str, Callable[[Sampler], dict]] = {
    "equilibrium": equilibrium,
    "long_span": long_span,
    "growing": growing,
    "stiff": stiff,
    "neural": neural,
    "observation": observation,
    "backward": backward,
    "integral": integral,  # last: the draws of the seven before it are what they were without it
}

#: Families that wait for a library feature, and what they wait for (none at present).
PLANNED: dict[str, str] = {}

__all__ = ["FAMILIES", "PLANNED"]
