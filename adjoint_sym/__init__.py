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
from .parse import parse_expression
from .system import ODESystem

try:
    __version__ = version("adjoint_sym")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

__all__ = [
    "Adjoint",
    "AdjointSymError",
    "AugmentedSystem",
    "GradientMismatchError",
    "InvalidModelError",
    "ODESystem",
    "SolverFailedError",
    "UnsupportedExpressionError",
    "__version__",
    "parse_expression",
]
