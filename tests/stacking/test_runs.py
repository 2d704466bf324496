"""Stacking training runs: which runs are picked, and which cannot be stacked together (with the reason)."""

import time
from pathlib import Path

import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from workbench._io import atomic_write_json
from workbench.data import make_folds
from workbench.jobs import current_runs_dir
from workbench.models import train_cv
from workbench.notebooks import find_train_runs, load_stack_runs
from workbench.runs import RunRecord, new_run_dir, utcnow
from workbench.stacking import Stack

NUMS = ["tenure", "MonthlyCharges", "SeniorCitizen"]


@pytest.fixture(scope="module")
def small(telco):
    rows = telco.iloc[:900].reset_index(drop=True)
    return rows.iloc[:600].reset_index(drop=True), rows.iloc[600:].reset_index(drop=True)


def make_run(
    runs_dir,
    data,
    *,
    model="logreg",
    n_splits=3,
    seed=0,
    name="train",
    notebook="train.ipynb",
    sweep=None,
    state="succeeded",
    target="Churn",
    test=True,
    save_cv=True,
    owner=None,
):
    """A real run directory as train.ipynb leaves it: params, status, CVResult, oof.csv and test_pred.csv."""
    train, test_rows = data
    X, y = train[NUMS], train[target]
    folds = make_folds(y, n_splits=n_splits, random_state=seed)
    estimator = (
        LogisticRegression(max_iter=500) if model == "logreg" else LGBMClassifier(n_estimators=20, verbose=-1, n_jobs=1)
    )
    cv = train_cv(estimator, X, y, folds, X_test=test_rows[NUMS] if test else None, progress=False)
    path, run_id = new_run_dir(runs_dir, name, owner=owner)
    params = {
        "train_path": None,
        "test_path": None,
        "target": "Churn",
        "id_column": "customerID",
        "model": model,
        "seed": seed,
        "n_splits": n_splits,
    }
    atomic_write_json(path / "params.json", params)
    (path / "artifacts").mkdir()
    if save_cv:
        cv.save(path / "artifacts" / "cv")
    pd.DataFrame({"customerID": train["customerID"], "oof": cv.oof, "Churn": y}).to_csv(
        path / "artifacts" / "oof.csv", index=False
    )
    if test:
        pd.DataFrame({"customerID": test_rows["customerID"], "Churn": cv.test_pred}).to_csv(
            path / "artifacts" / "test_pred.csv", index=False
        )
    RunRecord(
        path=path,
        run_id=run_id,
        name=name,
        notebook=f"/work/notebooks/{notebook}",
        state=state,
        start=utcnow(),
        sweep=sweep,
    ).write_status()
    time.sleep(0.002)  # runs of one second are ordered by their start millisecond
    return RunRecord.read(path)


def names(runs):
    return [r.path.name for r in runs]


def test_default_is_the_latest_run_of_each_model_with_the_latest_data_and_folds(tmp_path, small):
    old_lr = make_run(tmp_path, small, model="logreg")
    other_folds = make_run(tmp_path, small, model="extratrees", n_splits=4)
    gbm = make_run(tmp_path, small, model="lgbm")
    make_run(tmp_path, small, model="lgbm", state="failed")
    make_run(tmp_path, small, model="lgbm", name="stack", notebook="stack.ipynb")
    new_lr = make_run(tmp_path, small, model="logreg")
    make_run(tmp_path, small, model="extratrees", save_cv=False)
    assert names(find_train_runs(runs_dir=tmp_path)) == names([gbm, new_lr])
    assert old_lr.path.name not in names(find_train_runs(runs_dir=tmp_path))
    latest = make_run(tmp_path, small, model="logreg", n_splits=4)  # now the latest setup has 4 folds
    assert names(find_train_runs(runs_dir=tmp_path)) == names([other_folds, latest])


def test_sweeps_and_named_runs(tmp_path, small):
    a = make_run(tmp_path, small, model="logreg", sweep="train-sweep", name="train-sweep")
    b = make_run(tmp_path, small, model="lgbm", sweep="train-sweep", name="train-sweep")
    make_run(tmp_path, small, model="lgbm", sweep="train-sweep", name="train-sweep", state="failed")
    c = make_run(tmp_path, small, model="lgbm")
    assert names(find_train_runs(sweep="train-sweep", runs_dir=tmp_path)) == names([a, b])
    again = make_run(tmp_path, small, model="logreg", sweep="train-sweep", name="train-sweep")  # the sweep run again
    assert names(find_train_runs(sweep="train-sweep", runs_dir=tmp_path)) == names([b, again])
    assert names(find_train_runs([c.run_id, a.path.name, str(b.path)], runs_dir=tmp_path)) == names([c, a, b])
    with pytest.raises(ValueError, match=r"no successful run of sweep 'other' .* sweeps there: \['train-sweep'\]"):
        find_train_runs(sweep="other", runs_dir=tmp_path)
    with pytest.raises(ValueError, match=f"run {a.path.name} is listed twice"):
        find_train_runs([a.run_id, a.path.name], runs_dir=tmp_path)
    with pytest.raises(ValueError, match="either as train_runs or as a sweep name, not both"):
        find_train_runs([a.run_id], sweep="train-sweep", runs_dir=tmp_path)
    failed = make_run(tmp_path, small, state="failed")
    with pytest.raises(ValueError, match=f"run {failed.path.name} failed; only succeeded training runs can be stacked"):
        find_train_runs([a.run_id, failed.run_id], runs_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="no run 'nope'"):
        find_train_runs(["nope"], runs_dir=tmp_path)


