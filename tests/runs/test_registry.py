"""The run registry on top of run directories: finding, listing, comparing, and its CLI."""

import json
import time

import pandas as pd
import pytest

from workbench.cli import main
from workbench.runs import RUNS_ENV, RunRecord, compare_runs, find_run, list_runs, new_run_dir, utcnow


def _run(runs, name, state="succeeded", params=None, metrics=None, error=None):
    path, run_id = new_run_dir(runs, name)
    time.sleep(0.002)  # distinct start times within the same second
    (path / "params.json").write_text(json.dumps(params or {}))
    (path / "metrics.json").write_text(json.dumps(metrics or {}))
    RunRecord(
        path=path,
        run_id=run_id,
        name=name,
        notebook="/nb/train.ipynb",
        state=state,
        duration_s=2.5,
        start=utcnow(),
        error=error,
    ).write_status()
    return RunRecord.read(path)


@pytest.fixture
def runs(tmp_path):
    runs = tmp_path / "runs"
    a = _run(runs, "train", params={"lr": 0.1, "leaves": 15}, metrics={"cv_auc": 0.84, "folds": [0.8, 0.9]})
    b = _run(runs, "train", params={"lr": 0.3, "leaves": 15}, metrics={"cv_auc": 0.86, "rows": 100})
    c = _run(runs, "stack", state="failed", error={"summary": "cell 3 raised KeyError: 'x'"})
    return runs, a, b, c


def test_find_run_by_path_folder_id_prefix_and_name(runs, monkeypatch):
    runs_dir, a, b, c = runs
    assert find_run(a.path).path == a.path
    assert find_run(a.path.name, runs_dir).path == a.path
    assert find_run(b.run_id, runs_dir).path == b.path
    assert find_run("train", runs_dir).path == b.path  # a name means its latest run
    assert find_run(c.path.name[: len(c.path.name) - 3], runs_dir).path == c.path
    with pytest.raises(FileNotFoundError, match="no run 'nothing'"):
        find_run("nothing", runs_dir)
    monkeypatch.setenv(RUNS_ENV, str(runs_dir))
    assert find_run(a.run_id).path == a.path
    assert len(list_runs()) == 3


def test_compare_runs_against_a_hand_computation(runs):
    _, a, b, _ = runs
    table = compare_runs(a, b)
    rows = {(r["kind"], r["name"]): r for r in table.to_dict("records")}
    assert set(rows) == {("param", "lr"), ("metric", "cv_auc"), ("metric", "folds"), ("metric", "rows")}
    assert rows[("param", "lr")]["delta"] == pytest.approx(0.3 - 0.1)
    assert rows[("metric", "cv_auc")]["delta"] == pytest.approx(0.86 - 0.84)
    assert rows[("metric", "rows")][a.path.name] is None and pd.isna(rows[("metric", "rows")]["delta"])
    assert len(compare_runs(a, b, everything=True)) == 5  # leaves is equal


def test_cli_runs_show_compare(runs, capsys):
    runs_dir, a, b, c = runs
    assert main(["runs", "--runs-dir", str(runs_dir), "--sort", "cv_auc", "--state", "succeeded"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("2 runs") and out[2].startswith(b.run_id) and out[3].startswith(a.run_id)
    assert main(["runs", "--runs-dir", str(runs_dir), "--name", "stack"]) == 0
    assert c.run_id in capsys.readouterr().out
    assert main(["show", c.run_id, "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "state     failed" in out and "cell 3 raised KeyError" in out
    assert main(["compare", a.path.name, b.run_id, "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert "cv_auc" in out and "0.02" in out and "leaves" not in out
    assert main(["show", "zzz", "--runs-dir", str(runs_dir)]) == 2
    assert "no run 'zzz'" in capsys.readouterr().err
    assert main(["runs", "--runs-dir", str(runs_dir), "--sort", "accuracy"]) == 2
    assert "no metric 'accuracy'" in capsys.readouterr().err


def test_cli_runs_fit_an_80_column_terminal(tmp_path, capsys, monkeypatch):
    runs = tmp_path / "runs"
    params = {f"parameter_{i}": f"/a/long/path/number/{i}/data.parquet" for i in range(12)}
    metrics = {f"metric_{i}": 0.123456 * i for i in range(10)}
    for lr in (0.1, 0.3):
        _run(runs, "train", params={**params, "lr": lr}, metrics=metrics)
    explain = _run(runs, "explain", params={"top_k": 5}, metrics={"n_rows": 2000})
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["runs", "--runs-dir", str(runs)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 80, lines
    assert lines[1].split()[:5] == ["id", "name", "state", "age", "duration"] and "metric_0" in lines[1]
    assert (
        lines[2].split()[1:3] == ["train", "succeeded"] and "2.5s" in lines[2] and lines[4].startswith(explain.run_id)
    )
    assert "parameter_0" not in lines[1] and lines[-1].startswith("(") and "--wide" in lines[-1]

    # runs of one notebook show its parameters, those that differ first
    explain_nb = explain.path / "status.json"
    status = json.loads(explain_nb.read_text())
    explain_nb.write_text(json.dumps({**status, "notebook": "/nb/explain.ipynb"}))
    assert main(["runs", "--runs-dir", str(runs), "--notebook", "train.ipynb"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 runs") and max(map(len, lines)) <= 80
    assert lines[1].split()[5] == "lr" and lines[2].split()[5] == "0.1" and lines[3].split()[5] == "0.3"
    assert main(["runs", "--runs-dir", str(runs), "--notebook", "explain"]) == 0
    assert "top_k" in capsys.readouterr().out.splitlines()[1]

    assert main(["runs", "--runs-dir", str(runs), "--wide"]) == 0
    wide = capsys.readouterr().out.splitlines()
    assert all(f"param.parameter_{i}" in wide[1] for i in range(12)) and "metric.metric_9" in wide[1]
    assert main(["runs", "--runs-dir", str(runs), "--columns", "name,lr,metric_9"]) == 0
    assert capsys.readouterr().out.splitlines()[1].split() == ["name", "lr", "metric_9"]
    assert main(["runs", "--runs-dir", str(runs), "--columns", "name,nope"]) == 2
    err = capsys.readouterr().err
    assert "no column 'nope'" in err and "\n  param.lr\n" in err
