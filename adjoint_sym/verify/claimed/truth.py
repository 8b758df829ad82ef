"""What each claimed piece must equal, and the known mistakes it may make instead.

The correct pieces, in the convention ``a(t) = dL/dh(t)`` (Chen et al. 2018, eqs. 4-5,
Algorithm 1 and appendix B; Pontryagin et al. 1962), are built here by plain SymPy
differentiation of ``f`` and of the loss, entry by entry: nothing here comes from the
library's adjoint derivation, so a claim is never judged against the code under test.

==================  ===========================================================
piece               must equal
==================  ===========================================================
``adjoint``         ``-(df/dh)^T a``
``param_integrand`` ``-(df/dtheta)^T a`` for limits ``t1 -> t0`` (eq. 5); ``+`` for ``t0 -> t1``
``adjoint_time``    ``-a . df/dt``
``terminal``        ``dL/dh(t1)``; for observation losses, the jump at ``t_N``
``jumps``           ``dL/dh(t_i)`` at each observation time
``terminal_param``  the loss's explicit ``dL/dtheta`` (then ``dL/dtheta = a_theta(t0)``)
``terminal_time``   ``-dL/dh(t1) . f(h(t1), t1)`` (``-dL/dt1`` when ``L`` has no explicit ``t``)
``dL_dt0``          ``-a(t0) . f(h(t0), t0)`` (``h0`` held fixed)
``dL_dt1``          ``dL/dh(t1) . f(h(t1), t1) + dL/dt1|explicit``
==================  ===========================================================

Pieces read at ``t1`` may use the adjoint symbols; they stand for ``a(t1) = dL/dh(t1)``
and are replaced by it, so each piece is judged with the others correct.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ...numeric.loss import ObservationLoss
from .pieces import ReadClaim


@dataclass(frozen=True, eq=False)
class Comparison:
    """Claimed against expected, component by component, with the known wrong variants.

    ``variants`` pairs a diagnosis with the vector a claim making that mistake would equal.
    """

    piece: str
    label: str
    components: tuple[str, ...]
    claimed: tuple[sp.Expr, ...]
    expected: tuple[sp.Expr, ...]
    variants: tuple[tuple[str, tuple[sp.Expr, ...]], ...]

    @property
    def symbols(self) -> set:
        out: set = set()
        for e in (*self.claimed, *self.expected):
            out |= _atoms(e)
        return out


def _atoms(e: sp.Basic) -> set:
    from sympy.matrices.expressions.matexpr import MatrixElement

    found = set(e.atoms(MatrixElement))
    return found | {s for s in e.free_symbols if not isinstance(s, sp.MatrixSymbol)}


def _neg(v) -> tuple:
    return tuple(-e for e in v)


def _zeros(n: int) -> tuple:
    return (sp.Integer(0),) * n


def comparisons(read: ReadClaim, piece: str) -> list[Comparison]:
    """The comparisons that decide ``piece`` (one, or one per observation time for ``jumps``)."""
    system, names = read.problem.system, read.names
    claimed = read.pieces[piece].exprs
    a = sp.Matrix(names.adjoint_entries)
    f = sp.Matrix(system.explicit_rhs)
    states = [f"d{names.adjoint_entries[i]}/dt" for i in range(system.n)]
    params = [str(p) for p in system.flat_params]

    def one(expected, variants, components, label="", claimed=claimed) -> Comparison:
        return Comparison(piece, label, tuple(components), tuple(claimed), tuple(expected), tuple(variants))

    if piece == "adjoint":
        jac = system.jacobian_h
        right = -(jac.T * a)
        return [
            one(
                right,
                [
                    ("flipped sign: da/dt = +a^T df/dh", _neg(right)),
                    ("missing transpose: (df/dh) a where a^T df/dh belongs", tuple(-(jac * a))),
                    ("missing transpose and flipped sign: da/dt = +(df/dh) a", tuple(jac * a)),
                ],
                states,
            )
        ]
    if piece == "param_integrand":
        eq5 = -(system.jacobian_theta.T * a)  # the integrand from t1 to t0
        if read.limits == ("t1", "t0"):
            variants = [("flipped sign: from t1 to t0 the integrand is -a^T df/dtheta", _neg(eq5))]
            return [one(eq5, variants, params)]
        reversed_ = "integration limits reversed: -a^T df/dtheta is the integrand from t1 to t0; from t0 to t1 it is +"
        return [one(_neg(eq5), [(reversed_ + "a^T df/dtheta", tuple(eq5))], params)]
    if piece == "adjoint_time":
        right = -(system.derivative_t.T * a)[0, 0]
        return [one([right], [("flipped sign: da_t/dt = +a^T df/dt", [-right])], ["da_t/dt"])]
    if piece == "dL_dt0":
        right = -(a.T * f)[0, 0]
        return [one([right], [("flipped sign: dL/dt0 = -a(t0) . f(h0, t0)", [-right])], ["dL/dt0"])]
    return _loss_pieces(read, piece, one)


def _loss_pieces(read: ReadClaim, piece: str, one) -> list[Comparison]:
    """The pieces that read the loss: its gradients at the observation times."""
    problem, names = read.problem, read.names
    system = problem.system
    times = problem.times
    losses = problem.loss.expressions(system, len(times))
    h = system.flat_state
    claimed = read.pieces[piece].exprs
    rows = problem.loss.targets if isinstance(problem.loss, ObservationLoss) else None

    def read_at(i: int, exprs) -> tuple:  # targets as the loss writes them (ObservationLoss.expressions)
        subs = {} if rows is None else dict(zip(names.target_entries, (sp.Float(repr(float(v)), 17) for v in rows[i])))
        return tuple(e.xreplace(subs) for e in exprs)

    def grad(i: int) -> tuple:
        return tuple(sp.diff(losses[i], s) for s in h)

    last = len(times) - 1
    label = "" if problem.is_final_loss else f"t_{last + 1} = {times[last]:g}"
    components = [f"a[{name}]" for name in system.state_names]
    if piece == "terminal":
        g = grad(last)
        variants = [
            ("sign flipped: a(t1) = -dL/dh(t1), the convention a = -dL/dh", _neg(g)),
            ("terminal value missing: a(t1) = 0, so a stays 0", _zeros(len(g))),
        ]
        return [one(g, variants, components, label, read_at(last, claimed))]
    if piece == "jumps":
        out, seen = [], []
        stated = read.pieces[piece].stated  # an unstated jump is judged where the terminal value is not
        for i in range(len(times) if stated else last):
            g, mine = grad(i), read_at(i, claimed)
            if (g, mine) in seen:  # the same expression read at every time: decide it once
                continue
            seen.append((g, mine))
            variants = [
                ("jump sign flipped: a(t_i-) = a(t_i+) - dL/dh(t_i)", _neg(g)),
                ("missing jump: a must jump by dL/dh(t_i) where the loss reads the state", _zeros(len(g))),
            ]
            out.append(one(g, variants, components, f"t_{i + 1} = {times[i]:g}", mine))
        return out
    if piece == "terminal_param":
        explicit = tuple(sp.diff(losses[last], p) for p in system.flat_params)
        variants = [
            ("dropped term: a_theta(t1) must carry the loss's explicit dL/dtheta", _zeros(len(explicit))),
            ("flipped sign", _neg(explicit)),
        ]
        return [one(explicit, variants, [f"a_theta[{p}]" for p in system.flat_params], label, read_at(last, claimed))]
    g = grad(last)
    at_t1 = dict(zip(names.adjoint_entries, g))  # the adjoint symbols stand for a(t1) = dL/dh(t1)
    motion = sum((gi * fi for gi, fi in zip(g, system.explicit_rhs)), sp.Integer(0))
    explicit_t = sp.diff(losses[last], system.t)
    mine = tuple(e.xreplace(at_t1) for e in read_at(last, claimed))
    if piece == "terminal_time":
        variants = [("a_t started at +dL/dt1: Algorithm 1 starts it at -dL/dt1", [motion + explicit_t])]
        if explicit_t != 0:
            variants.append(
                (
                    "a_t(t1) = -dL/dt1 counts the loss's explicit dL/dt1, which belongs to t1, not to a_t: "
                    "start from -dL/dh(t1) . f",
                    [-(motion + explicit_t)],
                )
            )
            variants.append(("flipped sign: a_t(t1) = -dL/dh(t1) . f(h(t1), t1)", [motion]))
        return [one([-motion], variants, ["a_t(t1)"], label, mine)]
    variants = [("flipped sign: dL/dt1 = +dL/dh(t1) . f(h(t1), t1)", [-(motion + explicit_t)])]
    if explicit_t != 0:
        variants.append(("dropped term: the loss's explicit dL/dt1", [motion]))
    return [one([motion + explicit_t], variants, ["dL/dt1"], label, mine)]


__all__ = ["Comparison", "comparisons"]
