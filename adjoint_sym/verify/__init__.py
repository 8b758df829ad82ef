"""Verification: every gradient route by name, compared quantity by quantity.

:func:`gradient` runs any route (adjoint, reference, discrete); :func:`check` and
:func:`compare` judge them with one engine (:mod:`adjoint_sym.verify.engine`) and one
tolerance model and return a :class:`Report` whose verdict is ``"ok"``, ``"fail"``
(two agreeing references against a method) or ``"inconclusive"`` (the references
disagree among themselves).
"""

from .checker import BEST_REFERENCES, assert_gradients_agree, check, compare
from .convergence import ConvergenceStudy, convergence_study
from .report import AGREEMENT, VERDICTS, Failure, Inconclusive, Report
from .routes import gradient, methods
from .tolerance import input_scales, relative_error, scaled_deviations

__all__ = [
    "AGREEMENT",
    "BEST_REFERENCES",
    "VERDICTS",
    "ConvergenceStudy",
    "Failure",
    "Inconclusive",
    "Report",
    "assert_gradients_agree",
    "check",
    "compare",
    "convergence_study",
    "gradient",
    "input_scales",
    "methods",
    "relative_error",
    "scaled_deviations",
]