def test_own_runs_come_first(tmp_path, small, monkeypatch):
    """A teammate's sweep of the same name, or newer training runs, never slip into one's own stack."""
    monkeypatch.setenv("JUPYTERHUB_USER", "ana")
    a = make_run(tmp_path, small, model="logreg", sweep="train-sweep", name="train-sweep")
    b = make_run(tmp_path, small, model="lgbm", sweep="train-sweep", name="train-sweep")
    make_run(tmp_path, small, model="extratrees", sweep="train-sweep", name="train-sweep", owner="bob")
    make_run(tmp_path, small, model="lgbm", owner="bob")
    assert names(find_train_runs(sweep="train-sweep", runs_dir=tmp_path)) == names([a, b])
    assert names(find_train_runs(runs_dir=tmp_path)) == names([a, b])
    monkeypatch.setenv("JUPYTERHUB_USER", "carl")  # no runs of one's own: everyone's
    assert len(find_train_runs(sweep="train-sweep", runs_dir=tmp_path)) == 3


def test_too_few_runs_say_how_to_train_more(tmp_path, small, monkeypatch):
    with pytest.raises(
        ValueError, match=r"no successful train.ipynb run .* `workbench sweep notebooks/train.ipynb -p model"
    ):
        find_train_runs(runs_dir=tmp_path)
    only = make_run(tmp_path, small, model="lgbm")
    make_run(tmp_path, small, model="lgbm")
    with pytest.raises(ValueError, match=r"only one model \(lgbm, run .*\) was trained with the data and folds"):
        find_train_runs(runs_dir=tmp_path)
    with pytest.raises(ValueError, match="a stack needs two or more training runs, got 1"):
        load_stack_runs([only])
    # inside a job, lookups default to the runs root holding the job's own run (in its owner's folder)
    monkeypatch.setenv("WORKBENCH_RUN_DIR", str(tmp_path / "someone" / "20250101-000000-stack-rabcdef"))
    assert current_runs_dir() == tmp_path
    assert names(find_train_runs([only.run_id])) == [only.path.name]


def test_loaded_runs_stack_without_refitting(tmp_path, small):
    a = make_run(tmp_path, small, model="logreg")
    b = make_run(tmp_path, small, model="lgbm")
    c = make_run(tmp_path, small, model="lgbm")
    runs = load_stack_runs([a, b, c])
    assert [m.name for m in runs.members] == ["logreg", f"lgbm_{b.run_id}", f"lgbm_{c.run_id}"]
    train, test = small
    assert list(runs.ids) == list(train["customerID"]) and list(runs.test_ids) == list(test["customerID"])
    assert (runs.y.to_numpy() == train["Churn"].to_numpy()).all() and runs.y.name == "Churn"
    assert runs.metric == "auc" and runs.task == "binary" and runs.params["target"] == "Churn"
    table = runs.to_frame()
    assert list(table["member"]) == [m.name for m in runs.members]
    assert table["auc"].tolist() == pytest.approx(
        [roc_auc_score(train["Churn"], pd.read_csv(r.path / "artifacts/oof.csv")["oof"]) for r in (a, b, c)], abs=1e-12
    )
    stack = Stack([runs.level(), [("meta", LogisticRegression())]], folds=runs.folds, progress=False)
    stack.fit(pd.DataFrame(index=runs.y.index), runs.y)
    assert [m.source for m in stack.models_] == ["given", "given", "given", "fit"] and stack.n_fits_ == 1
    assert stack.test_pred_.shape == (len(test),)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"seed": 1},
            r"it has other folds \(\d+ of 600 rows in another fold\); parameters seed 1 instead of 0\. "
            r"Re-run logreg with -p seed 0: the members of a stack must be cross-validated on the same rows",
        ),
        (
            {"n_splits": 4},
            r"other folds \(4 folds instead of 3, \d+ of 600 rows in another fold\); parameters n_splits 4 "
            r"instead of 3\. Re-run logreg with -p n_splits 3",
        ),
        ({"rows": slice(0, 500)}, r"it has 500 training rows instead of 600"),
        ({"rows": slice(None, None, -1)}, r"other training rows \(600 of 600 ids differ, or come in another order\)"),
        ({"target": "SeniorCitizen"}, r"another target \(\d+ of 600 rows differ\)"),
        ({"test_rows": slice(0, 100)}, r"another test set \(100 rows instead of 300, or other ids\)"),
        ({"test": False}, r"it has no test predictions"),
    ],
)
def test_runs_from_other_data_or_folds_are_refused(tmp_path, small, change, message):
    first = make_run(tmp_path, small)
    train, test = small
    change = dict(change)
    data = (
        train.iloc[change.pop("rows", slice(None))].reset_index(drop=True),
        test.iloc[change.pop("test_rows", slice(None))].reset_index(drop=True),
    )
    if change.get("target") == "SeniorCitizen":
        data = (data[0].assign(SeniorCitizen=1 - data[0]["Churn"]), data[1])
    other = make_run(tmp_path, data, **change)
    with pytest.raises(ValueError, match=rf"cannot stack run {other.path.name} with {first.path.name}: .*{message}"):
        load_stack_runs([first, other])


def test_a_run_without_a_saved_result_is_named(tmp_path, small):
    first = make_run(tmp_path, small)
    bare = make_run(tmp_path, small, save_cv=False)
    with pytest.raises(ValueError, match=rf"run {bare.path.name} saved no CVResult .*cv/result.json is missing"):
        load_stack_runs([first, bare])
    assert Path(first.path / "artifacts" / "cv" / "result.json").is_file()
