"""The discrete counterpart: backpropagation through an explicit Runge-Kutta solve.

Discretize-then-optimize: the exact gradient of the computed solution, which converges
to the continuous gradient as the steps shrink.  Shown beside the continuous references,
never their arbiter.  Imports the numeric layer and the references' input helpers.
"""

from .backprop import backprop_gradient

__all__ = ["backprop_gradient"]
