"""The ``adjoint-sym`` command line and its spec files (TOML or JSON)."""

from .app import Progress, build_parser, derive_text, main

__all__ = ["Progress", "build_parser", "derive_text", "main"]
