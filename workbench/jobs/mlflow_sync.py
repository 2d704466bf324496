"""Mirror a finished run directory into MLflow, when ``MLFLOW_TRACKING_URI`` says where.

What goes where:

- ``params.json``: MLflow parameters (text as ``mlflow.log_param`` writes it; lists and dicts as JSON);
- ``metrics.json``: numbers as metrics, lists of numbers as a metric history (one step per item,
  e.g. one per fold), nested dicts flattened to ``outer.inner``; anything else as a
  ``metric.<name>`` tag;
- the executed notebook, ``report.html``, ``artifacts/`` and the run's JSON records as artifacts;
- tags: run name, status, owner, workbench run id and directory, git commit and branch (from
  ``env.json``), and the error summary on failure.

Logging the same run directory twice returns the MLflow run logged the first time. The experiment
is ``$MLFLOW_EXPERIMENT_NAME``, else ``workbench-<notebook name>``. Needs ``workbench[mlflow]``.
"""

from __future__ import annotations

import json
import os
import re
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .._redact import redact, redact_url
from ..runs.records import (
    ARTIFACTS_DIR,
    ENV_FILE,
    INPUTS_FILE,
    METRICS_FILE,
    PARAMS_FILE,
    REPORT_FILE,
    STATUS_FILE,
    InvalidRunError,
    RunRecord,
)

TRACKING_URI_ENV = "MLFLOW_TRACKING_URI"
EXPERIMENT_ENV = "MLFLOW_EXPERIMENT_NAME"
SYNCED_TAG = "workbench.synced"
RUN_TAG = "workbench.run"  # the run directory's name: unique across a shared runs directory
_RECORD_FILES = (STATUS_FILE, PARAMS_FILE, METRICS_FILE, ENV_FILE, INPUTS_FILE)
_BAD_KEY = re.compile(r"[^\w.\- /]+")
_MAX_PARAM, _MAX_TAG, _BATCH = 6000, 8000, 100


