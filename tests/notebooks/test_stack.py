"""train → sweep → stack → submission as real jobs: honest stack scores, no base model refitted, a checked submission."""

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from workbench.cli import main
from workbench.data import infer_schema, make_folds
from workbench.datasets import check_submission, load_telco, score_telco_submission
from workbench.jobs import run_notebook
from workbench.models import CVResult, default_lgbm, train_cv
from workbench.runs import iter_runs

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
FAST = {
    "n_splits": 3,
    "seed": 0,
    "learning_rate": 0.1,
    "n_estimators": 300,
    "early_stopping_rounds": 30,
    "et_n_estimators": 100,
}
FAST_ARGS = [arg for name, value in FAST.items() for arg in ("-p", name, str(value))]
pytestmark = [pytest.mark.kernel, pytest.mark.slow]


def digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def artifact(run, name: str) -> pd.DataFrame:
    return pd.read_csv(run.path / "artifacts" / name)


def figures(run) -> int:
    """Plots the executed notebook shows, and the report embeds (real ones, not the template's icons)."""
    nb = json.loads((run.path / Path(run.notebook).name).read_text())
    shown = sum("image/png" in out.get("data", {}) for cell in nb["cells"] for out in cell.get("outputs", []))
    embedded = len(re.findall(r"data:image/png;base64,[A-Za-z0-9+/]{5000}", (run.path / "report.html").read_text()))
    assert embedded == shown
    return shown


def clipped_logit(p) -> np.ndarray:
    return logit(np.clip(np.asarray(p, dtype=float), 1e-6, 1 - 1e-6))


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def members(runs_dir):
    """Three model families from one sweep of train.ipynb, run by the CLI in two worker processes."""
    argv = [
        "sweep",
        str(NOTEBOOKS / "train.ipynb"),
        "-p",
        "model",
        "lgbm,logreg,extratrees",
        *FAST_ARGS,
        "--workers",
        "2",
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
    ]
    assert main(argv) == 0
    runs = {r.params["model"]: r for r in iter_runs(runs_dir) if r.sweep == "train-sweep"}
    assert sorted(runs) == ["extratrees", "lgbm", "logreg"] and all(r.state == "succeeded" for r in runs.values())
    return runs


@pytest.fixture(scope="module")
def stacked(runs_dir, members):
    """The stack.ipynb run over the sweep, and each member's saved CVResult digested before it ran."""
    before = {model: digest(run.path / "artifacts" / "cv") for model, run in members.items()}
    argv = [
        "run",
        str(NOTEBOOKS / "stack.ipynb"),
        "-p",
        "sweep",
        "train-sweep",
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
    ]
    assert main(argv) == 0
    run = [r for r in iter_runs(runs_dir) if r.name == "stack"][-1]
    assert run.state == "succeeded", run.error
    return run, before


def test_sweep_over_model_gives_three_families(members):
    train, test, _ = load_telco(split="competition")
    oofs = {}
    for model, run in members.items():
        oof = artifact(run, "oof.csv")
        oofs[model] = oof["oof"].to_numpy()
        assert list(oof["customerID"]) == list(train["customerID"])
        assert run.metrics["cv_auc"] == pytest.approx(roc_auc_score(oof["Churn"], oof["oof"]), abs=1e-12)
        assert run.metrics["cv_auc"] > 0.83 and len(run.metrics["fold_scores"]) == 3
        assert ("best_iterations" in run.metrics) == (model == "lgbm")
        assert list(artifact(run, "test_pred.csv")["customerID"]) == list(test["customerID"])
        assert figures(run) == 1  # importance of the inputs
    assert CVResult.load(members["logreg"].path / "artifacts" / "cv", models=False).estimator == "Pipeline"
    corr = np.corrcoef(np.vstack(list(oofs.values())))
    assert corr[np.triu_indices(3, 1)].max() < 0.99  # diverse level-1 models, not three copies


