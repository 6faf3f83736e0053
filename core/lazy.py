"""Names of a package that load their module at first use (PEP 562 module ``__getattr__``).

A package re-exports names from its modules so callers have one import path, but importing a
heavy module (pandas, the HTTP stack) only because a light name was asked for would slow the
command line's start. Each such package hands its table of homes to :func:`lazy_names`.
"""

from __future__ import annotations

import sys
from importlib import import_module
from typing import Any, Callable, Mapping


def lazy_names(package: str, homes: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``: ``homes`` maps each name to the
    module that defines it (absolute, or relative to ``package`` with a leading dot)."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(homes[name], package), name)

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *homes})

    return __getattr__, __dir__
