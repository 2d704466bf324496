"""Package namespaces whose names load from their modules on first use, so importing a package costs nothing."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, Iterable[str]], eager: Iterable[str] = ()
) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` for ``package``, whose names live in its modules.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : mapping of str to iterable of str
        Each module of the package (relative name) and the public names it defines.
    eager : iterable of str
        Public names the package's ``__init__`` defines itself.

    Returns
    -------
    tuple
        ``(__all__, __getattr__, __dir__)``, to assign at the package's top level.

    Examples
    --------
    >>> names, getattr_, dir_ = lazy_exports("json", {"decoder": ("JSONDecodeError",)})
    >>> names, getattr_("JSONDecodeError").__name__
    (['JSONDecodeError'], 'JSONDecodeError')
    """
    where = {name: module for module, names in exports.items() for name in names}
    public = sorted([*eager, *where])

    def __getattr__(name: str) -> Any:
        if name in where:
            return getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted([*public, *exports])

    return public, __getattr__, __dir__
