"""What a running cost ``int_{t0}^{t1} g dt`` adds to the printed derivation.

The writer of :mod:`adjoint_sym.symbolic.document` takes these lines from
:class:`RunningCostLines` (each empty without a running cost):

* the loss ``L = ... + int_{t0}^{t1} g(h(t), theta, t) dt`` and ``g``'s expression;
* after the adjoint ODEs, that they are the Hamiltonian ``a . f + g``'s, and the partial
  derivatives ``dg/dh``, ``dg/dtheta``, ``dg/dt`` their rates subtract;
* ``a_t(t1) = ... - g(h(t1), theta, t1)`` (at the last observation time, the same jump);
* ``dL/dt0 = a_t(t0) = -a(t0) . f(h0, t0) - g(h0, theta, t0)`` and
  ``dL/dt1 = ... + g(h(t1), theta, t1)``.

:func:`with_running_cost` makes an adjoint and a loss agree on the cost before printing.
"""

from __future__ import annotations

from dataclasses import replace


def with_running_cost(adj, terms):
    """The adjoint and loss terms made to agree on the running cost.

    A loss with a running cost is derived with the adjoint of its Hamiltonian ``a . f + g``
    (the adjoint is re-derived when it was built without ``g``); an adjoint built with a
    running cost lends it to a loss that does not name one.
    """
    if terms.running is not None and terms.running != adj.running_cost:
        adj = type(adj).of(adj.system, form=adj.form, running_cost=terms.running)
    elif terms.running is None and adj.running_cost is not None:
        terms = replace(terms, running=adj.running_cost)
    return adj, terms


class RunningCostLines:
    """The running cost's lines; mixed into the derivation's writer, whose names it reads."""

    #: Up to this many entries a column of partial derivatives is printed entry by entry.
    MAX_ENTRIES = 6

    def _g_at(self, t: str) -> str:
        """``g(h(t), theta, t)``."""
        s = self.s
        return s.at(self.g, s.at(self.h, t), self.theta, t)

    def _plus_integral(self) -> str:
        """`` + int_{t0}^{t1} g(h(t), theta, t) dt`` (or the integral alone for a running cost alone)."""
        if not self.running:
            return ""
        s = self.s
        body = s.integral(self._g_at(self.t), self.t0, self.t1, self.t)
        return body if self.terms.point_free else " + " + body

    def _start_value(self) -> str:
        """`` = -a(t0) . f(h(t0), t0) - g(h(t0), theta, t0)``: what ``a_t(t0)`` adds up to."""
        if not self.running:
            return ""
        s, h0 = self.s, self.s.at(self.h, self.t0)
        return " = -" + s.at(self.a, self.t0) + s.dot + s.at(self.f, h0, self.t0) + " - " + self._g_at(self.t0)

    def _last_jump(self) -> list[str]:
        """The jump of ``a_t`` at the last observation time, which also ends the integral."""
        if not self.running:
            return []
        s, last = self.s, self.s.sub(self.t, "N")
        rhs = s.at(self.a_t, s.side(last, "+")) + " - " + self._motion("N", last) + " - " + self._g_at(last)
        return [s.eq(s.at(self.a_t, s.side(last, "-")), rhs) + s.sep + f"{last} = {self.t1}"]

    def _last_time(self) -> list[str]:
        """``dL/dt_N`` of an observation loss: moving the last time moves the integral's end too."""
        if not self.running or self.terms.final:
            return []
        s, last = self.s, self.s.sub(self.t, "N")
        d_t_last = s.evaluated(s.partial(s.sub(self.ell, "N"), self.t), last)
        rhs = self._motion("N", last) + " + " + d_t_last + " + " + self._g_at(last)
        return [s.eq(s.total(self.L, last), rhs) + s.sep + s.words("the integral ends at ") + last]

    def _cost_partials(self) -> list[str]:
        """Where the running cost enters the rates, and its partial derivatives when short enough to read."""
        if not self.running:
            return []
        s, system, g = self.s, self.adj.system, self.terms.running
        pieces = [s.partial(self.g, x) for x in (self.h, self.theta, self.t)]
        lines = [
            s.words("the rates are those of the Hamiltonian ")
            + f"{self.a}{s.dot}{self.f} + {self.g}"
            + s.sep
            + s.words("each minus ")
            + ", ".join(pieces)
        ]
        d_h = [g.diff(x) for x in system.flat_state]
        if len(d_h) <= self.MAX_ENTRIES:
            lines.append(s.eq(pieces[0], self._entries(d_h)))
        d_theta = [g.diff(p) for p in system.flat_params]
        if any(d != 0 for d in d_theta) and len(d_theta) <= self.MAX_ENTRIES:
            lines.append(s.eq(pieces[1], self._entries(d_theta)))
        if g.has(system.t):
            lines.append(s.eq(pieces[2], s.expr(g.diff(system.t))))
        return lines

    def _entries(self, entries: list) -> str:
        printed = [self.s.expr(e) for e in entries]
        return printed[0] if len(printed) == 1 else self.s.column(printed)


__all__ = ["RunningCostLines", "with_running_cost"]
