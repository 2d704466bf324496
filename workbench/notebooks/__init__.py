"""The reference notebooks (``notebooks/`` of the repository), shipped inside the package, and their helpers.

``train`` (data → features → ``train_cv``), ``explain`` (permutation importance, PDP/ICE, SHAP),
``stack`` (stacking training runs) and ``submission`` (a checked ``submission.csv``). Each has a
cell tagged ``parameters``, so ``workbench run`` can run it as a job.

The helpers here join the library to recorded runs, so they sit above the jobs layer:
:func:`explain_report` runs the explain notebook for a model; :func:`find_train_runs` and
:func:`load_stack_runs` gather the saved results of training runs for a stack.

Examples
--------
>>> from workbench.notebooks import notebook_path
>>> notebook_path("train").name
'train.ipynb'
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .._lazy import lazy_exports

REFERENCE_NOTEBOOKS: tuple[str, ...] = ("train", "explain", "stack", "submission")

_EXPORTS = {
    "explain_notebook": ("explain_report",),
    "stack_runs": ("RunMember", "StackRuns", "find_train_runs", "load_stack_runs"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, eager=["REFERENCE_NOTEBOOKS", "notebook_path"])


def notebook_path(name: str) -> Path:
    """Path of reference notebook ``name`` (one of :data:`REFERENCE_NOTEBOOKS`)."""
    if name not in REFERENCE_NOTEBOOKS:
        raise ValueError(f"no reference notebook {name!r}; choose one of {REFERENCE_NOTEBOOKS}")
    return Path(str(resources.files(__package__).joinpath(f"{name}.ipynb")))
