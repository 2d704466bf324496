"""Permutation importance as scikit-learn's: every input dtype, several metrics in one call."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.inspection import permutation_importance as sk_permutation_importance
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import get_scorer, mean_absolute_error, r2_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from workbench.explain import PermutationImportancesByMetric, permutation_importance

TOL = 1e-9


def _assert_same(ours, ref):
    got = ours.to_sklearn()
    assert set(got) == set(ref)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=0, atol=TOL)


def _both(model, X, y, **kw):
    ours = permutation_importance(model, X, y, n_repeats=4, random_state=3, progress=False, **kw)
    ref = sk_permutation_importance(model, X, y, n_repeats=4, random_state=3, **kw)
    return ours, ref


def test_integer_numpy_columns():
    X = np.random.RandomState(0).randint(0, 50, (200, 3))
    y = 3.0 * X[:, 0] + X[:, 1]
    _assert_same(*_both(LinearRegression().fit(X, y), X, y))


@pytest.mark.parametrize("dtype", ["Int64", "Int64-missing", "boolean", "bool", "category", "object"])
def test_pandas_dtypes_equal_sklearn(dtype):
    rng = np.random.default_rng(1)
    n = 300
    X = pd.DataFrame({"x": rng.normal(size=n), "i": rng.integers(0, 20, n).astype(float)})
    flag = rng.random(n) < 0.4
    y = X["x"] + 0.1 * X["i"] + 2 * flag + rng.normal(size=n)
    if dtype in ("Int64", "Int64-missing"):
        if dtype == "Int64-missing":
            X.loc[rng.random(n) < 0.1, "i"] = np.nan
        model = make_pipeline(SimpleImputer(), LinearRegression()).fit(X, y)
        X = X.astype({"i": "Int64"})
    else:
        X["f"] = pd.Series(flag if dtype in ("bool", "boolean") else np.where(flag, "yes", "no")).astype(dtype)
        encode = make_column_transformer((OneHotEncoder(), ["f"]), remainder="passthrough")
        model = make_pipeline(encode, LinearRegression()).fit(X, y)
    _assert_same(*_both(model, X, y, scoring="neg_mean_absolute_error"))


@pytest.mark.parametrize(
    "scoring",
    [
        ["r2", "neg_mean_absolute_error"],
        ("r2", "neg_mean_absolute_error"),
        {"r2": "r2", "neg_mean_absolute_error": get_scorer("neg_mean_absolute_error")},
        lambda est, X, y: {
            "r2": r2_score(y, est.predict(X)),
            "neg_mean_absolute_error": -mean_absolute_error(y, est.predict(X)),
        },
    ],
    ids=["list", "tuple", "dict", "callable"],
)
def test_multi_metric_equals_sklearn_and_single_runs(scoring, tmp_path):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 4))
    y = X @ [1.0, 2.0, 0.0, -1.0] + rng.normal(size=200)
    model = LinearRegression().fit(X, y)
    ours, ref = _both(model, X, y, scoring=scoring)
    assert isinstance(ours, PermutationImportancesByMetric) and set(ours) == {"r2", "neg_mean_absolute_error"}
    got = ours.to_sklearn()
    for name in ours:
        _assert_same(ours[name], ref[name])
        single = permutation_importance(model, X, y, scoring=name, n_repeats=4, random_state=3, progress=False)
        np.testing.assert_array_equal(got[name]["importances"], single.importances.to_numpy())
    assert list(ours.to_frame().columns.get_level_values(0).unique()) == list(ours)
    loaded = type(ours).load(ours.save(tmp_path / "saved"))
    assert repr(loaded) == repr(ours) and loaded.to_frame().equals(ours.to_frame())
    assert ours.plot(metric="r2").axes and ours._repr_html_().startswith("<")
    # a RandomState draws the permutations once, for every metric, as scikit-learn does
    ours = permutation_importance(model, X, y, scoring=scoring, n_repeats=3, random_state=np.random.RandomState(5))
    ref = sk_permutation_importance(model, X, y, scoring=scoring, n_repeats=3, random_state=np.random.RandomState(5))
    for name in ref:
        _assert_same(ours[name], ref[name])


def test_multi_metric_on_lightgbm_mixes_engines():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=list("abcd"))
    y = (X["a"] + X["b"] * X["c"] + rng.normal(size=400) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y)

    def accuracy(est, X_, y_):
        return float(np.mean(est.predict(X_) == y_))

    scoring = {"roc_auc": "roc_auc", "neg_log_loss": "neg_log_loss", "acc": accuracy}
    ours, ref = _both(model, X, y, scoring=scoring)
    assert [ours[k].engine for k in scoring] == ["tree", "tree", "generic"]
    for name in scoring:
        _assert_same(ours[name], ref[name])


def test_multi_metric_errors():
    X = np.random.default_rng(4).normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="more than once"):
        permutation_importance(model, X, y, scoring=["accuracy", "accuracy"])
    with pytest.raises(ValueError, match="scoring is empty"):
        permutation_importance(model, X, y, scoring=[])
    with pytest.raises(ValueError, match="unknown scoring 'acuracy'.*did you mean"):
        permutation_importance(model, X, y, scoring={"a": "acuracy"})
