"""Inside a notebook: record metrics, write artifacts and seed random generators.

The runner sets ``WORKBENCH_RUN_DIR`` (the run directory) and ``WORKBENCH_SEED`` in each job
kernel before its first cell. :func:`record` then writes ``metrics.json`` there and
:func:`artifact_path` points into ``artifacts/``. Run interactively (no run directory), values
are kept in memory and artifacts go to a scratch folder, with a warning saying so.

Examples
--------
Outside a run (as here) values stay in memory and artifacts go to a scratch folder, with a warning:

>>> import warnings
>>> import workbench
>>> with warnings.catch_warnings():
...     warnings.simplefilter("ignore")
...     workbench.record("cv_auc", 0.851)
...     print(workbench.artifact_path("cv").name)
0.851
cv
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import os
import random
import sys
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from ..runs.layout import default_runs_root
from ..runs.records import ARTIFACTS_DIR, METRICS_FILE, RunRecord, write_record
from ..runs.safe_open import read_json

RUN_DIR_ENV = "WORKBENCH_RUN_DIR"
SEED_ENV = "WORKBENCH_SEED"

_memory: dict[str, Any] = {}
_loaded_for: str | None = None
_scratch: Path | None = None
_warned: set[str] = set()


def current_run_dir() -> Path | None:
    """The run directory of the job this kernel runs in, or ``None`` interactively."""
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


def current_runs_dir() -> Path:
    """Where a notebook looks up other runs: the runs root of this job's run directory (what
    ``--runs-dir`` named; the run itself is in its owner's folder below it), or interactively
    :func:`~workbench.runs.default_runs_root`.

    Examples
    --------
    >>> import os
    >>> os.environ.get("WORKBENCH_RUN_DIR") is None and str(current_runs_dir()) == str(default_runs_root())
    True
    """
    run_dir = current_run_dir()
    return run_dir.parent.parent if run_dir is not None else default_runs_root()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, stacklevel=3)


def _jsonable(value: Any, name: str) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, name) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v, name) for v in value]
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 1) == 0:  # numpy scalars
        return _jsonable(item(), name)
    if callable(getattr(value, "to_dict", None)) and getattr(value, "ndim", 0) == 1:  # pandas Series: index → value
        return _jsonable(value.to_dict(), name)
    tolist = getattr(value, "tolist", None)
    if callable(tolist) and getattr(value, "ndim", 1) == 1:  # numpy vectors, pandas Index
        return _jsonable(tolist(), name)
    raise TypeError(
        f"cannot record {name!r}: a {type(value).__name__} is not a number, string, list or dict; "
        f"save it as a file under workbench.artifact_path({name!r}) instead"
    )


def _metrics() -> dict[str, Any]:
    """The recorded values of this job (read once from its ``metrics.json``)."""
    global _loaded_for
    run_dir = current_run_dir()
    key = str(run_dir) if run_dir else None
    if key != _loaded_for:
        _memory.clear()
        if run_dir is not None and (run_dir / METRICS_FILE).is_file():
            _memory.update(read_json(run_dir, [METRICS_FILE]))
        _loaded_for = key
    return _memory


def record(name: str, value: Any) -> Any:
    """Record a metric or small result (number, string, list, dict) of this run; returns ``value``.

    In a job it lands in ``metrics.json`` of the run directory (written atomically, the last value
    for a name wins), where ``workbench runs``/``compare``/sweeps read it.

    Parameters
    ----------
    name : str
        The metric's name (not empty).
    value : number, str, bool, None, list, dict, NumPy scalar or vector, or pandas Series
        What is recorded.

    Returns
    -------
    object
        ``value``, so a cell can record and show it at once.

    Raises
    ------
    ValueError
        On an empty name.
    TypeError
        On a value of another kind (save it with :func:`artifact_path` instead).

    Examples
    --------
    >>> import warnings
    >>> import workbench
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # not a run: kept in memory
    ...     workbench.record("cv_auc", 0.851)
    0.851
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"record() needs a non-empty metric name, got {name!r}")
    metrics = _metrics()
    metrics[name] = _jsonable(value, name)
    run_dir = current_run_dir()
    if run_dir is None:
        _warn_once(
            "record",
            "not running as a workbench job: recorded values stay in memory "
            "(see workbench.jobs.recorded()); run the notebook with `workbench run` to keep them",
        )
    else:
        write_record(run_dir / METRICS_FILE, metrics)
    return value


