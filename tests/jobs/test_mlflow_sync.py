"""MLflow interop: run directories logged to a real local MLflow store (SQLite) and read back."""

from __future__ import annotations

import shutil
import socket

import mlflow
import nbformat
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from nbformat.v4 import new_code_cell, new_notebook

from workbench._io import atomic_write_json, atomic_write_text
from workbench.jobs.mlflow_sync import log_run
from workbench.runs import ARTIFACTS_DIR, ENV_FILE, METRICS_FILE, PARAMS_FILE, REPORT_FILE, RunRecord, new_run_dir

PARAMS = {"lr": 0.05, "num_leaves": 31, "use_gpu": False, "features": ["tenure", "Contract"], "data": "telco"}
METRICS = {
    "cv_auc": 0.84613,
    "n_rows": 7043,
    "fold_auc": [0.841, 0.852, 0.838, 0.849, 0.846],
    "best": {"iteration": 412, "model": "lgbm"},
    "converged": True,
    "note": "early stopped",
}
GIT = {"repository": "/src/churn", "commit": "3f2a9c1e" * 5, "branch": "main", "dirty": True}
START, END = "2025-03-01T10:00:00.000Z", "2025-03-01T10:02:05.500Z"


def _make_run(runs, state="succeeded", error=None):
    path, run_id = new_run_dir(runs, "train lgbm", owner="ana")
    atomic_write_json(path / PARAMS_FILE, PARAMS)
    atomic_write_json(path / METRICS_FILE, METRICS)
    atomic_write_json(path / ENV_FILE, {"python": {"version": "3.11.9"}, "git": GIT})
    nb = new_notebook(cells=[new_code_cell("lr = 0.05", metadata={"tags": ["parameters"]})])
    nbformat.write(nb, path / "train.ipynb")
    atomic_write_text(path / REPORT_FILE, "<html><body>report</body></html>")
    oof = pd.DataFrame({"customerID": ["a", "b", "c"], "oof": [0.1, 0.7, 0.4]})
    (path / ARTIFACTS_DIR / "preds").mkdir(parents=True)
    oof.to_csv(path / ARTIFACTS_DIR / "preds" / "oof.csv", index=False)
    RunRecord(
        path=path,
        run_id=run_id,
        name="train lgbm",
        notebook="train.ipynb",
        state=state,
        owner="ana",
        start=START,
        end=END,
        duration_s=125.5,
        error=error,
    ).write_status()
    return path, run_id


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory):
    """An initialised SQLite tracking database (creating its tables takes seconds; copying it does not)."""
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def tracking(tmp_path, monkeypatch, empty_store):
    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts under ./mlruns
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    return MlflowClient(tracking_uri=uri)


