"""Permutation importance of scikit-learn's forests and gradient boosting through the tree engine.

Every number is compared with scikit-learn's own ``permutation_importance`` (same integer
``random_state``), on data built so that the engine's shortcuts are exercised: rows whose decision
path never tests the permuted feature, and a feature tested at several depths of one path.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn import ensemble
from sklearn.inspection import permutation_importance as sklearn_pi
from sklearn.metrics import roc_auc_score

from workbench.explain import permutation_importance

N = 400


@pytest.fixture(scope="module")
def data() -> dict:
    """``a`` matters only where ``b > 0.5``, so many paths never test it; ``d`` is a staircase of many steps."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(N, 4))
    a, b, c, d = X.T
    signal = 2.0 * c + np.where(b > 0.5, 1.5 * a, 0.0) + 1.5 * (np.floor(2.5 * d) % 2)
    return {
        "X": X,
        "binary": (signal + rng.normal(scale=0.2, size=N) > 0.5).astype(int),
        "regression": signal + rng.normal(scale=0.1, size=N),
    }


FAMILIES = {
    "RandomForest": (ensemble.RandomForestRegressor, ensemble.RandomForestClassifier, {"n_estimators": 12}),
    "ExtraTrees": (ensemble.ExtraTreesRegressor, ensemble.ExtraTreesClassifier, {"n_estimators": 12}),
    "GradientBoosting": (
        ensemble.GradientBoostingRegressor,
        ensemble.GradientBoostingClassifier,
        {"n_estimators": 20, "max_depth": 4},
    ),
}


def _fit(family: str, task: str, data: dict):
    regressor, classifier, params = FAMILIES[family]
    model = regressor if task == "regression" else classifier
    return model(random_state=0, **{"max_depth": 8, **params}).fit(data["X"], data[task])


@pytest.mark.parametrize("family", list(FAMILIES))
@pytest.mark.parametrize(("task", "scoring"), [("binary", "roc_auc"), ("regression", "r2"), ("binary", None)])
def test_equals_sklearn_with_untested_rows_and_repeated_splits(data, family, task, scoring):
    model = _fit(family, task, data)
    X, y = data["X"], data[task]
    tested_a = np.column_stack([_tests(est, X, 0) for est in np.ravel(model.estimators_)])
    assert (tested_a == 0).mean() > 0.05, "many rows' paths never test a"
    assert (tested_a > 0).any(), "some rows do test a"
    assert max(_tests(est, X, 3).max() for est in np.ravel(model.estimators_)) >= 2, "d at several depths"
    ours = permutation_importance(model, X, y, scoring=scoring, n_repeats=4, random_state=7, progress=False)
    theirs = sklearn_pi(model, X, y, scoring=scoring, n_repeats=4, random_state=7)
    assert ours.engine == "tree"
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


def _tests(estimator, X: np.ndarray, feature: int) -> np.ndarray:
    """How many splits on ``feature`` each row's decision path in ``estimator`` passes."""
    on_feature = estimator.tree_.feature == feature
    return np.asarray(estimator.decision_path(X.astype(np.float32))[:, on_feature].sum(axis=1)).ravel()


@pytest.mark.parametrize("family", ["RandomForest", "ExtraTrees", "GradientBoosting"])
@pytest.mark.parametrize("max_samples", [None, 0.5])
def test_compiled_auc_baseline_equals_sklearn(data, family, max_samples):
    """The baseline scored by the compiled AUC (every row) or by the scorer (a sample of rows)."""
    model = _fit(family, "binary", data)
    X, y = data["X"], data["binary"]
    kw = {"scoring": "roc_auc", "n_repeats": 3, "random_state": 2, "max_samples": max_samples or 1.0}
    ours = permutation_importance(model, X, y, progress=False, **kw)
    theirs = sklearn_pi(model, X, y, **kw)
    reference = roc_auc_score(y, model.predict_proba(X)[:, 1])
    assert ours.engine == "tree"
    assert abs(ours.baseline_score - reference) <= 1e-12
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


class RandomForestClassifier(ensemble.RandomForestClassifier):
    """Named and placed as scikit-learn's forest (so the engine reads it), but predict is not the
    argmax of the probabilities: it always says the first class."""

    __module__ = "sklearn.ensemble"

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


def test_a_forest_whose_predict_is_overridden_is_still_checked(data):
    """Only scikit-learn's own forest predict is derived from predict_proba without being called."""
    X, y = data["X"], data["binary"]
    model = RandomForestClassifier(n_estimators=5, max_depth=5, random_state=0).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = permutation_importance(model, X, y, scoring="accuracy", n_repeats=2, random_state=0, progress=False)
    assert ours.engine == "generic"
    assert any("could not be reproduced" in str(w.message) for w in caught)
    theirs = sklearn_pi(model, X, y, scoring="accuracy", n_repeats=2, random_state=0)
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


def _served_tree_by_tree(model, n_features: int) -> bool:
    from workbench.explain import _permutation_forest as forest
    from workbench.explain.model_info import tree_ensemble

    e = tree_ensemble(model)
    e = e.one_output(e.num_class - 1) if e.num_class > 1 else e
    return forest.applies(e, [[f] for f in range(n_features)])


@pytest.mark.parametrize("scoring", ["roc_auc", "neg_log_loss"])
def test_wide_data_with_unsplit_features_equals_sklearn(scoring):
    """More (unit, repeat) chains than one call holds, and features no tree splits on."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 36))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=300) > 0).astype(int)
    model = ensemble.RandomForestClassifier(n_estimators=6, max_depth=3, random_state=0).fit(X, y)
    split = {f for est in model.estimators_ for f in est.tree_.feature if f >= 0}
    assert len(split) < 30, "some features are never split on"
    assert _served_tree_by_tree(model, 36)
    ours = permutation_importance(model, X, y, scoring=scoring, n_repeats=6, random_state=4, progress=False)
    theirs = sklearn_pi(model, X, y, scoring=scoring, n_repeats=6, random_state=4)
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


@pytest.mark.parametrize("family", ["RandomForest", "ExtraTrees", "LightGBM"])
def test_missing_and_zero_values_equal_sklearn(family):
    """NaN (and exact zeros, which LightGBM may treat as missing) in rows and donors."""
    rng = np.random.default_rng(6)
    X = rng.normal(size=(400, 4))
    y = (X[:, 0] - X[:, 1] + 0.5 * X[:, 2] > 0).astype(int)
    X[rng.random(X.shape) < 0.15] = np.nan
    X[rng.random(X.shape) < 0.1] = 0.0
    if family == "LightGBM":
        from lightgbm import LGBMClassifier

        model = LGBMClassifier(n_estimators=15, num_leaves=8, verbose=-1, random_state=0, zero_as_missing=True)
    else:
        model = FAMILIES[family][1](n_estimators=8, max_depth=7, random_state=0)
    model.fit(X, y)
    assert _served_tree_by_tree(model, 4)
    ours = permutation_importance(model, X, y, scoring="roc_auc", n_repeats=5, random_state=8, progress=False)
    theirs = sklearn_pi(model, X, y, scoring="roc_auc", n_repeats=5, random_state=8)
    assert ours.engine == "tree"
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)
