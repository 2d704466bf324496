"""Every tree library read into the engine's arrays reproduces the library's own predictions bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_ice_equals_sklearn_brute
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
    assert ours.engine == "tree"  # the compiled tree engine, not the generic one
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


# --- HistGradientBoosting and CatBoost ------------------------------------------------------------------------


def _catboost():
    return pytest.importorskip(
        "catboost", reason="the catboost extra is not installed (pip install workbench[catboost])"
    )


def _hist(task: str, data: dict, categorical: bool = True, **params):
    X = data["X"] if categorical else data["X"].drop(columns="cat")
    cls = (
        ensemble.HistGradientBoostingRegressor
        if task in ("regression", "poisson")
        else ensemble.HistGradientBoostingClassifier
    )
    return cls(max_iter=15, max_leaf_nodes=8, random_state=0, **params).fit(X, data["y"][task]), X


def _catboost_model(task: str, data: dict, categorical: bool = True, **params):
    cb = _catboost()
    X = data["X"] if categorical else data["X"].drop(columns="cat")
    cls = cb.CatBoostRegressor if task == "regression" else cb.CatBoostClassifier
    extra = {"cat_features": ["cat"], "one_hot_max_size": 10} if categorical else {}
    model = cls(iterations=15, depth=4, random_seed=0, verbose=0, thread_count=1, allow_writing_files=False)
    return model.set_params(**extra, **params).fit(X, data["y"][task]), X


def _unseen(X: pd.DataFrame) -> pd.DataFrame:
    """``X`` with a category the model never saw and NaN in the categorical column."""
    out = X.copy()
    out["cat"] = out["cat"].cat.add_categories(["new"])
    out.loc[out.index[:10], "cat"] = "new"
    out.loc[out.index[10:20], "cat"] = np.nan
    return out


@pytest.mark.parametrize(
    ("task", "loss"),
    [("regression", "squared_error"), ("regression", "poisson"), ("binary", None), ("multiclass", None)],
)
def test_hist_gradient_boosting_matches_predict_bit_for_bit(data, task, loss):
    params = {"loss": loss} if loss else {}
    data = {"X": data["X"], "y": {**data["y"], "regression": np.exp(data["y"]["regression"] / 3)}}
    model, X = _hist(task, data, **params)
    engine = tree_ensemble(model)
    assert not isinstance(engine, str), engine
    assert engine.categorical_features == (3,)  # the preprocessor's column order is mapped back to X's
    for rows in (X, _unseen(X)):  # unknown categories and NaN go the missing-value way
        np.testing.assert_array_equal(predict_raw(engine, to_matrix(engine, rows)), model._raw_predict(rows))
    engine_numpy = tree_ensemble(_hist(task, data, categorical=False, **params)[0])
    assert engine_numpy.categorical_features == ()


def test_hist_gradient_boosting_refit_is_read_again(data):
    model, X = _hist("regression", data)
    first = tree_ensemble(model)
    model.set_params(max_iter=5).fit(X, data["y"]["regression"])
    assert tree_ensemble(model) is not first and tree_ensemble(model).n_trees == 5


@pytest.mark.parametrize("nan_mode", ["Min", "Max"])
@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_catboost_matches_predict_bit_for_bit(data, task, nan_mode):
    model, X = _catboost_model(task, data, nan_mode=nan_mode)
    engine = tree_ensemble(model)
    assert not isinstance(engine, str), engine
    ours = predict_raw(engine, to_matrix(engine, X))
    theirs = np.asarray(model.predict(X, prediction_type="RawFormulaVal")).reshape(len(X), -1)
    np.testing.assert_array_equal(ours, theirs)
    plain = X.assign(cat=X["cat"].astype(str))  # categories as text, as CatBoost also takes them
    np.testing.assert_array_equal(predict_raw(engine, to_matrix(engine, plain)), theirs)


def test_catboost_is_read_once_and_again_after_a_refit(data):
    model, X = _catboost_model("regression", data, categorical=False)
    first = tree_ensemble(model)
    assert tree_ensemble(model) is first  # CatBoost models are unhashable: cached by identity
    model.fit(X, data["y"]["binary"] * 2.0)  # the same object, new trees
    again = tree_ensemble(model)
    assert again is not first
    theirs = model.predict(X, prediction_type="RawFormulaVal")
    np.testing.assert_array_equal(predict_raw(again, to_matrix(again, X))[:, 0], theirs)


def test_catboost_target_statistics_fall_back_with_the_reason(data):
    cb = _catboost()
    X, y = data["X"], data["y"]["binary"]
    ctr = cb.CatBoostClassifier(
        iterations=5, depth=3, cat_features=["cat"], one_hot_max_size=2, verbose=0, allow_writing_files=False
    )
    reason = tree_ensemble(ctr.fit(X, y))
    assert isinstance(reason, str) and "target statistics" in reason and "one_hot_max_size" in reason
    from sklearn.inspection import permutation_importance as sklearn_pi

    from workbench.explain import permutation_importance

    ours = permutation_importance(ctr, X, y, scoring="roc_auc", n_repeats=2, random_state=0, progress=False)
    assert ours.engine == "generic"
    theirs = sklearn_pi(ctr, X, y, scoring="roc_auc", n_repeats=2, random_state=0)
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


def _library_model(family: str, task: str, data: dict):
    return _hist(task, data) if family == "HistGradientBoosting" else _catboost_model(task, data)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
@pytest.mark.parametrize("family", ["HistGradientBoosting", "CatBoost"])
def test_exact_ice_with_nan_and_categories_equals_sklearn_brute(data, family, task):
    model, X = _library_model(family, task, data)
    assert_ice_equals_sklearn_brute(
        model, X, ("a", "b", "cat"), grid=10
    )  # b has NaN (scikit-learn's grid would be NaN: give it ours)


def test_hist_gradient_boosting_recursion_equals_sklearn_recursion(data):
    from sklearn.inspection import partial_dependence as sklearn_pd

    from workbench.explain import partial_dependence

    model, X = _hist("regression", data, categorical=False)
    ours = partial_dependence(model, X, ["a", "c"], grid=8, method="recursion", progress=False)
    theirs = sklearn_pd(model, X, ["a", "c"], grid_resolution=8, method="recursion")["average"][0]
    # scikit-learn's recursion leaves out the baseline prediction; ours adds it (as brute does)
    np.testing.assert_allclose(ours.average, theirs + model._baseline_prediction[0, 0], rtol=0, atol=1e-9)
    weighted = ensemble.HistGradientBoostingRegressor(max_iter=3).fit(X, data["y"]["regression"], np.ones(N))
    with pytest.raises(NotImplementedError, match="sample weights"):
        partial_dependence(weighted, X, "a", method="recursion", progress=False)
    assert partial_dependence(weighted, X, "a", progress=False).method == "exact"


@pytest.mark.parametrize("family", ["HistGradientBoosting", "CatBoost"])
def test_recursion_on_every_feature_is_the_prediction(data, family):
    """With every feature fixed, the weighted walk averages nothing: it is the model's raw score."""
    from workbench.explain import partial_dependence

    small = {"X": data["X"][["a", "cat"]], "y": data["y"]}
    model, X = _library_model(family, "binary", small)
    ours = partial_dependence(model, X, ["a", "cat"], grid=6, method="recursion", progress=False)
    a, cats = ours.grid
    points = pd.DataFrame(
        {"a": np.repeat(a, len(cats)), "cat": pd.Categorical(np.tile(cats, len(a)), X["cat"].cat.categories)}
    )
    if family == "CatBoost":
        raw = model.predict(points, prediction_type="RawFormulaVal")
    else:
        raw = model.decision_function(points)
    np.testing.assert_allclose(ours.average.ravel(), raw, rtol=0, atol=1e-9)


