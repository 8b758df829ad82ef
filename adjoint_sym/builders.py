"""Ready-made systems: neural ODEs, linear systems, Lotka-Volterra, Robertson, SIR.

The public home of :mod:`adjoint_sym.symbolic.builders`, which holds the implementation.
"""

from .symbolic.builders import (
    TIME_MODES,
    linear_system,
    lotka_volterra,
    neural_ode,
    robertson,
    sir,
    two_layer,
)

__all__ = [
    "TIME_MODES",
    "linear_system",
    "lotka_volterra",
    "neural_ode",
    "robertson",
    "sir",
    "two_layer",
]
