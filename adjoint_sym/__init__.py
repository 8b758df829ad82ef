"""adjoint_sym: state the adjoint method of neural ODEs symbolically, run it, verify it.

The symbolic core is imported eagerly; the numeric layer (which pulls in
``scipy.integrate``) loads on first use of one of its names, so ``import adjoint_sym``
and every command-line call stay quick.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

from .adjoint import Adjoint, AugmentedSystem
from .errors import (
    AdjointSymError,
    GradientMismatchError,
    InvalidModelError,
    SolverFailedError,
    UnsupportedExpressionError,
)
from .loss import CallableLoss, FinalLoss, Loss, ObservationLoss
from .parse import parse_expression
from .result import Gradient
from .system import ODESystem

try:
    __version__ = version("adjoint_sym")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

#: Public names of the numeric layer and the module each lives in.
_LAZY = {
    "Problem": "problem",
    "gradient": "dispatch",
    "methods": "dispatch",
    "check": "verify",
    "compare": "verify",
    "assert_gradients_agree": "verify",
    "convergence_study": "verify",
    "Report": "verify",
    "taylor_test": "reference.taylor",
    "check_gradient_function": "testing",
    "load_spec": "spec",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'adjoint_sym' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Adjoint",
    "AdjointSymError",
    "AugmentedSystem",
    "CallableLoss",
    "FinalLoss",
    "Gradient",
    "GradientMismatchError",
    "InvalidModelError",
    "Loss",
    "ODESystem",
    "ObservationLoss",
    "Problem",
    "Report",
    "SolverFailedError",
    "UnsupportedExpressionError",
    "__version__",
    "assert_gradients_agree",
    "check",
    "check_gradient_function",
    "compare",
    "convergence_study",
    "gradient",
    "load_spec",
    "methods",
    "parse_expression",
    "taylor_test",
]