def test_lightgbm_numbers_are_those_of_hand_aligned_categories(members):
    """build() replaced the notebook's own category alignment without changing LightGBM's predictions."""
    train, test, _ = load_telco(split="competition")
    schema = infer_schema(train, target="Churn", overrides={"customerID": "id"})
    for col in schema.categorical:
        test[col] = pd.Categorical(test[col], categories=train[col].cat.categories)
    y = train["Churn"]
    folds = make_folds(y, kind="stratified", n_splits=FAST["n_splits"], random_state=FAST["seed"])
    model = default_lgbm(
        "binary",
        random_state=FAST["seed"],
        learning_rate=FAST["learning_rate"],
        num_leaves=8,
        n_estimators=FAST["n_estimators"],
        n_jobs=1,
        deterministic=True,
        force_row_wise=True,
    )
    by_hand = train_cv(
        model,
        train[schema.features],
        y,
        folds,
        X_test=test[schema.features],
        early_stopping_rounds=FAST["early_stopping_rounds"],
        progress=False,
    )
    saved = CVResult.load(members["lgbm"].path / "artifacts" / "cv", models=False)
    np.testing.assert_array_equal(saved.oof, by_hand.oof)
    np.testing.assert_array_equal(saved.test_pred, by_hand.test_pred)


def test_stack_score_is_recomputed_from_the_saved_predictions(stacked, members):
    run, before = stacked
    metrics = run.metrics
    order = [r.path.name for r in sorted(members.values(), key=lambda r: r.path.name)]
    assert sorted(metrics["member_runs"]) == order
    by_name = {r.path.name: r for r in members.values()}
    member_runs = [by_name[name] for name in metrics["member_runs"]]
    oof = artifact(run, "oof.csv")
    y = oof["Churn"].to_numpy()
    assert metrics["cv_auc"] == pytest.approx(roc_auc_score(y, oof["oof"]), abs=1e-12)

    # the meta level by hand: logistic regression on the members' log-odds, on the members' own folds
    P = clipped_logit(np.column_stack([artifact(r, "oof.csv")["oof"] for r in member_runs]))
    folds = CVResult.load(member_runs[0].path / "artifacts" / "cv", models=False).folds
    splits = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(folds.n_splits)]
    reference = cross_val_predict(LogisticRegression(max_iter=2000), P, y, cv=splits, method="predict_proba")[:, 1]
    np.testing.assert_allclose(oof["oof"], reference, rtol=0, atol=1e-9)
    assert metrics["cv_auc"] == pytest.approx(roc_auc_score(y, reference), abs=1e-9)

    # test predictions: the fold meta models averaged over the members' test predictions
    T = clipped_logit(np.column_stack([artifact(r, "test_pred.csv")["Churn"] for r in member_runs]))
    expected = np.mean(
        [LogisticRegression(max_iter=2000).fit(P[tr], y[tr]).predict_proba(T)[:, 1] for tr, _ in splits], axis=0
    )
    test_pred = artifact(run, "test_pred.csv")
    assert list(test_pred["customerID"]) == list(artifact(member_runs[0], "test_pred.csv")["customerID"])
    np.testing.assert_allclose(test_pred["Churn"], expected, rtol=0, atol=1e-9)

    members_auc = metrics["member_cv_auc"]
    assert sorted(members_auc) == ["extratrees", "lgbm", "logreg"]
    for model, score in members_auc.items():
        assert score == members[model].metrics["cv_auc"]
        assert score == pytest.approx(roc_auc_score(y, artifact(members[model], "oof.csv")["oof"]), abs=1e-12)
    assert metrics["best_member_cv_auc"] == max(members_auc.values())
    print(f"\nstack AUC {metrics['cv_auc']:.5f}; members {members_auc}; blend {metrics['blend_cv_auc']:.5f}")
    assert metrics["cv_auc"] >= metrics["best_member_cv_auc"]


def test_no_base_model_is_refitted(stacked, members):
    run, before = stacked
    assert run.metrics["base_fits"] == 0
    for model, member in members.items():
        assert digest(member.path / "artifacts" / "cv") == before[model], model
    model_of = {r.path.name: model for model, r in members.items()}
    meta = CVResult.load(run.path / "artifacts" / "meta")  # the only models trained: one meta model per fold
    assert meta.feature_names == [f"level1/{model_of[name]}" for name in run.metrics["member_runs"]]
    assert meta.n_splits == len(meta.models) == FAST["n_splits"]


