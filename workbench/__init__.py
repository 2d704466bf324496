"""workbench: Kaggle-style machine learning from notebook to job to team report.

Subpackages load on first use, so ``import workbench`` stays fast enough for the CLI.

Layers, lowest first; a module imports only from its own layer or below, and private names
(``_x``) never cross packages (checked by import-linter and ``tests/test_architecture.py``):

1. ``datasets``: the bundled data.
2. ``data``: column roles, folds, parameter validation, the result protocol.
3. ``models``: cross-validated training (``train_cv``), model presets and safe model storage.
4. ``features``: leak-free feature transformers.
5. ``stacking`` and ``explain``: stacks and blends; permutation importance, PDP/ICE, SHAP.
6. ``runs``: the run store (layout, records, no-follow reads).
7. ``profiles``: the compute profiles of ``hub/profiles.yaml``.
8. ``jobs``: notebooks as recorded runs, sweeps, Kubernetes Jobs, MLflow.
9. ``hub`` and ``notebooks``: the team hub and its services; the reference notebooks' helpers.
10. ``deploy``: image locks and Helm values.
11. ``cli``: the ``workbench`` command.

Examples
--------
>>> import workbench
>>> workbench.datasets.load_telco().shape
(7043, 21)
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
_FUNCTIONS = {"record": "jobs.context", "artifact_path": "jobs.context", "report": "models.trial"}
__all__ += list(_FUNCTIONS)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FUNCTIONS:
        return getattr(importlib.import_module(f"{__name__}.{_FUNCTIONS[name]}"), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