@pytest.mark.parametrize(
    ("family", "task", "scoring"),
    [
        ("HistGradientBoosting", "regression", None),
        ("HistGradientBoosting", "binary", "roc_auc"),
        ("HistGradientBoosting", "multiclass", "neg_log_loss"),
        ("HistGradientBoosting", "poisson", "neg_mean_poisson_deviance"),
        ("CatBoost", "regression", "r2"),
        ("CatBoost", "binary", "neg_log_loss"),
        ("CatBoost", "multiclass", "accuracy"),
    ],
)
def test_permutation_importance_with_nan_and_categories_equals_sklearn(data, family, task, scoring):
    from sklearn.inspection import permutation_importance as sklearn_pi

    from workbench.explain import permutation_importance

    if task == "poisson":  # a log link: predict is exp(raw score), as NumPy computes it
        data = {"X": data["X"], "y": {"poisson": np.exp(data["y"]["regression"] / 3)}}
        model, X = _hist("poisson", data, loss="poisson")
    else:
        model, X = _library_model(family, task, data)
    y = data["y"][task]
    ours = permutation_importance(model, X, y, scoring=scoring, n_repeats=3, random_state=1, progress=False)
    theirs = sklearn_pi(model, X, y, scoring=scoring, n_repeats=3, random_state=1)
    assert ours.engine == "tree"  # the compiled tree engine, not the generic one
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


def test_lightgbm_linear_trees_fall_back_in_partial_dependence(data):
    import lightgbm as lgb
    from sklearn.inspection import partial_dependence as sklearn_pd

    from workbench.explain import partial_dependence
    from workbench.explain.model_info import describe

    X, y = data["X"].drop(columns="cat").fillna(0.0), data["y"]["regression"]
    model = lgb.LGBMRegressor(linear_tree=True, n_estimators=8, verbose=-1).fit(X, y)
    assert "linear trees" in tree_ensemble(model)
    assert describe(model).ensembles is None  # read by the generic engine, not refused
    ours = partial_dependence(model, X, "a", grid=10, kind="individual", progress=False)
    theirs = sklearn_pd(model, X, ["a"], grid_resolution=10, kind="individual", method="brute")
    np.testing.assert_allclose(np.asarray(ours.individual), theirs["individual"][0], rtol=0, atol=1e-9)
