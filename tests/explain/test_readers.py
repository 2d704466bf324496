"""Every tree library read into the engine's arrays reproduces the library's own predictions bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn import ensemble, tree
from sklearn.linear_model import LinearRegression

from workbench.explain._trees import predict_raw, raw_to_output, to_matrix
from workbench.explain.model_info import tree_ensemble

N = 300


@pytest.fixture(scope="module")
def data() -> dict:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(N, 3)), columns=["a", "b", "c"])
    X.loc[rng.random(N) < 0.1, "b"] = np.nan
    X["cat"] = pd.Categorical(rng.choice(list("pqrst"), N))
    signal = 2 * X["a"].to_numpy() + np.nan_to_num(X["b"].to_numpy()) + 1.5 * (X["cat"] == "q").to_numpy()
    y = {
        "regression": signal + rng.normal(scale=0.3, size=N),
        "binary": (signal > 0).astype(int),
        "multiclass": np.digitize(signal, [-1.0, 1.0]),
    }
    return {"X": X, "y": y}


def _library_raw(model, X) -> np.ndarray:
    """The library's own raw output: margins for boosting, averaged predictions for forests."""
    if type(model).__module__.startswith("xgboost"):
        out = model.predict(X, output_margin=True)
    elif hasattr(model, "decision_function"):
        out = model.decision_function(X)
    elif hasattr(model, "predict_proba"):
        out = model.predict_proba(X)
    else:
        out = model.predict(X)
    return np.asarray(out, dtype=np.float64).reshape(len(X), -1)


SKLEARN = {
    "DecisionTree": (tree.DecisionTreeRegressor, tree.DecisionTreeClassifier, {"max_depth": 6}),
    "RandomForest": (ensemble.RandomForestRegressor, ensemble.RandomForestClassifier, {"n_estimators": 8}),
    "ExtraTrees": (ensemble.ExtraTreesRegressor, ensemble.ExtraTreesClassifier, {"n_estimators": 8}),
    "GradientBoosting": (ensemble.GradientBoostingRegressor, ensemble.GradientBoostingClassifier, {"n_estimators": 15}),
}


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("family", list(SKLEARN))
def test_sklearn_trees_match_predict_bit_for_bit(data, family, task):
    regressor, classifier, params = SKLEARN[family]
    X = data["X"].drop(columns="cat")
    if family == "GradientBoosting":  # no missing-value support
        X = X.fillna(0.0)
    model = (regressor if task == "regression" else classifier)(random_state=0, **params).fit(X, data["y"][task])
    engine = tree_ensemble(model)
    assert not isinstance(engine, str), engine
    np.testing.assert_array_equal(predict_raw(engine, to_matrix(engine, X)), _library_raw(model, X))


@pytest.mark.parametrize("categorical", [False, True])
@pytest.mark.parametrize("task", ["regression", "binary", "multiclass", "poisson"])
def test_xgboost_matches_predict_bit_for_bit(data, task, categorical):
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed (pip install workbench[xgboost])")
    X = data["X"] if categorical else data["X"].drop(columns="cat")
    y = np.exp(data["y"]["regression"] / 3).round() if task == "poisson" else data["y"][task]
    params = {"objective": "count:poisson"} if task == "poisson" else {}
    cls = xgb.XGBClassifier if task in ("binary", "multiclass") else xgb.XGBRegressor
    model = cls(n_estimators=20, max_depth=4, enable_categorical=categorical, random_state=0, **params).fit(X, y)
    engine = tree_ensemble(model)
    assert not isinstance(engine, str), engine
    raw = predict_raw(engine, to_matrix(engine, X))
    np.testing.assert_array_equal(raw, _library_raw(model, X))
    # the float32 accumulation matters: summing in float64 differs from XGBoost's margins
    assert engine.float32_sums
    out = raw_to_output(engine, raw)
    if task == "binary":
        np.testing.assert_array_equal(out[:, 0], model.predict_proba(X)[:, 1])
    elif task == "multiclass":
        np.testing.assert_array_equal(out, model.predict_proba(X))
    else:
        np.testing.assert_array_equal(out[:, 0], model.predict(X))


def test_xgboost_softmax_matches_predict_proba_bit_for_bit():
    """XGBoost's float32 softmax with its C library expf: a correctly rounded exp differs on a few values."""
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed (pip install workbench[xgboost])")
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=20_000, n_features=10, n_informative=6, n_classes=4, random_state=0)
    model = xgb.XGBClassifier(n_estimators=50, max_depth=4, random_state=0, n_jobs=1).fit(X, y)
    engine = tree_ensemble(model)
    raw = predict_raw(engine, to_matrix(engine, X))
    theirs = model.predict_proba(X)
    np.testing.assert_array_equal(raw_to_output(engine, raw), theirs)
    # the test can fail: exp correctly rounded to float32 (NumPy's, in float64) misses some values
    x = raw.astype(np.float32)
    e = np.exp((x - x.max(axis=1, keepdims=True)).astype(np.float64)).astype(np.float32)
    rounded = e / e.astype(np.float64).sum(axis=1).astype(np.float32)[:, None]
    assert (rounded != theirs).any()


