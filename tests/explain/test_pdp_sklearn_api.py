"""Partial dependence as scikit-learn's inspection API: every input dtype, outputs, weights, grids."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.impute import SimpleImputer
from sklearn.inspection import partial_dependence as sk_partial_dependence
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.tree import DecisionTreeClassifier

from workbench.explain import partial_dependence

TOL = 1e-9


def _sk(model, X, features, **kw):
    return sk_partial_dependence(model, X, features, method="brute", kind="both", **kw)


def _assert_same(ours, ref):
    """Every key of scikit-learn's Bunch equal: grid values, average and ICE."""
    got = ours.to_sklearn()
    assert set(got) == set(ref)
    for a, b in zip(got["grid_values"], ref["grid_values"], strict=True):
        if a.dtype == object:  # text categories, scikit-learn's reference on their codes
            a = (a == "yes").astype(np.float64)
        np.testing.assert_array_equal(a.astype(np.float64), np.asarray(b, dtype=np.float64))
    np.testing.assert_allclose(got["average"], ref["average"], rtol=0, atol=TOL)
    np.testing.assert_allclose(got["individual"], ref["individual"], rtol=0, atol=TOL)


def test_integer_numpy_columns_are_computed_in_float():
    X = np.random.RandomState(0).randint(0, 50, (200, 2))
    y = 3.0 * X[:, 0] + X[:, 1]
    model = LinearRegression().fit(X, y)
    ours = partial_dependence(model, X, 0, grid=5)
    expected = [model.predict(np.column_stack([np.full(200, v), X[:, 1]])).mean() for v in ours.grid[0]]
    np.testing.assert_allclose(ours.average, expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.average, [28.36, 61.80, 95.25, 128.69, 162.13], atol=0.01)
    assert X.dtype.kind == "i"  # the caller's array is left alone
    _assert_same(
        partial_dependence(model, X, [0, 1], grid=5, kind="both"),
        _sk(model, X.astype(float), [0, 1], grid_resolution=5),
    )
    lgbm = lgb.LGBMRegressor(n_estimators=20, num_leaves=7, min_child_samples=3, verbose=-1).fit(X, y)
    _assert_same(
        partial_dependence(lgbm, X, 0, grid=7, kind="both"), _sk(lgbm, X.astype(float), [0], grid_resolution=7)
    )


def _frame(rng, n=300):
    return pd.DataFrame({"x": rng.normal(size=n), "i": rng.integers(0, 30, n), "z": rng.normal(size=n)})


@pytest.mark.parametrize("dtype", ["int64", "Int64", "Int64-missing", "int32", "uint8"])
def test_integer_pandas_dtypes_equal_sklearn_on_floats(dtype):
    rng = np.random.default_rng(1)
    X = _frame(rng)
    y = X["x"] + 0.2 * X["i"] + rng.normal(size=len(X))
    X_float = X.astype({"i": "float64"})
    if dtype == "Int64-missing":
        X_float.loc[rng.random(len(X)) < 0.1, "i"] = np.nan
        X = X_float.astype({"i": "Int64"})
        model = make_pipeline(SimpleImputer(), LinearRegression()).fit(X_float, y)
    else:
        X = X.astype({"i": dtype})
        model = LinearRegression().fit(X_float, y)
    ours = partial_dependence(model, X, ["i", "x"], grid=8, kind="both")
    # scikit-learn's grid takes NaN in (a NaN grid point); ours leaves missing values out of the grid
    ref = _sk(model, X_float, ["i", "x"], grid_resolution=8, custom_values={"i": ours.grid[0]})
    _assert_same(ours, ref)


