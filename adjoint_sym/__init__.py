"""adjoint_sym: state the adjoint method of neural ODEs symbolically, run it, verify it.

The symbolic core is imported eagerly; the numeric layer (which pulls in
``scipy.integrate``) loads on first use of one of its names, so ``import adjoint_sym``
and every command-line call stay quick.
"""

from ._lazy import lazy_exports
from ._limits import Limits, limits
from ._version import __version__
from .errors import (
    AdjointSymError,
    GradientMismatchError,
    InvalidModelError,
    SolverFailedError,
    UnsupportedExpressionError,
)
from .numeric.loss import CallableLoss, FinalLoss, Loss, ObservationLoss
from .numeric.result import Gradient
from .symbolic import Adjoint, AugmentedSystem, ODESystem, parse_expression

#: Public names of the numeric and upper layers and the module each lives in.
_LAZY = {
    "Problem": "numeric.problem",
    "gradient": "verify.routes",
    "methods": "verify.routes",
    "check": "verify.checker",
    "compare": "verify.checker",
    "assert_gradients_agree": "verify.checker",
    "convergence_study": "verify.convergence",
    "Report": "verify.report",
    "taylor_test": "reference.taylor",
    "check_gradient_function": "testing.gradient_function",
    "load_spec": "cli.spec",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "Adjoint",
    "AdjointSymError",
    "AugmentedSystem",
    "CallableLoss",
    "FinalLoss",
    "Gradient",
    "GradientMismatchError",
    "InvalidModelError",
    "Limits",
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
    "limits",
    "load_spec",
    "methods",
    "parse_expression",
    "taylor_test",
]