def test_xgboost_early_stopping_uses_the_best_iteration(data):
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed (pip install workbench[xgboost])")
    X, y = data["X"].drop(columns="cat"), data["y"]["binary"]
    model = xgb.XGBClassifier(n_estimators=200, early_stopping_rounds=3, learning_rate=0.5, random_state=0)
    model.fit(X[:200], y[:200], eval_set=[(X[200:], y[200:])], verbose=False)
    assert model.best_iteration < 199
    engine = tree_ensemble(model)
    assert engine.n_trees == model.best_iteration + 1
    np.testing.assert_array_equal(predict_raw(engine, to_matrix(engine, X)), _library_raw(model, X))


def test_unreadable_models_say_why(data):
    X, y = data["X"].drop(columns="cat").fillna(0.0), data["y"]["regression"]
    assert "LinearRegression" in tree_ensemble(LinearRegression().fit(X, y))
    custom_init = ensemble.GradientBoostingRegressor(n_estimators=3, init=LinearRegression()).fit(X, y)
    assert "init estimator" in tree_ensemble(custom_init)
    two_outputs = tree.DecisionTreeRegressor(max_depth=2).fit(X, np.column_stack([y, y]))
    assert "multi-output" in tree_ensemble(two_outputs)


def _pd_model(family: str, task: str, data: dict):
    X = data["X"].drop(columns="cat")
    if family == "XGBoost":
        xgb = pytest.importorskip(
            "xgboost", reason="the xgboost extra is not installed (pip install workbench[xgboost])"
        )
        cls = xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier
        return cls(n_estimators=15, max_depth=3, random_state=0).fit(X, data["y"][task]), X
    regressor, classifier, params = SKLEARN[family]
    if family == "GradientBoosting":
        X = X.fillna(0.0)
    model = (regressor if task == "regression" else classifier)(random_state=0, **params)
    return model.fit(X, data["y"][task]), X


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("family", [*SKLEARN, "XGBoost"])
def test_exact_ice_equals_sklearn_brute(data, family, task):
    from sklearn.inspection import partial_dependence as sklearn_pd

    from workbench.explain import partial_dependence

    model, X = _pd_model(family, task, data)
    ours = partial_dependence(model, X, "a", grid=20, kind="individual", progress=False)
    theirs = sklearn_pd(model, X, ["a"], grid_resolution=20, kind="individual", method="brute")
    individual = np.asarray(ours.individual).reshape(theirs["individual"].shape)
    np.testing.assert_allclose(individual, theirs["individual"], rtol=0, atol=1e-9)


@pytest.mark.parametrize("family", ["DecisionTree", "RandomForest", "GradientBoosting"])
def test_recursion_equals_sklearn_recursion(data, family):
    from sklearn.inspection import partial_dependence as sklearn_pd

    from workbench.explain import partial_dependence

    model, X = _pd_model(family, "regression", data)
    ours = partial_dependence(model, X, ["a", "c"], grid=8, method="recursion", progress=False)
    theirs = sklearn_pd(model, X, ["a", "c"], grid_resolution=8, method="recursion")["average"][0]
    # scikit-learn's recursion leaves out gradient boosting's initial prediction; ours adds it (as brute does)
    offset = model.init_.constant_[0, 0] if family == "GradientBoosting" else 0.0
    np.testing.assert_allclose(ours.average, theirs + offset, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("family", "task", "scoring"),
    [
        ("RandomForest", "regression", None),
        ("RandomForest", "binary", "roc_auc"),
        ("ExtraTrees", "multiclass", "neg_log_loss"),
        ("GradientBoosting", "binary", "neg_log_loss"),
        ("GradientBoosting", "multiclass", None),
        ("XGBoost", "regression", "r2"),
        ("XGBoost", "binary", "roc_auc"),
        ("XGBoost", "multiclass", "accuracy"),
    ],
)
def test_permutation_importance_through_the_engine_equals_sklearn(data, family, task, scoring):
    from sklearn.inspection import permutation_importance as sklearn_pi

    from workbench.explain import permutation_importance

    model, X = _pd_model(family, task, data)
    y = data["y"][task]
    ours = permutation_importance(model, X, y, scoring=scoring, n_repeats=3, random_state=1, progress=False)
    theirs = sklearn_pi(model, X, y, scoring=scoring, n_repeats=3, random_state=1)
    assert ours.engine == "lightgbm"  # the compiled tree engine, not the generic one
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)
