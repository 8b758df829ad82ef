"""The symbolic layer: models as SymPy expressions, their adjoints, and proofs about them.

Parsing through a whitelist (never ``eval``), tracing of Python functions (``trace``,
``standins``), the :class:`ODESystem`, matrix calculus on SymPy matrix trees, the augmented
system and its adjoint (a running cost's Hamiltonian terms in ``running_cost``), identities
proved as :class:`~adjoint_sym.symbolic.identities.Proof` objects, and the derivation written
once (``document``, with its names chosen in ``notation``, the loss's terms in ``loss_terms``
and a running cost's lines in ``cost_lines``) for the LaTeX/Markdown (``render``) and
plain-text (``text``) printers.  Imports only :mod:`adjoint_sym.errors`, SymPy and NumPy
(whose protocols the stand-ins of a traced function answer).
"""

from .augmented import Adjoint, AugmentedSystem
from .parse import parse_expression
from .system import ODESystem

__all__ = ["Adjoint", "AugmentedSystem", "ODESystem", "parse_expression"]
