import json

import pytest

from workbench.runs import METRICS_FILE, PARAMS_FILE, RunRecord, list_runs, new_run_dir


def _make(tmp_path, name, state, auc):
    path, run_id = new_run_dir(tmp_path, name, owner="ana")
    (path / PARAMS_FILE).write_text(json.dumps({"lr": auc / 10}))
    (path / METRICS_FILE).write_text(json.dumps({"cv_auc": auc}))
    RunRecord(path=path, run_id=run_id, name=name, notebook="train.ipynb", state=state, owner="ana").write_status()
    return path


def test_run_dirs_are_unique_and_listed(tmp_path):
    a = _make(tmp_path, "train lgbm/1", "succeeded", 0.84)
    b = _make(tmp_path, "train", "failed", 0.80)
    c = _make(tmp_path, "train", "succeeded", 0.86)
    (tmp_path / "not-a-run").mkdir()
    assert len({a, b, c}) == 3 and "train-lgbm-1" in a.name
    table = list_runs(tmp_path, sort="cv_auc")
    assert list(table["metric.cv_auc"]) == [0.86, 0.84, 0.80]
    assert list(list_runs(tmp_path, status="failed")["run"]) == [b.name]
    assert list(list_runs(tmp_path, sort="-cv_auc")["metric.cv_auc"]) == [0.80, 0.84, 0.86]
    rec = RunRecord.read(c)
    assert rec.owner == "ana" and rec.params == {"lr": 0.086} and rec.report is None
    with pytest.raises(ValueError, match="no metric 'auc'"):
        list_runs(tmp_path, sort="auc")
    with pytest.raises(ValueError, match="unknown status"):
        list_runs(tmp_path, status="done")
    assert list_runs(tmp_path / "missing").empty
