"""The symbolic layer: models as SymPy expressions, their adjoints, and proofs about them.

Parsing through a whitelist (never ``eval``), the :class:`ODESystem`, matrix calculus on
SymPy matrix trees, the augmented system and its adjoint, identities proved as
:class:`~adjoint_sym.symbolic.identities.Proof` objects, and the LaTeX/Markdown printers.
Imports only :mod:`adjoint_sym.errors` and SymPy.
"""

from .augmented import Adjoint, AugmentedSystem
from .parse import parse_expression
from .system import ODESystem

__all__ = ["Adjoint", "AugmentedSystem", "ODESystem", "parse_expression"]
