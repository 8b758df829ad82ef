"""Lazy re-exports for package ``__init__`` modules (PEP 562).

The numeric layer pulls in ``scipy.integrate``; a package that re-exports its names
loads the defining module on first attribute access, so ``import adjoint_sym`` and every
command-line call stay quick.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module


def lazy_exports(package: str, names: Mapping[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """``__getattr__`` and ``__dir__`` for ``package`` that import ``names[name]`` on demand.

    ``names`` maps an exported name to the module (relative to ``package``) defining it;
    the value is cached in ``namespace`` (the package's globals) after the first access.
    """

    def __getattr__(name: str):
        if name in names:
            value = getattr(import_module(f".{names[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(namespace.get("__all__", names))

    return __getattr__, __dir__
