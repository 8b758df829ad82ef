"""Property testing of gradient code: check a gradient function on drawn problems.

:func:`check_gradient_function` runs your gradient function (or the library's) on
problems drawn by :mod:`adjoint_sym.strategies` and compares every quantity against
independent references; :mod:`adjoint_sym.testing.mutants` holds deliberately wrong
adjoints that it must catch, and :mod:`adjoint_sym.testing.pytest_plugin` the pytest
options and fixtures.  :func:`check_hvp_function` does the same for Hessian-vector
products (:mod:`adjoint_sym.testing.hvp_mutants` holds their planted bugs).
"""

from .gradient_function import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    GLOBAL_ERROR_FACTOR,
    REFERENCE_ATOL,
    REFERENCE_RTOL,
    Comparison,
    Row,
    as_gradient,
    assert_gradients_agree,
    check_gradient_function,
    check_problem,
    clear_reference_cache,
    compare_gradients,
    default_references,
    describe,
    mismatch_error,
    reference_gradient,
)
from .hessian import check_hvp_function, check_hvp_problem

__all__ = [
    "DEFAULT_ATOL",
    "DEFAULT_RTOL",
    "GLOBAL_ERROR_FACTOR",
    "REFERENCE_ATOL",
    "REFERENCE_RTOL",
    "Comparison",
    "Row",
    "as_gradient",
    "assert_gradients_agree",
    "check_gradient_function",
    "check_hvp_function",
    "check_hvp_problem",
    "check_problem",
    "clear_reference_cache",
    "compare_gradients",
    "default_references",
    "describe",
    "mismatch_error",
    "reference_gradient",
]
