"""The installed version, from the package metadata (one place, read by the root and the CLI)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("adjoint_sym")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"