def recorded() -> dict[str, Any]:
    """A copy of everything this kernel has recorded so far."""
    return dict(_metrics())


def artifact_path(name: str) -> Path:
    """Where to write artifact ``name`` (a file or folder, e.g. ``"oof.parquet"`` or ``"cv"``).

    In a job that is ``<run>/artifacts/<name>`` (parent folders are created); interactively a
    scratch folder. ``name`` must be relative and stay inside the artifacts folder.

    Examples
    --------
    >>> import warnings
    >>> import pandas as pd
    >>> import workbench
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # not a run: a scratch folder
    ...     path = workbench.artifact_path("preds/test_pred.csv")
    >>> pd.DataFrame({"id": [1, 2], "p": [0.1, 0.9]}).to_csv(path, index=False)
    >>> path.parent.name, path.name
    ('preds', 'test_pred.csv')
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"artifact_path() needs a non-empty relative name, got {name!r}")
    rel = PurePosixPath(name.replace("\\", "/"))
    if rel.is_absolute() or ".." in rel.parts:
        raise ValueError(
            f"artifact name {name!r} must be a relative path inside the artifacts folder (no '..', not absolute)"
        )
    run_dir = current_run_dir()
    if run_dir is None:
        global _scratch
        if _scratch is None:
            _scratch = Path(tempfile.mkdtemp(prefix="workbench-artifacts-"))
        _warn_once("artifact", f"not running as a workbench job: artifacts go to the scratch folder {_scratch}")
        base = _scratch
    else:
        base = run_dir / ARTIFACTS_DIR
    path = base.joinpath(*rel.parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def read_metrics(run: str | os.PathLike[str] | RunRecord) -> dict[str, Any]:
    """The values a finished (or running) run recorded, as a dict.

    Examples
    --------
    >>> import tempfile
    >>> from workbench.runs import METRICS_FILE, new_run_dir, write_record
    >>> path, run_id = new_run_dir(tempfile.mkdtemp(), "train", owner="ana")
    >>> _ = write_record(path / METRICS_FILE, {"cv_auc": 0.851})
    >>> read_metrics(path)["cv_auc"]
    0.851
    """
    path = run.path if isinstance(run, RunRecord) else Path(run)
    return read_json(path, [METRICS_FILE]) if (path / METRICS_FILE).exists() else {}


def seed_everything(seed: int, lazy: bool = False) -> None:
    """Seed Python's ``random`` and NumPy's global generator.

    With ``lazy``, NumPy is seeded when something first imports it rather than imported here, so
    a kernel that never uses NumPy does not pay for it.
    """
    random.seed(seed)
    if "numpy" in sys.modules or not lazy:
        try:
            import numpy as np
        except ImportError:
            return
        np.random.seed(seed % 2**32)
    elif not any(isinstance(f, _SeedNumpyOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _SeedNumpyOnImport(seed))


class _SeedNumpyOnImport(importlib.abc.MetaPathFinder):
    """Seeds ``numpy.random`` right after the first ``import numpy``, then steps aside."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "numpy":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        loader = getattr(spec, "loader", None)
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run_module, seed = loader.exec_module, self.seed

        def exec_module(module: Any) -> None:
            run_module(module)
            module.random.seed(seed % 2**32)

        loader.exec_module = exec_module
        return spec


def _job_started(run_dir: str, seed: int) -> None:
    """Run (silently) by the job kernel right before the first cell: where to record, and the seeds."""
    os.environ[RUN_DIR_ENV] = run_dir
    os.environ[SEED_ENV] = str(seed)
    seed_everything(seed, lazy=True)
