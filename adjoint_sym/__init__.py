"""adjoint_sym: state the adjoint method of neural ODEs symbolically, run it, verify it."""

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
from .methods import gradient, methods
from .parse import parse_expression
from .problem import Problem
from .result import Gradient
from .system import ODESystem

try:
    __version__ = version("adjoint_sym")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

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
    "SolverFailedError",
    "UnsupportedExpressionError",
    "__version__",
    "gradient",
    "methods",
    "parse_expression",
]