@pytest.mark.parametrize("dtype", ["bool", "boolean", "category", "object"])
def test_categorical_and_boolean_dtypes_equal_sklearn(dtype):
    rng = np.random.default_rng(2)
    X = _frame(rng).drop(columns="i")
    flag = rng.random(len(X)) < 0.4
    X["f"] = flag if dtype in ("bool", "boolean") else np.where(flag, "yes", "no")
    X = X.astype({"f": dtype})
    y = (X["x"] + flag * 1.5 + rng.normal(size=len(X)) > 0.5).astype(int)
    seen = []

    def encode(frame):
        seen.append(frame["f"].dtype)
        return frame.assign(f=frame["f"].astype(str).isin(["True", "yes"]).astype(float))

    model = make_pipeline(FunctionTransformer(encode), LogisticRegression()).fit(X, y)
    ours = partial_dependence(model, X, ["f", "x"], grid=6, kind="both")
    assert set(seen) == {X["f"].dtype}  # the model sees the column in its own dtype
    assert [str(v) for v in ours.grid[0]] in (["False", "True"], ["no", "yes"])
    # scikit-learn writes its (float) grid into the column, so it is the reference on the encoded column
    encoded = X.assign(f=flag.astype(float))
    _assert_same(ours, _sk(model[-1], encoded, ["f", "x"], grid_resolution=6, categorical_features=["f"]))


def test_sample_weight_multioutput_and_all_classes(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(250, 4))
    w = rng.random(250)
    Y2 = np.column_stack([X @ [1, 2, 0, 0], X @ [0, 0, 1, -1]])
    multi_out = LinearRegression().fit(X, Y2)
    ours = partial_dependence(multi_out, X, [0, 2], grid=5, kind="both", sample_weight=w)
    assert ours.outputs == (0, 1) and ours.average.shape == (2, 5, 5)
    _assert_same(ours, _sk(multi_out, X, [0, 2], grid_resolution=5, sample_weight=w))

    y3 = np.digitize(X[:, 0] + rng.normal(size=250), [-0.5, 0.5])
    hgb = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(X, y3)
    ours = partial_dependence(hgb, X, [1, 0, 3], grid=4, kind="both", sample_weight=w)
    assert ours.average.shape == (3, 4, 4, 4) and ours.individual.shape == (3, 250, 4, 4, 4)
    _assert_same(ours, _sk(hgb, X, [1, 0, 3], grid_resolution=4, sample_weight=w))
    assert ours.output(2).target == "P(class=2)"
    loaded = type(ours).load(ours.save(tmp_path / "pd"))
    assert repr(loaded) == repr(ours) and loaded.outputs == ours.outputs
    pd.testing.assert_frame_equal(loaded.to_frame(), ours.to_frame())
    np.testing.assert_array_equal(ours.output(2).average, ours.average[2])
    with pytest.raises(ValueError, match="a plot draws one"):
        ours.plot()
    assert partial_dependence(hgb, X, [1, 0], grid=4).plot(output=1, kind="average").axes
    with pytest.raises(ValueError, match="one or two features"):
        ours.output(0).plot()
    raw = partial_dependence(hgb, X, 1, grid=4, kind="both", response_method="decision_function")
    _assert_same(raw, _sk(hgb, X, [1], grid_resolution=4, response_method="decision_function"))


def test_lightgbm_all_classes_weights_and_many_features():
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(400, 4)), columns=list("abcd"))
    y3 = np.digitize(X["a"] + X["b"] * X["c"] + rng.normal(size=400), [-0.5, 0.5])
    model = lgb.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1).fit(X, y3)
    w = rng.random(400)
    ours = partial_dependence(
        model, X, ["b", "a", "c"], grid={"a": [-1.0, 0.0, 1.0]}, grid_resolution=5, kind="both", sample_weight=w
    )
    assert [len(g) for g in ours.grid] == [5, 3, 5]
    ref = _sk(model, X, ["b", "a", "c"], grid_resolution=5, custom_values={"a": [-1.0, 0.0, 1.0]}, sample_weight=w)
    _assert_same(ours, ref)


