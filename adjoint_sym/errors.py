"""One error hierarchy for the whole package.

Every error adjoint_sym raises on purpose derives from :class:`AdjointSymError`, so a
caller can catch ours without catching programming errors.  Invalid input is also a
``ValueError`` and a failed verification is also an ``AssertionError``, so code written
against the standard library's conventions keeps working.
"""

from __future__ import annotations


class AdjointSymError(Exception):
    """Base class of every error adjoint_sym raises deliberately."""


class InvalidModelError(AdjointSymError, ValueError):
    """A system, problem, loss or spec is malformed (names, shapes, values)."""


class UnsupportedExpressionError(InvalidModelError):
    """An expression uses syntax or functions outside the whitelist, or is too large."""


class SolverFailedError(AdjointSymError, RuntimeError):
    """A numerical integration failed; carries where it failed and the solver's message.

    Attributes
    ----------
    t : float or None
        The time reached when the solver stopped, if known.
    state : numpy.ndarray or None
        The state at that time, if known.
    solver_message : str
        The message of the underlying solver (``solve_ivp``'s ``message``).
    """

    def __init__(self, message: str, *, t=None, state=None, solver_message: str = "") -> None:
        super().__init__(message)
        self.t = t
        self.state = state
        self.solver_message = solver_message


class GradientMismatchError(AdjointSymError, AssertionError):
    """Two gradient routes disagree beyond what their tolerances explain."""
