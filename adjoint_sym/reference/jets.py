"""Taylor-mode differentiation of SymPy expressions in mpmath: the arbiter's arithmetic.

A :class:`Jet` turns scalar SymPy expressions into a tape of nodes, each holding the
Taylor coefficients ``c_0, c_1, ...`` of its value as a series in ``tau = t - t_start``,
and computes them order by order: coefficient ``k`` of a node needs the coefficients
``0..k`` of its arguments and ``0..k-1`` of itself.  The recurrences are the classical ones
of automatic Taylor expansion (Moore 1966; Jorba & Zou, Experimental Mathematics 14
(2005)); for ``w = exp(a)`` the identity ``w' = a' w`` gives

    w_k = (1/k) sum_{j=1..k} j a_j w_{k-j},

and likewise ``w' = a' q`` with ``q = cos a``, ``1 - w^2`` (tanh), ``1 / (1 + a^2)`` (atan),
``2/sqrt(pi) exp(-a^2)`` (erf) ...; products convolve, quotients and powers solve their
defining relations.  All arithmetic is in ``mpmath`` at the working precision of the
caller (``mp.dps``), so nothing rounds to double on the way.

Only analytic operations are accepted: ``+``, ``*``, integer powers (repeated products,
so ``x**2`` expands at ``x = 0``), real powers and ``log`` of a non-zero argument, and
``exp, log, sin, cos, tan, sinh, cosh, tanh, asin, acos, atan, erf``.  Anything else
(``Abs``, ``Max``, ``Piecewise`` ...) raises :class:`UnsupportedExpressionError` naming it,
and a pole or branch point reached by the trajectory :class:`InvalidModelError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import mpmath
import sympy as sp
from mpmath import mp
from sympy.matrices.expressions.matexpr import MatrixElement

from ..errors import InvalidModelError, UnsupportedExpressionError

_REMEDY = "use the 'forward' or 'finite-difference' reference for this problem"


def _no_series(what: str) -> InvalidModelError:
    return InvalidModelError(f"arbiter: {what}, so there is no Taylor series there; {_REMEDY}")


class _Node:
    """A series; ``const`` nodes have a single coefficient (all others zero)."""

    const = False

    def __init__(self) -> None:
        self.c: list = []

    def at(self, k: int):
        return self.c[k] if k < len(self.c) else mp.zero

    def coef(self, k: int) -> None:  # pragma: no cover - every node type defines it
        raise NotImplementedError


class _Const(_Node):
    const = True

    def __init__(self, value) -> None:
        super().__init__()
        self.c = [value]

    def coef(self, k: int) -> None:
        pass


class _Variable(_Node):
    """Coefficients set from outside (the state, the time)."""

    def coef(self, k: int) -> None:
        pass


class _Add(_Node):
    def __init__(self, args: list[_Node]) -> None:
        super().__init__()
        self.args = args

    def coef(self, k: int) -> None:
        self.c.append(mpmath.fsum(a.at(k) for a in self.args))


def _conv(a: _Node, b: _Node, k: int):
    """``sum_{j=0..k} a_j b_{k-j}`` (a constant factor: one product)."""
    if a.const:
        return a.c[0] * b.at(k)
    if b.const:
        return a.at(k) * b.c[0]
    return mpmath.fdot(a.c[: k + 1], b.c[k::-1])


def _chain_sum(a: _Node, q: list, k: int):
    """``(1/k) sum_{j=1..k} j a_j q_{k-j}``: coefficient ``k`` of ``w`` where ``w' = a' q``."""
    return mpmath.fdot([j * a.c[j] for j in range(1, k + 1)], q[k - 1 :: -1]) / k


class _Mul(_Node):
    def __init__(self, a: _Node, b: _Node) -> None:
        super().__init__()
        self.a, self.b = a, b

    def coef(self, k: int) -> None:
        self.c.append(_conv(self.a, self.b, k))


class _Reciprocal(_Node):
    """``w = 1/a``: ``a w = 1`` gives ``w_k = -(sum_{j=1..k} a_j w_{k-j}) / a_0``."""

    def __init__(self, a: _Node) -> None:
        super().__init__()
        self.a = a

    def coef(self, k: int) -> None:
        a = self.a
        if k == 0:
            if a.c[0] == 0:
                raise _no_series("a denominator is zero on the trajectory")
            self.c.append(1 / a.c[0])
        else:
            self.c.append(-mpmath.fdot([a.at(j) for j in range(1, k + 1)], self.c[k - 1 :: -1]) / a.c[0])


class _RealPower(_Node):
    """``w = a^p``: ``a w' = p a' w`` gives ``k a_0 w_k = sum_{j=1..k} (p j - k + j) a_j w_{k-j}``."""

    def __init__(self, a: _Node, p) -> None:
        super().__init__()
        self.a, self.p = a, p

    def coef(self, k: int) -> None:
        a, p = self.a, self.p
        if k == 0:
            if a.c[0] == 0:
                raise _no_series(f"a real power (**{mpmath.nstr(p, 6)}) of an expression that is 0 on the trajectory")
            self.c.append(mpmath.power(a.c[0], p))
        else:
            weights = [(p * j - k + j) * a.at(j) for j in range(1, k + 1)]
            self.c.append(mpmath.fdot(weights, self.c[k - 1 :: -1]) / (k * a.c[0]))


class _Exp(_Node):
    def __init__(self, a: _Node) -> None:
        super().__init__()
        self.a = a

    def coef(self, k: int) -> None:
        self.c.append(mpmath.exp(self.a.c[0]) if k == 0 else _chain_sum(self.a, self.c, k))


class _Log(_Node):
    """``a w' = a'`` gives ``a_0 w_k = a_k - (1/k) sum_{j=1..k-1} j w_j a_{k-j}``."""

    def __init__(self, a: _Node) -> None:
        super().__init__()
        self.a = a

    def coef(self, k: int) -> None:
        a = self.a
        if k == 0:
            if a.c[0] == 0:
                raise _no_series("log of an expression that is 0 on the trajectory")
            self.c.append(mpmath.log(a.c[0]))
        else:
            inner = mpmath.fdot([j * self.c[j] for j in range(1, k)], [a.at(k - j) for j in range(1, k)]) / k
            self.c.append((a.at(k) - inner) / a.c[0])


class _Pair(_Node):
    """``(s, c)`` with ``s' = a' c`` and ``c' = sign a' s``: sin/cos (sign -1), sinh/cosh (+1)."""

    def __init__(self, a: _Node, sign: int) -> None:
        super().__init__()
        self.a, self.sign = a, sign
        self.s: list = []
        self.co: list = []

    def coef(self, k: int) -> None:
        a = self.a
        if k == 0:
            x = a.c[0]
            s, c = (mpmath.sin(x), mpmath.cos(x)) if self.sign < 0 else (mpmath.sinh(x), mpmath.cosh(x))
        else:
            s = _chain_sum(a, self.co, k)
            c = self.sign * _chain_sum(a, self.s, k)
        self.s.append(s)
        self.co.append(c)


class _View(_Node):
    """One series of a :class:`_Pair`."""

    def __init__(self, series: list) -> None:
        super().__init__()
        self.c = series

    def coef(self, k: int) -> None:
        pass


class _Tanh(_Node):
    """``w' = a' (1 + sign w^2)``: tanh (sign -1), tan (+1)."""

    def __init__(self, a: _Node, sign: int) -> None:
        super().__init__()
        self.a, self.sign = a, sign
        self.u: list = []

    def coef(self, k: int) -> None:
        w = mpmath.tanh(self.a.c[0]) if self.sign < 0 else mpmath.tan(self.a.c[0])
        self.c.append(w if k == 0 else _chain_sum(self.a, self.u, k))
        square = mpmath.fdot(self.c, self.c[::-1])
        self.u.append((1 if k == 0 else 0) + self.sign * square)


class _Chain(_Node):
    """``w' = a' q`` for a series ``q`` built from ``a`` (atan, asin, acos, erf)."""

    def __init__(self, a: _Node, q: _Node, value) -> None:
        super().__init__()
        self.a, self.q, self.value = a, q, value

    def coef(self, k: int) -> None:
        self.c.append(self.value(self.a.c[0]) if k == 0 else _chain_sum(self.a, self.q.c, k))


def to_mpf(number: sp.Basic):
    """A SymPy number as an mpmath number at the working precision (Floats exactly)."""
    if isinstance(number, sp.Float):
        return mp.mpf(number._mpf_)
    if isinstance(number, sp.Rational):
        return mp.mpf(int(number.p)) / int(number.q)
    return mp.mpf(sp.N(number, mp.dps + 5))


class Jet:
    """Taylor coefficients of ``exprs`` in ``variables``, the other symbols fixed by ``constants``.

    Examples
    --------
    >>> import sympy as sp
    >>> from mpmath import mp
    >>> x = sp.Symbol("x")
    >>> jet = Jet([sp.exp(x) * x**2], [x], {})
    >>> mp.dps = 30
    >>> jet.start([mp.mpf(0)])
    >>> jet.variables[0].c += [mp.mpf(1), 0, 0, 0]  # x = 0 + tau: every coefficient the orders read
    >>> for k in range(5):
    ...     jet.order(k)
    >>> [float(c) for c in jet.outputs[0].c]  # tau^2 e^tau = tau^2 + tau^3 + tau^4/2 + ...
    [0.0, 0.0, 1.0, 1.0, 0.5]
    >>> mp.dps = 15
    """

    def __init__(self, exprs: Sequence[sp.Basic], variables: Sequence[sp.Basic], constants: Mapping) -> None:
        self.variables = [_Variable() for _ in variables]
        self._memo: dict = dict(zip(variables, self.variables))
        self._constants = constants
        self.nodes: list[_Node] = []
        replacements, reduced = sp.cse(list(exprs))
        for symbol, value in replacements:
            self._memo[symbol] = self._build(value)
        self.outputs = [self._build(e) for e in reduced]

    def start(self, values: Sequence) -> None:
        """Forget every coefficient; the variables start at ``values`` (order 0)."""
        for v, value in zip(self.variables, values):
            v.c = [value]
        for node in self.nodes:
            if isinstance(node, _Pair):
                node.s, node.co = [], []
            elif isinstance(node, _Tanh):
                node.u = []
            if not isinstance(node, _Const | _View):
                node.c = []
        for node in self.nodes:  # the views share their pair's fresh lists
            if isinstance(node, _View):
                node.c = node.pair.s if node.which == "s" else node.pair.co

    def order(self, k: int) -> None:
        """Coefficient ``k`` of every node (the variables' coefficients ``0..k`` must be set)."""
        for node in self.nodes:
            node.coef(k)

    # -- building the tape ------------------------------------------------------------
    def _add(self, node: _Node) -> _Node:
        inputs = [getattr(node, name) for name in ("a", "b", "q") if hasattr(node, name)] + getattr(node, "args", [])
        if inputs and all(x.const for x in inputs):  # a constant subexpression: fold it now (order 0 is all it has)
            node.coef(0)
            return _Const(node.c[0])
        self.nodes.append(node)
        return node

    def _const(self, value) -> _Node:
        return _Const(value)

    def _build(self, e: sp.Basic) -> _Node:
        if e in self._memo:
            return self._memo[e]
        node = self._make(e)
        self._memo[e] = node
        return node

    def _make(self, e: sp.Basic) -> _Node:
        if e.is_Number or isinstance(e, sp.NumberSymbol):
            return self._const(to_mpf(e))
        if isinstance(e, sp.Symbol | MatrixElement):
            if e in self._constants:
                return self._const(self._constants[e])
            raise UnsupportedExpressionError(f"the symbol {e} has neither a value nor a series in the arbiter")
        if isinstance(e, sp.Add):
            return self._add(_Add([self._build(a) for a in e.args]))
        if isinstance(e, sp.Mul):
            args = [self._build(a) for a in e.args]
            node = args[0]
            for other in args[1:]:
                node = self._add(_Mul(node, other))
            return node
        if isinstance(e, sp.Pow):
            return self._power(e)
        return self._function(e)

    def _power(self, e: sp.Pow) -> _Node:
        base, exponent = e.args
        if not exponent.is_number:
            return self._build(sp.exp(exponent * sp.log(base)))
        if exponent.is_Integer:
            m = abs(int(exponent))
            node = self._integer_power(self._build(base), m)
            return self._add(_Reciprocal(node)) if exponent < 0 else node
        return self._add(_RealPower(self._build(base), to_mpf(exponent)))

    def _integer_power(self, a: _Node, m: int) -> _Node:
        if m == 0:
            return self._const(mp.one)
        if m == 1:
            return a
        half = self._integer_power(a, m // 2)
        square = self._add(_Mul(half, half))
        return self._add(_Mul(square, a)) if m % 2 else square

    def _function(self, e: sp.Basic) -> _Node:
        kind = type(e)
        if kind in (sp.sin, sp.cos, sp.sinh, sp.cosh):
            a = self._build(e.args[0])
            if a.const:
                return _Const(getattr(mpmath, kind.__name__)(a.c[0]))
            key = ("pair", a, kind in (sp.sin, sp.cos))
            pair = self._memo.get(key)
            if pair is None:
                pair = self._memo[key] = self._add(_Pair(a, -1 if kind in (sp.sin, sp.cos) else 1))
            view = self._add(_View(pair.s if kind in (sp.sin, sp.sinh) else pair.co))
            view.pair, view.which = pair, ("s" if kind in (sp.sin, sp.sinh) else "c")
            return view
        if kind in (sp.tanh, sp.tan):
            return self._add(_Tanh(self._build(e.args[0]), -1 if kind is sp.tanh else 1))
        if kind is sp.exp:
            return self._add(_Exp(self._build(e.args[0])))
        if kind is sp.log and len(e.args) == 1:
            return self._add(_Log(self._build(e.args[0])))
        chains = {
            sp.atan: (lambda x: 1 / (1 + x**2), mpmath.atan),
            sp.asin: (lambda x: 1 / sp.sqrt(1 - x**2), mpmath.asin),
            sp.acos: (lambda x: -1 / sp.sqrt(1 - x**2), mpmath.acos),
            sp.erf: (lambda x: 2 / sp.sqrt(sp.pi) * sp.exp(-(x**2)), mpmath.erf),
        }
        if kind in chains:
            derivative, value = chains[kind]
            x = e.args[0]
            return self._add(_Chain(self._build(x), self._build(derivative(x)), value))
        raise UnsupportedExpressionError(
            f"the arbiter cannot expand {kind.__name__} (in {e}) in a Taylor series: it is not analytic or not "
            f"supported; {_REMEDY}"
        )


__all__ = ["Jet", "to_mpf"]
