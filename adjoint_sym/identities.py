"""Identities of the adjoint, proved symbolically (each a :class:`Proof`).

The public home of :mod:`adjoint_sym.symbolic.identities`, which holds the implementation.
"""

from .symbolic.identities import (
    Proof,
    adjoint_forms_agree,
    augmented_adjoint_is_three_blocks,
    hamiltonian_conserved,
    hamiltonian_rate,
    tangent_adjoint_pairing,
)

__all__ = [
    "Proof",
    "adjoint_forms_agree",
    "augmented_adjoint_is_three_blocks",
    "hamiltonian_conserved",
    "hamiltonian_rate",
    "tangent_adjoint_pairing",
]
