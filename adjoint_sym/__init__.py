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
from .numeric.loss import CallableLoss, FinalLoss, IntegralLoss, Loss, ObservationLoss, SumLoss
from .numeric.result import Gradient
from .symbolic import Adjoint, AugmentedSystem, ODESystem, parse_expression

#: Public names of the numeric and upper layers and the module each lives in.
_LAZY = {
    "Problem": "numeric.problem",
    "gradient": "verify.routes",
    "methods": "verify.routes",
    "value_and_grad": "verify.routes",
    "check": "verify.checker",
    "compare": "verify.checker",
    "assert_gradients_agree": "verify.checker",
    "convergence_study": "verify.convergence",
    "Report": "verify.report",
    "taylor_test": "reference.taylor",
    "check_gradient_function": "testing.gradient_function",
    "load_spec": "cli.spec",
    "verify_derivation": "verify.derivation",
    "DerivationVerdict": "verify.claimed.verdict",
    "PieceVerdict": "verify.claimed.verdict",
    "hvp": "verify.hessian",
    "check_hvp": "verify.hessian",
    "HessianVectorProduct": "numeric.second_order",
    "SecondOrderAdjoint": "symbolic.second_order",
    "taylor_test_hvp": "reference.hessian_taylor",
    "check_hvp_function": "testing.hessian",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = [
    "Adjoint",
    "AdjointSymError",
    "AugmentedSystem",
    "CallableLoss",
    "DerivationVerdict",
    "FinalLoss",
    "Gradient",
    "GradientMismatchError",
    "HessianVectorProduct",
    "IntegralLoss",
    "InvalidModelError",
    "Limits",
    "Loss",
    "ODESystem",
    "ObservationLoss",
    "PieceVerdict",
    "Problem",
    "Report",
    "SecondOrderAdjoint",
    "SolverFailedError",
    "SumLoss",
    "UnsupportedExpressionError",
    "__version__",
    "assert_gradients_agree",
    "check",
    "check_gradient_function",
    "check_hvp",
    "check_hvp_function",
    "compare",
    "convergence_study",
    "gradient",
    "hvp",
    "limits",
    "load_spec",
    "methods",
    "parse_expression",
    "taylor_test",
    "taylor_test_hvp",
    "value_and_grad",
    "verify_derivation",
]
