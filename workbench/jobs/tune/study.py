"""A study's trials as a table, best first, and its record in the run store."""

from __future__ import annotations

import math
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...models.tuning import best_first, trial_row
from ...runs.layout import current_owner
from ...runs.records import RunRecord, utcnow
from .storage import SURPLUS_ATTR, counts, study_dir

if TYPE_CHECKING:
    import pandas as pd


def trials_table(study: Any, metric: str = "value") -> pd.DataFrame:
    """One row per trial, best first: ``trial``, ``state``, the metric, ``step`` (last reported step),
    ``param.*``, ``duration_s``, ``run`` (``<owner folder>/<run folder>``) and ``error``."""
    import pandas as pd

    rows = [
        {
            **trial_row(t, metric, digits=3),
            "run": t.user_attrs.get("run"),
            "error": t.user_attrs.get("error") or t.system_attrs.get("workbench:fail_reason"),
        }
        for t in study.get_trials(deepcopy=False)
        if not t.system_attrs.get(SURPLUS_ATTR)
    ]
    table = pd.DataFrame(rows, columns=None if rows else ["trial", "state", metric, "step", "duration_s", "run"])
    return best_first(table, study, metric)


def best_run(study: Any) -> str | None:
    """``<owner folder>/<run folder>`` of the best completed trial, or None."""
    try:
        return study.best_trial.user_attrs.get("run")
    except ValueError:
        return None


def write_study_record(
    runs_root: str | os.PathLike[str], study: Any, notebook: str, metric: str, state: str, start: str | None = None
) -> RunRecord:
    """The study's ``status.json`` (and metrics) in ``study-<name>/``, so it is listed with the runs."""
    from ...runs.records import METRICS_FILE, write_record

    path = study_dir(Path(runs_root), study.study_name)
    path.mkdir(parents=True, exist_ok=True)
    n = counts(study)
    metrics: dict[str, Any] = {f"trials_{k}": n.get(k, 0) for k in ("complete", "pruned", "fail")}
    try:
        best = study.best_value
        if math.isfinite(best):
            metrics[metric] = best
    except ValueError:
        pass
    write_record(path / METRICS_FILE, metrics)
    record = RunRecord(
        path=path,
        run_id=f"study-{study.study_name}",
        name=f"study {study.study_name}",
        notebook=notebook,
        state=state,
        start=start or utcnow(),
        end=None if state == "running" else utcnow(),
        study=study.study_name,
        owner=current_owner(),
        host=platform.node(),
        pid=os.getpid(),
    )
    record.write_status()
    return record
