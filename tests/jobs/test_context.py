"""workbench.record / artifact_path inside a job and interactively, and seeding."""

import json
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

import workbench
from workbench.jobs import context


@pytest.fixture
def job_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(context.RUN_DIR_ENV, str(tmp_path))
    monkeypatch.setattr(context, "_loaded_for", None)
    return tmp_path


def test_record_writes_metrics_json(job_dir):
    assert workbench.record("auc", np.float64(0.75)) == np.float64(0.75)
    workbench.record("folds", np.array([0.7, 0.8]))
    workbench.record("by_class", pd.Series({"a": 1, "b": 2}))
    workbench.record("info", {"model": "lgbm", "trees": np.int64(12)})
    workbench.record("auc", 0.8)  # the last value wins
    assert json.loads((job_dir / "metrics.json").read_text()) == {
        "auc": 0.8,
        "folds": [0.7, 0.8],
        "by_class": {"a": 1, "b": 2},
        "info": {"model": "lgbm", "trees": 12},
    }
    assert context.read_metrics(job_dir) == context.recorded()
    with pytest.raises(TypeError, match=r"cannot record 'model': a object is not .*artifact_path\('model'\)"):
        workbench.record("model", object())
    with pytest.raises(TypeError, match="a DataFrame is not"):
        workbench.record("table", pd.DataFrame({"a": [1]}))
    with pytest.raises(ValueError, match="non-empty metric name"):
        workbench.record("", 1)


def test_artifact_paths_stay_inside_the_run(job_dir):
    path = workbench.artifact_path("preds/test.csv")
    assert path == job_dir / "artifacts" / "preds" / "test.csv" and path.parent.is_dir()
    for bad in ("../escape.txt", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(ValueError):
            workbench.artifact_path(bad)


def test_interactive_use_keeps_values_in_memory(monkeypatch):
    monkeypatch.delenv(context.RUN_DIR_ENV, raising=False)
    monkeypatch.setattr(context, "_loaded_for", "something else")
    monkeypatch.setattr(context, "_warned", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        workbench.record("x", 1)
        workbench.record("y", 2)
        scratch = workbench.artifact_path("model.txt")
    assert context.recorded() == {"x": 1, "y": 2}
    messages = [str(w.message) for w in caught]
    assert len(messages) == 2 and "not running as a workbench job" in messages[0]
    assert scratch.parent.name.startswith("workbench-artifacts-")


def test_lazy_seeding_seeds_numpy_on_first_import():
    code = (
        "import sys, random; from workbench.jobs.context import seed_everything; seed_everything(11, lazy=True); "
        "assert 'numpy' not in sys.modules; a = random.random(); import numpy as np; print(a, np.random.rand())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    import random

    assert float(out[0]) == random.Random(11).random()
    assert float(out[1]) == np.random.RandomState(11).rand()


def test_import_workbench_jobs_stays_light():
    code = (
        "import sys, workbench; workbench.record; import workbench.jobs; "
        "print(sorted(m for m in ('pandas', 'numpy', 'papermill', 'nbformat', 'yaml') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
