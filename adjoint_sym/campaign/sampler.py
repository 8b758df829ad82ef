"""Reproducible draws for campaign problems: one PCG64 stream per ``(seed, index)``.

A problem's numbers depend on the seed and its index only, never on the order problems
are drawn, the process that draws them or the machine: each index gets its own
:class:`numpy.random.PCG64` seeded by ``SeedSequence([seed, index])``, and every draw is
made from the bit generator's raw 64-bit outputs (whose stream NumPy keeps stable across
versions, unlike the distribution methods of ``Generator``).  Values are rounded to a
few digits so that a problem's JSON is short, exact and readable.

Examples
--------
>>> a, b = Sampler(7, 3), Sampler(7, 3)
>>> [a.uniform(0, 1) for _ in range(3)] == [b.uniform(0, 1) for _ in range(3)]
True
>>> Sampler(7, 3).uniform(0, 1) == Sampler(7, 4).uniform(0, 1)
False
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import InvalidModelError

_UNIT = 2.0**-53  # 53 random bits -> a double in [0, 1)


def check_seed(value: object, what: str = "seed") -> int:
    """A non-negative integer (what :class:`numpy.random.SeedSequence` accepts).

    Examples
    --------
    >>> check_seed(3)
    3
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    adjoint_sym.errors.InvalidModelError: seed must be a non-negative integer, got -1
    """
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise InvalidModelError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


class Sampler:
    """The random numbers of problem ``index`` of the campaign with ``seed``.

    Parameters
    ----------
    seed, index : int
        Non-negative integers.
    """

    def __init__(self, seed: int, index: int) -> None:
        entropy = [check_seed(seed), check_seed(index, "index")]
        self._bits = np.random.PCG64(np.random.SeedSequence(entropy))

    def unit(self) -> float:
        """A double in ``[0, 1)`` from the top 53 bits of one raw output."""
        return (int(self._bits.random_raw()) >> 11) * _UNIT

    def uniform(self, low: float, high: float, digits: int = 3) -> float:
        """Uniform in ``[low, high]``, rounded to ``digits`` decimals."""
        return _clean(round(low + (high - low) * self.unit(), digits))

    def log_uniform(self, low: float, high: float) -> float:
        """Log-uniform in ``[low, high]`` (``0 < low``), three significant digits."""
        value = math.exp(math.log(low) + (math.log(high) - math.log(low)) * self.unit())
        return float(f"{value:.3g}")

    def integer(self, low: int, high: int) -> int:
        """An integer in ``[low, high]`` (both included)."""
        return min(high, low + int(self.unit() * (high - low + 1)))

    def choice(self, options: Sequence, weights: Sequence[float] | None = None):
        """One of ``options``, uniformly or with the given weights."""
        if weights is None:
            return options[self.integer(0, len(options) - 1)]
        u, total = self.unit() * sum(weights), 0.0
        for option, w in zip(options, weights):
            total += w
            if u < total:
                return option
        return options[-1]

    def coin(self, p: float = 0.5) -> bool:
        """``True`` with probability ``p``."""
        return self.unit() < p

    def vector(self, size: int, low: float, high: float, digits: int = 3) -> list[float]:
        return [self.uniform(low, high, digits) for _ in range(size)]

    def matrix(self, rows: int, cols: int, low: float, high: float, digits: int = 3) -> list[list[float]]:
        return [self.vector(cols, low, high, digits) for _ in range(rows)]


def _clean(value: float) -> float:
    return value + 0.0  # no -0.0 in the JSON


__all__ = ["Sampler", "check_seed"]
