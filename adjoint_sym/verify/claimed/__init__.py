"""The parts of the derivation verifier (:func:`adjoint_sym.verify.derivation.verify_derivation`).

==============  ===================================================================
module          what it does
==============  ===================================================================
``pieces``      the claim's pieces, read through the whitelist; the names they use
``latex``       LaTeX pieces: SymPy's LaTeX parser, then the same whitelist
``truth``       what each piece must equal, and the known mistakes it may make
``decide``      counterexample point, bounded symbolic proof, or undecided
``experiment``  the claim integrated through the backward sweep, against the references
``verdict``     the results and their Markdown, LaTeX, JSON and text forms
==============  ===================================================================
"""

from .verdict import DerivationVerdict, PieceVerdict

__all__ = ["DerivationVerdict", "PieceVerdict"]
