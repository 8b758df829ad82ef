"""Hypothesis strategies for ODE systems, problems and losses (needs ``hypothesis``).

The public home of :mod:`adjoint_sym.testing.strategies` and of the hard regimes of
:mod:`adjoint_sym.testing.regimes`, which hold the implementation.
"""

from .testing.regimes import (
    REGIMES,
    drawn_problems,
    equilibrium_problems,
    hard_problems,
    long_span_problems,
    stiff_linear_systems,
    stiff_problems,
    zero_gradient_problems,
)
from .testing.strategies import (
    ACTIVATIONS,
    final_losses,
    initial_states,
    integral_losses,
    linear_systems,
    losses,
    neural_systems,
    observation_losses,
    parameter_values,
    polynomial_systems,
    problems,
    register_profiles,
    run_property,
    running_cost_losses,
    systems,
    time_spans,
)

__all__ = [
    "ACTIVATIONS",
    "REGIMES",
    "drawn_problems",
    "equilibrium_problems",
    "final_losses",
    "hard_problems",
    "initial_states",
    "integral_losses",
    "linear_systems",
    "long_span_problems",
    "losses",
    "neural_systems",
    "observation_losses",
    "parameter_values",
    "polynomial_systems",
    "problems",
    "register_profiles",
    "run_property",
    "running_cost_losses",
    "stiff_linear_systems",
    "stiff_problems",
    "systems",
    "time_spans",
    "zero_gradient_problems",
]
