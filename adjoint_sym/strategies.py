"""Hypothesis strategies for ODE systems, problems and losses (needs ``hypothesis``).

The public home of :mod:`adjoint_sym.testing.strategies`, which holds the implementation.
"""

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
    "final_losses",
    "initial_states",
    "integral_losses",
    "linear_systems",
    "losses",
    "neural_systems",
    "observation_losses",
    "parameter_values",
    "polynomial_systems",
    "problems",
    "register_profiles",
    "run_property",
    "running_cost_losses",
    "systems",
    "time_spans",
]