def test_grid_specs_percentiles_and_sklearn_spellings():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 3))
    model = LinearRegression().fit(X, X @ [1.0, -1.0, 0.5])
    ours = partial_dependence(
        model, X, [0, 2], custom_values={2: [-1.0, 1.0]}, grid_resolution=7, percentiles=(0.1, 0.9), kind="both"
    )
    ref = _sk(model, X, [0, 2], custom_values={2: [-1.0, 1.0]}, grid_resolution=7, percentiles=(0.1, 0.9))
    _assert_same(ours, ref)
    named = partial_dependence(model, X, "b", feature_names=["a", "b", "c"], method="brute")
    assert named.features == ("b",)
    with pytest.raises(ValueError, match="percentiles\\[0\\] must be strictly less"):
        partial_dependence(model, X, 0, percentiles=(0.9, 0.1))
    with pytest.raises(ValueError, match="'grid_resolution' must be strictly greater than 1"):
        partial_dependence(model, X, 0, grid_resolution=1)
    with pytest.raises(ValueError, match="grid=5 and grid_resolution=7 disagree"):
        partial_dependence(model, X, 0, grid=5, grid_resolution=7)
    with pytest.raises(ValueError, match="response_method parameter is ignored for regressors"):
        partial_dependence(model, X, 0, response_method="predict_proba")
    with pytest.raises(ValueError, match="sample_weight.shape == \\(3,\\), expected \\(200,\\)"):
        partial_dependence(model, X, 0, sample_weight=[1, 2, 3])
    with pytest.raises(ValueError, match="boolean array-like.*Got 2 elements"):
        partial_dependence(model, X, 0, categorical_features=[True, False])


def test_sklearn_exception_types():
    X = np.random.default_rng(6).normal(size=(60, 2))
    with pytest.raises(NotFittedError, match="not fitted"):
        partial_dependence(LinearRegression(), X, 0)
    with pytest.raises(NotFittedError, match="not fitted"):
        partial_dependence(lgb.LGBMRegressor(), X, 0)
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0.5]).astype(int) + [0, 5]
    for model in (DecisionTreeClassifier(max_depth=2).fit(X, Y), MultiOutputClassifier(LogisticRegression()).fit(X, Y)):
        with pytest.raises(ValueError, match="Multiclass-multioutput estimators are not supported"):
            partial_dependence(model, X, 0)
    from sklearn.cluster import KMeans

    with pytest.raises(ValueError, match="must be a fitted regressor or classifier"):
        partial_dependence(KMeans(n_clusters=2, n_init=1).fit(X), X, 0)
    with pytest.raises(ValueError, match="sample_weight is None"):
        partial_dependence(
            lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(X, X[:, 0]),
            X,
            0,
            method="recursion",
            sample_weight=np.ones(60),
        )


@pytest.mark.parametrize("dtype", ["Int64", "Int32", "boolean", "bool"])
def test_lightgbm_on_nullable_and_boolean_columns(dtype):
    """LightGBM's engines on pandas dtypes equal scikit-learn's on the float columns (PD and PI)."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    from workbench.explain import permutation_importance

    rng = np.random.default_rng(7)
    n = 400
    X_float = pd.DataFrame(
        {"x": rng.normal(size=n), "i": rng.integers(0, 30, n).astype(float), "b": (rng.random(n) < 0.5) * 1.0}
    )
    X_float.loc[rng.random(n) < 0.1, "i"] = np.nan
    y = X_float["x"] + 0.1 * X_float["i"].fillna(3) + X_float["b"] + rng.normal(size=n)
    model = lgb.LGBMRegressor(n_estimators=25, num_leaves=7, verbose=-1).fit(X_float, y)
    col = "b" if dtype in ("boolean", "bool") else "i"
    X = X_float.astype({col: bool if col == "b" else dtype}).astype({col: dtype})
    ours = partial_dependence(model, X, ["i", "b"], grid=6, kind="both")
    ref = _sk(model, X_float, ["i", "b"], custom_values={"i": ours.grid[0], "b": ours.grid[1].astype(float)})
    _assert_same(ours, ref)
    pi = permutation_importance(model, X, y, n_repeats=3, random_state=0, progress=False)
    assert pi.engine == "tree"
    np.testing.assert_allclose(
        pi.importances.to_numpy(),
        sk_permutation_importance(model, X_float, y, n_repeats=3, random_state=0).importances,
        atol=TOL,
    )
