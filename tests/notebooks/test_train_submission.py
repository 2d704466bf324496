"""The reference notebooks run as jobs: train.ipynb, its rerun, and submission.ipynb; submission checks."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from workbench.cli import main
from workbench.datasets import check_submission, load_telco, score_telco_submission
from workbench.jobs import inspect_notebook, run_notebook
from workbench.models import CVResult
from workbench.runs import iter_runs

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FAST = {"n_splits": 3, "learning_rate": 0.1, "n_estimators": 300, "early_stopping_rounds": 30, "n_jobs": 1, "seed": 1}


def test_reference_notebooks_are_clean_and_parameterized():
    for name in ("train.ipynb", "stack.ipynb", "submission.ipynb"):
        spec = inspect_notebook(NOTEBOOKS / name)
        assert spec.has_parameters_cell and spec.parameters, name
        nb = json.loads((NOTEBOOKS / name).read_text())
        assert all(
            not c.get("outputs") and c.get("execution_count") is None for c in nb["cells"] if c["cell_type"] == "code"
        )
    assert set(FAST) <= set(inspect_notebook(NOTEBOOKS / "train.ipynb").parameters)


@pytest.fixture(scope="module")
def train_run(tmp_path_factory):
    rec = run_notebook(
        NOTEBOOKS / "train.ipynb", FAST, name="train", runs_dir=tmp_path_factory.mktemp("runs"), progress=False
    )
    assert rec.state == "succeeded", rec.error
    return rec


@pytest.mark.kernel
def test_train_notebook_records_metrics_and_artifacts(train_run):
    art = train_run.path / "artifacts"
    oof = pd.read_csv(art / "oof.csv")
    train, test, _ = load_telco(split="competition")
    assert list(oof["customerID"]) == list(train["customerID"])
    assert train_run.metrics["cv_auc"] == pytest.approx(roc_auc_score(oof["Churn"], oof["oof"]), abs=1e-12)
    assert train_run.metrics["cv_auc"] > 0.8 and len(train_run.metrics["fold_scores"]) == 3
    cv = CVResult.load(art / "cv")
    assert cv.n_splits == 3 and np.allclose(cv.oof, oof["oof"])
    preds = pd.read_csv(art / "test_pred.csv")
    assert list(preds["customerID"]) == list(test["customerID"]) and np.allclose(preds["Churn"], cv.test_pred)
    assert "data:image/png;base64," in (train_run.path / "report.html").read_text()


@pytest.mark.kernel
def test_rerun_of_a_training_run_is_identical(train_run, capsys):
    assert main(["rerun", train_run.path.name, "--runs-dir", str(train_run.path.parent.parent), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"rerun of {train_run.path.name}" in out and "identical: all 5 recorded metrics match" in out
    (again,) = [r for r in iter_runs(train_run.path.parent.parent) if r.rerun_of == train_run.path.name]
    assert again.metrics == train_run.metrics and again.params == train_run.params


@pytest.mark.kernel
def test_submission_notebook_builds_a_checked_submission(train_run):
    rec = run_notebook(
        NOTEBOOKS / "submission.ipynb",
        {"train_run": str(train_run.path)},
        runs_dir=train_run.path.parent.parent,
        progress=False,
    )
    assert rec.state == "succeeded", rec.error
    submission = pd.read_csv(rec.path / "artifacts" / "submission.csv")
    sample = load_telco(split="competition").sample_submission
    assert list(submission.columns) == list(sample.columns) and list(submission["customerID"]) == list(
        sample["customerID"]
    )
    preds = pd.read_csv(train_run.path / "artifacts" / "test_pred.csv").set_index("customerID")["Churn"]
    assert np.allclose(submission["Churn"], preds.loc[submission["customerID"]].to_numpy())
    assert rec.metrics["leaderboard_auc"] == pytest.approx(score_telco_submission(submission))
    inputs = json.loads((rec.path / "inputs.json").read_text())
    assert {Path(r["path"]).name for r in inputs} >= {"test_pred.csv", "oof.csv"}  # the training run is an input


def test_check_submission_names_each_problem():
    sample = pd.DataFrame({"id": ["a", "b", "c"], "p": [0.5, 0.5, 0.5]})
    good = pd.DataFrame({"id": ["a", "b", "c"], "p": [0.1, 0.9, 0.5]})
    check_submission(good, sample)
    cases = [
        (good[["p", "id"]], r"same columns in another order"),
        (good.rename(columns={"p": "prob"}), r"missing \['p'\], unexpected \['prob'\]"),
        (good.iloc[:2], r"has 2 rows, sample_submission 3"),
        (good.iloc[[1, 0, 2]], r"the same ids in another order: 2 rows differ, first at row 0"),
        (good.assign(id=["a", "b", "z"]), r"other ids"),
        (good.assign(p=[0.1, np.nan, 0.5]), r"missing predictions in 1 rows \(first rows \[1\]\)"),
        (good.assign(p=[0.1, 1.5, -2.0]), r"2 predictions are outside \[0, 1\]"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            check_submission(bad, sample)
    check_submission(good.assign(p=[3.0, 4.0, 5.0]), sample, probabilities=False)