def test_blend_weights_reproduce_the_blend_score(stacked, members):
    run, _ = stacked
    weights = run.metrics["blend_weights"]
    assert all(w >= 0 for w in weights.values()) and sum(weights.values()) == pytest.approx(1.0)
    y = artifact(run, "oof.csv")["Churn"]
    blended = sum(w * artifact(members[m], "oof.csv")["oof"] for m, w in weights.items())
    assert run.metrics["blend_cv_auc"] == pytest.approx(roc_auc_score(y, blended), abs=1e-12)
    assert run.metrics["blend_cv_auc"] >= run.metrics["best_member_cv_auc"]
    assert figures(run) == 1  # the stack plot


def test_submission_from_a_stack_run(stacked):
    run, _ = stacked
    rec = run_notebook(
        NOTEBOOKS / "submission.ipynb", {"train_run": str(run.path)}, runs_dir=run.path.parent.parent, progress=False
    )
    assert rec.state == "succeeded", rec.error
    submission = pd.read_csv(rec.path / "artifacts" / "submission.csv")
    sample = load_telco(split="competition").sample_submission
    check_submission(submission, sample)
    preds = artifact(run, "test_pred.csv").set_index("customerID")["Churn"]
    np.testing.assert_allclose(submission["Churn"], preds.loc[submission["customerID"]].to_numpy(), rtol=0, atol=0)
    assert rec.metrics["leaderboard_auc"] == pytest.approx(score_telco_submission(submission))
    inputs = json.loads((rec.path / "inputs.json").read_text())
    assert {Path(r["path"]).name for r in inputs} >= {"test_pred.csv", "oof.csv"}


def test_rerun_of_a_stack_run_is_identical(stacked, capsys):
    run, _ = stacked
    assert main(["rerun", run.path.name, "--runs-dir", str(run.path.parent.parent), "--no-progress"]) == 0
    assert "identical: all" in capsys.readouterr().out


def test_runs_with_other_folds_are_refused_with_the_reason(runs_dir, members):
    argv = [
        "run",
        str(NOTEBOOKS / "train.ipynb"),
        "-p",
        "model",
        "logreg",
        "-p",
        "n_splits",
        "2",
        "-p",
        "seed",
        "0",
        "--name",
        "train-2folds",
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
    ]
    assert main(argv) == 0
    (two_folds,) = [r for r in iter_runs(runs_dir) if r.name == "train-2folds"]
    refs = f"[{members['lgbm'].path.name}, {two_folds.run_id}]"
    argv = [
        "run",
        str(NOTEBOOKS / "stack.ipynb"),
        "-p",
        "train_runs",
        refs,
        "--name",
        "stack-mixed",
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
    ]
    assert main(argv) == 1
    (failed,) = [r for r in iter_runs(runs_dir) if r.name == "stack-mixed"]
    assert failed.state == "failed" and failed.error["ename"] == "ValueError"
    message = failed.error["evalue"]
    assert f"cannot stack run {two_folds.path.name} with {members['lgbm'].path.name}" in message
    assert "other folds (2 folds instead of 3" in message and "n_splits 2 instead of 3" in message
    assert "Re-run logreg with -p n_splits 3" in message
    assert not (failed.path / "artifacts" / "test_pred.csv").exists()


def test_restack_gives_the_meta_model_the_features_too(runs_dir, members):
    argv = [
        "run",
        str(NOTEBOOKS / "stack.ipynb"),
        "-p",
        "sweep",
        "train-sweep",
        "-p",
        "restack",
        "true",
        "-p",
        "meta",
        "lgbm",
        "--name",
        "stack-restack",
        "--runs-dir",
        str(runs_dir),
        "--no-progress",
    ]
    assert main(argv) == 0
    (run,) = [r for r in iter_runs(runs_dir) if r.name == "stack-restack"]
    meta = CVResult.load(run.path / "artifacts" / "meta", models=False)
    assert meta.estimator == "LGBMClassifier" and {"tenure", "Contract", "level1/lgbm", "level1/logreg"} <= set(
        meta.feature_names
    )
    oof = artifact(run, "oof.csv")
    assert run.metrics["cv_auc"] == pytest.approx(roc_auc_score(oof["Churn"], oof["oof"]), abs=1e-12)
    assert run.metrics["base_fits"] == 0 and len(artifact(run, "test_pred.csv")) == len(
        load_telco(split="competition").test
    )
