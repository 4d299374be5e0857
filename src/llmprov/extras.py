"""Optional features behind named extras: import their package, or say which extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

# package imported -> (extra that installs it, the feature that needs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "matplotlib": ("chart", "llmprov bench --chart"),
    "testinfra": ("verify", "llmprov verify"),
    "huggingface_hub": ("hf", "hf:// model pulls"),
}


class MissingExtra(ImportError):
    """An optional package is not installed; the message is a one-line hint naming the extra."""


def require(package: str) -> ModuleType:
    """The package, imported; MissingExtra naming the extra to install when it is absent."""
    extra, feature = EXTRAS[package]
    try:
        return importlib.import_module(package)
    except ImportError:
        raise MissingExtra(
            f"{feature} needs {package}, which is not installed: pip install 'llmprov[{extra}]'"
        ) from None
