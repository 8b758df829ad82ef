"""The numeric layer: compiled kernels, losses, problems, ``solve_ivp`` and results.

Everything every gradient route shares and nothing any of them is judged on: the
right-hand side ``f`` and its entry-wise Jacobians, the loss and its partial
derivatives, validated problems, the solver wrapper with its clear failures, dense
output, and the :class:`Gradient` result.  Imports the symbolic layer only.
"""

from .._lazy import lazy_exports

_EXPORTS = {
    "CallableLoss": "loss",
    "FinalLoss": "loss",
    "IntegralLoss": "loss",
    "SumLoss": "loss",
    "Loss": "loss",
    "ObservationLoss": "loss",
    "Problem": "problem",
    "Gradient": "result",
    "SolveResult": "solve",
    "forward": "solve",
    "integrate": "solve",
    "SOLVERS": "solve",
    "EXPLICIT": "solve",
    "IMPLICIT": "solve",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