def test_finished_run_is_logged_and_read_back(tmp_path, tracking):
    path, run_id = _make_run(tmp_path / "runs")
    mlflow_id = log_run(path)
    assert mlflow_id

    table = mlflow.search_runs(experiment_names=["workbench-train"])
    assert len(table) == 1
    row = table.iloc[0]
    assert row["run_id"] == mlflow_id and row["status"] == "FINISHED"
    assert row["tags.mlflow.runName"] == "train lgbm" and row["tags.mlflow.user"] == "ana"
    assert row["tags.workbench.run_id"] == run_id and row["tags.workbench.status"] == "succeeded"
    assert row["tags.workbench.run"] == path.name
    assert (row["tags.mlflow.source.git.commit"], row["tags.workbench.git_dirty"]) == (GIT["commit"], "true")
    assert row["start_time"] == pd.Timestamp(START) and row["end_time"] == pd.Timestamp(END)
    # parameters as text, the way mlflow.log_param writes them; lists and dicts as JSON
    assert {k: row[f"params.{k}"] for k in PARAMS} == {
        "lr": "0.05",
        "num_leaves": "31",
        "use_gpu": "False",
        "features": '["tenure", "Contract"]',
        "data": "telco",
    }
    # numbers become metrics, a list of numbers a history with one step per item, the rest tags
    assert row["metrics.cv_auc"] == METRICS["cv_auc"] and row["metrics.n_rows"] == 7043
    assert row["metrics.best.iteration"] == 412
    history = tracking.get_metric_history(mlflow_id, "fold_auc")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == list(enumerate(METRICS["fold_auc"]))
    assert row["tags.metric.best.model"] == "lgbm" and row["tags.metric.note"] == "early stopped"
    assert row["tags.metric.converged"] == "True"

    listed = {a.path for a in tracking.list_artifacts(mlflow_id)}
    assert {"train.ipynb", REPORT_FILE, ARTIFACTS_DIR, "workbench"} <= listed
    assert {a.path for a in tracking.list_artifacts(mlflow_id, "workbench")} >= {
        "workbench/status.json",
        "workbench/params.json",
        "workbench/metrics.json",
        "workbench/env.json",
    }
    local = tracking.download_artifacts(mlflow_id, "artifacts/preds/oof.csv", str(tmp_path / "dl"))
    pd.testing.assert_frame_equal(pd.read_csv(local), pd.read_csv(path / ARTIFACTS_DIR / "preds" / "oof.csv"))
    nb = nbformat.read(tracking.download_artifacts(mlflow_id, "train.ipynb", str(tmp_path / "dl")), as_version=4)
    assert nb.cells[0].source == "lr = 0.05"

    # logging the same run again gives the same MLflow run, not a duplicate
    assert log_run(path) == mlflow_id
    assert len(mlflow.search_runs(experiment_names=["workbench-train"])) == 1


def test_failed_run_keeps_its_error_and_experiment_name_is_configurable(tmp_path, tracking, monkeypatch):
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "churn")
    error = {"cell": 3, "ename": "ValueError", "evalue": "lr must be positive", "kind": "exception"}
    path, _ = _make_run(tmp_path / "runs", state="failed", error=error)
    mlflow_id = log_run(path)
    run = tracking.get_run(mlflow_id)
    assert run.info.status == "FAILED" and run.data.tags["workbench.status"] == "failed"
    assert run.data.tags["workbench.error"] == "cell 3: ValueError: lr must be positive"
    assert tracking.get_experiment(run.info.experiment_id).name == "churn"


def test_no_tracking_uri_is_a_no_op_and_unfinished_runs_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path, _ = _make_run(tmp_path / "runs", state="running")
    assert log_run(path) is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(ValueError, match="is still running; log it to MLflow once it has finished"):
        log_run(path)
    with pytest.raises(FileNotFoundError, match="is not a run directory"):
        log_run(tmp_path / "runs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # no store, no ./mlruns


def test_unreachable_server_warns_without_failing_or_leaking_credentials(tmp_path, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://ana:hunter2@127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    path, _ = _make_run(tmp_path / "runs")
    with pytest.warns(RuntimeWarning, match=rf"could not log run .* to MLflow at http://127.0.0.1:{port}") as caught:
        assert log_run(path) is None
    assert all("hunter2" not in str(w.message) for w in caught)
    with pytest.raises(Exception):  # noqa: B017 - strict mode hands MLflow's own error to the caller
        log_run(path, strict=True)


def test_a_token_in_the_tracking_uri_query_is_never_printed(tmp_path, monkeypatch):
    """MLflow's own error repeats the request path with the tracking URI's query string in it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}/?token=S3CR3T&user=ana")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    path, _ = _make_run(tmp_path / "runs")
    with pytest.warns(RuntimeWarning, match=rf"to MLflow at http://127.0.0.1:{port}/ \(MlflowException: ") as caught:
        assert log_run(path) is None
    messages = [str(w.message) for w in caught]
    assert messages and all("S3CR3T" not in m for m in messages)
    assert any("token=***" in m for m in messages)  # MLflow's message is kept, the value hidden
    with pytest.raises(Exception, match="S3CR3T"):  # noqa: B017 - the leak this guards against is real
        log_run(path, strict=True)
