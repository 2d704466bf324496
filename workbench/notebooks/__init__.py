"""The reference notebooks (``notebooks/`` of the repository), shipped inside the package.

``train`` (data → features → ``train_cv``), ``explain`` (permutation importance, PDP/ICE, SHAP),
``stack`` (stacking training runs) and ``submission`` (a checked ``submission.csv``). Each has a
cell tagged ``parameters``, so ``workbench run`` can run it as a job.

>>> from workbench.notebooks import notebook_path
>>> notebook_path("train")
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

REFERENCE_NOTEBOOKS: tuple[str, ...] = ("train", "explain", "stack", "submission")


def notebook_path(name: str) -> Path:
    """Path of reference notebook ``name`` (one of :data:`REFERENCE_NOTEBOOKS`)."""
    if name not in REFERENCE_NOTEBOOKS:
        raise ValueError(f"no reference notebook {name!r}; choose one of {REFERENCE_NOTEBOOKS}")
    return Path(str(resources.files(__package__).joinpath(f"{name}.ipynb")))
