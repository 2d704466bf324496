"""workbench: Kaggle-style machine learning from notebook to job to team report.

Subpackages load on first use, so ``import workbench`` stays fast enough for the CLI:

>>> import workbench
>>> df = workbench.datasets.load_telco()
"""

from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__

_SUBMODULES = (
    "datasets",
    "data",
    "models",
    "features",
    "stacking",
    "explain",
    "runs",
    "profiles",
    "jobs",
    "hub",
    "deploy",
    "notebooks",
)

__all__ = ["__version__", *_SUBMODULES]


# Functions notebooks call as ``workbench.<name>``, loaded from their module on first use.
_FUNCTIONS = {"record": "jobs.context", "artifact_path": "jobs.context"}
__all__ += list(_FUNCTIONS)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
