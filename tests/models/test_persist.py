"""Saved models cross users only in safe forms: LightGBM text, skops; a pickle only from its own writer or with trust."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import ExtraTreesClassifier
from sklearn.linear_model import LogisticRegression

from workbench.data import make_folds
from workbench.models import CVResult, train_cv
from workbench.models.persist import UntrustedFileError, load_model, load_pickle, save_model

STRANGER = 65534  # "nobody": a uid that is not the one running the tests


def _chown_tree(path: Path, uid: int) -> None:
    for folder, _, files in os.walk(path):
        os.chown(folder, uid, uid)
        for name in files:
            os.chown(os.path.join(folder, name), uid, uid)


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        reason = "handing files to another user needs root (os.chown); run the tests as root, as CI does"
        print(f"SKIPPED: {reason}")
        pytest.skip(reason)


class MajorityVote(ClassifierMixin, BaseEstimator):
    """A classifier only a pickle can load safely (skops stores it but does not trust this module's types)."""

    def __init__(self, smoothing: float = 1.0) -> None:
        self.smoothing = smoothing

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        counts = np.array([(np.asarray(y) == c).sum() for c in self.classes_], dtype=float) + self.smoothing
        self.prior_ = counts / counts.sum()
        return self

    def predict_proba(self, X):
        return np.tile(self.prior_, (len(X), 1))


class Planted:
    """What an attacker pickles: unpickling it creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.fixture(scope="module")
def numeric_xy(telco_xy):
    X, y = telco_xy
    X = X.select_dtypes("number").iloc[:2000].reset_index(drop=True).fillna(0.0)
    return X, y.iloc[:2000].reset_index(drop=True)


def _folds(y):
    return make_folds(y, n_splits=3, random_state=0)


def _cv(estimator, X, y, **kw) -> CVResult:
    return train_cv(estimator, X, y, _folds(y), progress=False, **kw)


def _same_predictions(a, b, X) -> None:
    np.testing.assert_array_equal(np.asarray(a.predict_proba(X)), np.asarray(b.predict_proba(X)))


def test_lightgbm_binary_rebuilt_from_text_predicts_identically(tmp_path, telco_xy):
    X, y = telco_xy
    X, y = X.iloc[:3000].reset_index(drop=True), y.iloc[:3000].reset_index(drop=True)
    model = LGBMClassifier(n_estimators=200, num_leaves=15, learning_rate=0.1, verbose=-1, random_state=0, n_jobs=2)
    cv = _cv(model, X, y, early_stopping_rounds=10, metric="auc")
    cv.save(tmp_path / "cv")
    for k in range(cv.n_splits):
        (tmp_path / "cv" / "models" / f"fold_{k}.joblib").unlink()  # only the safe forms are left
    back = CVResult.load(tmp_path / "cv")
    for original, rebuilt in zip(cv.models, back.models, strict=True):
        assert type(rebuilt) is LGBMClassifier and rebuilt.best_iteration_ == original.best_iteration_ > 0
        assert rebuilt.booster_.num_trees() == original.booster_.num_trees()
        _same_predictions(rebuilt, original, X)  # categorical columns included
        np.testing.assert_array_equal(rebuilt.predict(X, raw_score=True), original.predict(X, raw_score=True))
        np.testing.assert_array_equal(rebuilt.predict(X, pred_contrib=True), original.predict(X, pred_contrib=True))
        assert list(rebuilt.classes_) == list(original.classes_) and rebuilt.objective_ == original.objective_
    np.testing.assert_array_equal(back.predict(X), cv.predict(X))
    from workbench.explain.model_info import describe

    assert describe(back).task == "binary" and describe(back).ensembles[0].n_trees == describe(cv).ensembles[0].n_trees


def test_lightgbm_multiclass_with_a_class_missing_from_a_fold(tmp_path):
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=list("abcd"))
    y = pd.Series(np.where(X["a"] > 0.5, "high", np.where(X["a"] < -0.5, "low", "mid")))
    model = LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1, random_state=0, n_jobs=2)
    cv = _cv(model, X, y)
    sparse = model.__class__(**model.get_params()).fit(X.iloc[:300], np.where(y.iloc[:300] == "low", 0, 2))
    cv.models.append(sparse)  # a fold model that saw classes 0 and 2 only
    cv.save(tmp_path / "cv")
    for path in (tmp_path / "cv" / "models").glob("*.joblib"):
        path.unlink()
    back = CVResult.load(tmp_path / "cv")
    assert back.task == "multiclass" and back.classes == ["high", "low", "mid"]
    for original, rebuilt in zip(cv.models, back.models, strict=True):
        _same_predictions(rebuilt, original, X)
    assert list(back.models[-1].classes_) == [0, 2]
    np.testing.assert_array_equal(back.predict(X), cv.predict(X))


def test_logistic_regression_loads_from_skops(tmp_path, numeric_xy):
    X, y = numeric_xy
    cv = _cv(LogisticRegression(max_iter=500), X, y)
    cv.save(tmp_path / "cv")
    assert (tmp_path / "cv" / "models" / "fold_0.skops").is_file()
    for path in (tmp_path / "cv" / "models").glob("*.joblib"):
        path.unlink()
    back = CVResult.load(tmp_path / "cv")
    for original, loaded in zip(cv.models, back.models, strict=True):
        assert type(loaded) is LogisticRegression
        _same_predictions(loaded, original, X)
    np.testing.assert_array_equal(back.predict(X), cv.predict(X))


def test_extra_trees_round_trip_and_another_users_copy_needs_trust(tmp_path, numeric_xy, as_root):
    X, y = numeric_xy
    cv = _cv(ExtraTreesClassifier(n_estimators=20, random_state=0, n_jobs=1), X, y)
    cv.save(tmp_path / "cv")
    back = CVResult.load(tmp_path / "cv")  # the writer's own pickle
    for original, loaded in zip(cv.models, back.models, strict=True):
        _same_predictions(loaded, original, X)
    _chown_tree(tmp_path / "cv", STRANGER)
    # skops stores the trees but does not vouch for sklearn's Tree type by default: the pickle is refused
    with pytest.raises(UntrustedFileError, match=r"written by nobody.*trust=True.*sklearn\.tree\._tree\.Tree"):
        CVResult.load(tmp_path / "cv")
    trusted = CVResult.load(tmp_path / "cv", trust=True)
    np.testing.assert_array_equal(trusted.predict(X), cv.predict(X))


def test_pickle_from_another_user_refused_unless_trusted(tmp_path, numeric_xy, as_root):
    X, y = numeric_xy
    cv = _cv(MajorityVote(), X, y)
    cv.save(tmp_path / "cv")
    assert (tmp_path / "cv" / "models" / "fold_0.skops").is_file()  # stored, but of a type skops does not trust
    assert CVResult.load(tmp_path / "cv").predict(X).shape == (len(X),)  # the writer loads their own
    _chown_tree(tmp_path / "cv", STRANGER)
    with pytest.raises(UntrustedFileError) as info:
        CVResult.load(tmp_path / "cv")
    message = str(info.value)
    assert "fold_0.joblib is a pickle written by nobody, not by you (root)" in message
    assert f"CVResult.load({str(tmp_path / 'cv')!r}, trust=True) if you trust nobody" in message
    assert f"skops does not trust by default: {MajorityVote.__module__}.MajorityVote" in message
    assert CVResult.load(tmp_path / "cv", models=False).score == cv.score  # scores and predictions need no unpickling
    np.testing.assert_array_equal(CVResult.load(tmp_path / "cv", trust=True).predict(X), cv.predict(X))


@pytest.fixture
def planted_run(tmp_path, numeric_xy):
    """Another user's run whose saved CVResult holds a planted pickle (and no safe form)."""
    X, y = numeric_xy
    run = tmp_path / "runs" / "mallory" / "run"
    cv_dir = run / "artifacts" / "cv"
    _cv(LogisticRegression(max_iter=300), X, y).save(cv_dir)
    marker = tmp_path / "code-ran"
    for k in range(3):
        (cv_dir / "models" / f"fold_{k}.skops").unlink()
        with open(cv_dir / "models" / f"fold_{k}.joblib", "wb") as out:
            pickle.dump(Planted(marker), out)
    (run / "model.joblib").write_bytes((cv_dir / "models" / "fold_0.joblib").read_bytes())
    pd.concat([X, y.rename("Churn")], axis=1).to_parquet(run / "training_data.parquet")
    (run / "data.pkl").write_bytes((cv_dir / "models" / "fold_0.joblib").read_bytes())
    return run, cv_dir, marker


def test_planted_pickle_never_runs_without_trust(planted_run, numeric_xy, as_root):
    from workbench.notebooks.explain_notebook import load_inputs
    from workbench.stacking import Stack

    run, cv_dir, marker = planted_run
    _chown_tree(run.parent.parent, STRANGER)
    X, y = numeric_xy
    attempts = {
        "CVResult.load": lambda: CVResult.load(cv_dir),
        "explain, saved CVResult": lambda: load_inputs(cv_dir=run, target="Churn"),
        "explain, joblib model": lambda: load_inputs(
            model_path=run / "model.joblib", data_path=run / "training_data.parquet"
        ),
        "explain, pickled data": lambda: load_inputs(cv_dir=run, data_path=run / "data.pkl"),
        "stack on the saved result": lambda: (
            Stack([[cv_dir], [LogisticRegression()]], folds=_folds(y), progress=False, n_jobs=1).fit(X, y).predict(X)
        ),
    }
    for name, attempt in attempts.items():
        with pytest.raises(UntrustedFileError, match="written by nobody"):
            attempt()
        assert not marker.exists(), f"{name} ran the planted pickle"
    load_pickle(run / "model.joblib", trust=True)  # the same file does run code once trusted: the test can fail
    assert marker.exists()


def test_symlinked_pickle_is_refused(tmp_path, numeric_xy):
    X, y = numeric_xy
    model = MajorityVote().fit(X, y)
    save_model(model, tmp_path, "own")
    (tmp_path / "link.joblib").symlink_to(tmp_path / "own.joblib")
    with pytest.raises(UntrustedFileError, match="link.joblib is a symlink"):
        load_model(tmp_path, "link")
    assert isinstance(load_model(tmp_path, "link", trust=True), MajorityVote)


def test_shared_stack_cache_with_planted_pickles_is_retrained_not_loaded(tmp_path, numeric_xy, as_root):
    from workbench.stacking import Stack

    X, y = numeric_xy
    marker, cache = tmp_path / "code-ran", tmp_path / "cache"

    def stack(cache_dir=cache):
        return Stack(
            [[("vote", MajorityVote())], [("meta", LogisticRegression())]],
            folds=_folds(y),
            cache_dir=cache_dir,
            progress=False,
            n_jobs=1,
        )

    stack().fit(X, y, X_test=X.iloc[:100])
    planted = list(cache.rglob("fold_*.joblib"))
    assert planted
    for path in planted:
        with open(path, "wb") as out:
            pickle.dump(Planted(marker), out)
    for path in cache.rglob("fold_*.skops"):
        path.unlink()
    _chown_tree(cache, STRANGER)
    with pytest.warns(RuntimeWarning, match="not loading the cached fold models.*written by nobody"):
        again = stack().fit(X, y, X_test=X.iloc[100:200])  # a new test set needs the fold models
    assert not marker.exists()
    fresh = stack(cache_dir=None).fit(X, y, X_test=X.iloc[100:200])
    np.testing.assert_array_equal(again.test_pred_, fresh.test_pred_)
