"""Public names of a package that are imported on first use, so a CLI starts without torch.

A package lists where each public name lives and hands this module's loader to its
module-level ``__getattr__`` (PEP 562); ``--help`` or a refused setting then never
pays for torch, pandas or SQLAlchemy.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def lazy_exports(package: str, origins: Mapping[str, tuple[str, ...]]) -> Callable[[str], object]:
    """Return a module ``__getattr__`` that imports each name from its submodule when asked.

    Args:
        package: the package's ``__name__``.
        origins: submodule (relative to the package) -> the public names it defines.

    Returns:
        The function to assign to the package's ``__getattr__``. A loaded name is stored in
        the package so the next access is a plain attribute lookup.
    """
    submodule_of = {name: module for module, names in origins.items() for name in names}

    def load(name: str) -> object:
        module = submodule_of.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return load