def _millis(stamp: str | None) -> int | None:
    if not stamp:
        return None
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def _text(value: Any, limit: int) -> str:
    """``str()`` for scalars (as ``mlflow.log_param`` does), JSON for lists and dicts; cut to ``limit``."""
    text = json.dumps(value, sort_keys=True, default=str) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _key(name: str) -> str:
    return _BAD_KEY.sub("_", str(name)).strip("/ ") or "_"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def flatten_metrics(metrics: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(name, value)`` pairs with nested dicts joined by dots: ``{"a": {"b": 1}}`` -> ``("a.b", 1)``."""
    for name, value in metrics.items():
        key = f"{prefix}{_key(name)}"
        if isinstance(value, dict) and value:
            yield from flatten_metrics(value, prefix=f"{key}.")
        else:
            yield key, value


def _batches(items: list[Any], size: int = _BATCH) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _experiment_id(client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return client.create_experiment(name)
    except MlflowException:  # another worker of a sweep created it first
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _tags(rec: RunRecord) -> dict[str, str]:
    tags = {
        RUN_TAG: rec.path.name,
        "workbench.run_id": rec.run_id,
        "workbench.status": rec.state,
        "workbench.owner": rec.owner,
        "workbench.notebook": rec.notebook,
        "workbench.run_dir": str(rec.path.resolve()),
        "mlflow.user": rec.owner,
        "mlflow.source.name": rec.notebook,
        "mlflow.source.type": "JOB",
    }
    if rec.duration_s is not None:
        tags["workbench.duration_s"] = f"{rec.duration_s:.3f}"
    if rec.error:
        err = rec.error
        where = f"cell {err['cell']}: " if err.get("cell") is not None else ""
        summary = err.get("summary") or f"{where}{err.get('ename', 'Error')}: {err.get('evalue', '')}".strip(": ")
        tags["workbench.error"] = _text(summary, _MAX_TAG)
    git = _env(rec).get("git") or {}
    if isinstance(git, dict):
        tags |= {"mlflow.source.git.commit": git.get("commit"), "mlflow.source.git.branch": git.get("branch")}
        if git.get("dirty") is not None:
            tags["workbench.git_dirty"] = str(bool(git["dirty"])).lower()
    return {k: str(v) for k, v in tags.items() if v}


def _plain_file(path: Path) -> bool:
    """A regular file, not a symlink to something outside the run."""
    return path.is_file() and not path.is_symlink()


def _env(rec: RunRecord) -> dict[str, Any]:
    try:
        return rec.read_extra(ENV_FILE, dict, {})
    except (OSError, InvalidRunError):
        return {}


def _log(rec: RunRecord, uri: str) -> str:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = os.environ.get(EXPERIMENT_ENV) or f"workbench-{Path(rec.notebook).stem or 'runs'}"
    experiment_id = _experiment_id(client, experiment)
    for found in client.search_runs([experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{rec.path.name}'"):
        if found.data.tags.get(SYNCED_TAG) == "true":
            return found.info.run_id
        client.delete_run(found.info.run_id)  # an interrupted earlier attempt: log it again in full

    start, end = _millis(rec.start), _millis(rec.end)
    run_id = client.create_run(experiment_id, start_time=start, tags=_tags(rec), run_name=rec.name).info.run_id
    stamp = end or start or 0
    params = [Param(_key(k), _text(v, _MAX_PARAM)) for k, v in rec.params.items()]
    metrics, tags = [], []
    for key, value in flatten_metrics(rec.metrics):
        if _is_number(value):
            metrics.append(Metric(key, float(value), stamp, 0))
        elif isinstance(value, list) and value and all(_is_number(v) for v in value):
            metrics.extend(Metric(key, float(v), stamp, step) for step, v in enumerate(value))
        else:
            tags.append(RunTag(f"metric.{key}", _text(value, _MAX_TAG)))
    for batch in _batches(params):
        client.log_batch(run_id, params=batch)
    for batch in _batches(tags):
        client.log_batch(run_id, tags=batch)
    for batch in _batches(metrics, 1000):
        client.log_batch(run_id, metrics=batch)

    for notebook in sorted(rec.path.glob("*.ipynb")):
        if _plain_file(notebook):
            client.log_artifact(run_id, str(notebook))
    if _plain_file(rec.path / REPORT_FILE):
        client.log_artifact(run_id, str(rec.path / REPORT_FILE))
    artifacts = rec.path / ARTIFACTS_DIR
    if artifacts.is_dir() and any(artifacts.iterdir()):
        client.log_artifacts(run_id, str(artifacts), ARTIFACTS_DIR)
    for name in _RECORD_FILES:
        if _plain_file(rec.path / name):
            client.log_artifact(run_id, str(rec.path / name), "workbench")

    client.set_terminated(
        run_id, status={"succeeded": "FINISHED", "pruned": "KILLED"}.get(rec.state, "FAILED"), end_time=end
    )
    client.set_tag(run_id, SYNCED_TAG, "true")
    return run_id


def log_run(run_dir: Path, *, strict: bool = False) -> str | None:
    """Log a finished run directory to MLflow; returns the MLflow run id.

    A no-op returning ``None`` when ``MLFLOW_TRACKING_URI`` is unset. A tracking server that fails
    gives a warning and ``None`` (``strict=True`` raises instead), so it never fails the run itself.
    A directory that is not a finished run raises ``ValueError`` / ``FileNotFoundError``.

    Parameters
    ----------
    run_dir : pathlib.Path
        The run's directory.
    strict : bool, default False
        Raise when the tracking server fails instead of warning.

    Returns
    -------
    str or None
        The MLflow run id, or ``None`` when nothing was logged.

    Examples
    --------
    Without a tracking server configured it does nothing:

    >>> import os
    >>> import tempfile
    >>> from workbench.runs import RunRecord, new_run_dir
    >>> path, run_id = new_run_dir(tempfile.mkdtemp(), "train", owner="ana")
    >>> RunRecord(path=path, run_id=run_id, name="train", notebook="train.ipynb", state="succeeded").write_status()
    >>> "MLFLOW_TRACKING_URI" in os.environ or log_run(path) is None
    True

    With one, it returns the MLflow run id:

    .. code-block:: python

        os.environ["MLFLOW_TRACKING_URI"] = "sqlite:///mlflow.db"
        log_run(path)  # '5f0c...'
    """
    uri = os.environ.get(TRACKING_URI_ENV, "").strip()
    if not uri:
        return None
    rec = RunRecord.read(run_dir)
    if rec.state == "running":
        raise ValueError(f"run {rec.path.name} is still running; log it to MLflow once it has finished")
    try:
        return _log(rec, uri)
    except Exception as exc:
        if strict:
            raise
        shown = redact_url(uri, keep_path=True)
        message = redact(str(exc).replace(uri, shown)).splitlines()[0][:300] if str(exc) else ""
        if isinstance(exc, ImportError):
            message += "; install it with: pip install 'workbench[mlflow]'"
        warnings.warn(
            f"could not log run {rec.path.name} to MLflow at {shown} ({type(exc).__name__}: {message}); "
            "the run itself is unaffected",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
