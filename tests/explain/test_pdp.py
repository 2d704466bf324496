"""Partial dependence and ICE: equal to scikit-learn's brute method, on every walk of the trees."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import partial_dependence as sk_partial_dependence

from workbench.explain import partial_dependence
from workbench.explain._pdp_trees import grid_layout
from workbench.explain.model_info import lightgbm_ensemble

TOL = 1e-9


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 1500
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 40, n).astype(float),
            "c": pd.Categorical(rng.choice(list("pqrstuvwxyz"), n)),
            "d": rng.exponential(size=n),
        }
    )
    X.loc[rng.random(n) < 0.25, "d"] = 0.0
    X.loc[rng.random(n) < 0.05, "b"] = np.nan
    logit = X["a"] * (1 + X["d"]) + X["c"].isin(["p", "q", "r"]) * 1.5 - 0.05 * X["b"].fillna(20)
    return X, logit.to_numpy(), rng


@pytest.fixture(scope="module")
def binary(data):
    X, logit, rng = data
    y = (logit + rng.normal(size=len(X)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=40, num_leaves=15, min_child_samples=5, verbose=-1).fit(X, y)
    return model, X, y


def _sk(model, X, features, **kw):
    return sk_partial_dependence(model, X, features, method="brute", kind="both", **kw)


@pytest.mark.parametrize("feature", ["a", "d"])
def test_exact_equals_sklearn_brute_numeric(binary, feature):
    model, X, _ = binary
    ours = partial_dependence(model, X, feature, grid=25, kind="both")
    ref = _sk(model, X, [feature], grid_resolution=25)
    np.testing.assert_array_equal(ours.grid[0], ref["grid_values"][0])
    np.testing.assert_allclose(ours.average, ref["average"][0], rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.individual, ref["individual"][0], rtol=0, atol=TOL)
    assert ours.individual.shape == (len(X), 25)
    assert not np.allclose(ours.average, ours.average[0])  # a real dependence, not a flat line


def test_categorical_and_two_way_equal_sklearn(binary):
    model, X, _ = binary
    ours = partial_dependence(model, X, "c", kind="both")
    ref = _sk(model, X, ["c"], categorical_features=["c"])
    assert list(ours.grid[0]) == list(ref["grid_values"][0]) and ours.categorical == (True,)
    np.testing.assert_allclose(ours.individual, ref["individual"][0], rtol=0, atol=TOL)
    for pair, kw in [(("a", "c"), {"categorical_features": ["c"]}), (("d", "a"), {})]:
        ours = partial_dependence(model, X, pair, grid=5, kind="both")
        ref = _sk(model, X, list(pair), grid_resolution=5, **kw)
        assert ours.average.shape == tuple(len(g) for g in ref["grid_values"])
        np.testing.assert_allclose(ours.average, ref["average"][0], rtol=0, atol=TOL)
        np.testing.assert_allclose(ours.individual, ref["individual"][0], rtol=0, atol=TOL)
    frame = ours.to_frame()
    assert list(frame.columns) == ["d", "a", "average"] and len(frame) == 25


def test_missing_values_in_grid_feature(binary):
    """``b`` has NaN: the grid is built from its non-missing values and matches a hand-built brute PD."""
    model, X, _ = binary
    ours = partial_dependence(model, X, "b", grid=[0.0, 5.5, 20, 39], kind="both")
    for g, value in enumerate([0.0, 5.5, 20, 39]):
        expected = model.predict_proba(X.assign(b=value))[:, 1]
        np.testing.assert_allclose(ours.individual[:, g], expected, rtol=0, atol=TOL)
    auto = partial_dependence(model, X, "b")
    np.testing.assert_array_equal(auto.grid[0], np.unique(X["b"].dropna()))


@pytest.mark.parametrize(
    "walk, grid", [("mask", [0.0, 0.5, 1.0, 2.0]), ("brute", np.r_[0.0, np.linspace(0.01, 3, 69)])]
)
def test_every_tree_walk_equals_sklearn(data, walk, grid):
    """zero_as_missing sends 0 the default way, which breaks the interval walk: mask (≤64 points) or brute."""
    X, logit, rng = data
    y = (logit + rng.normal(size=len(X)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=15, zero_as_missing=True, verbose=-1).fit(X, y)
    ensemble = lightgbm_ensemble(model)
    assert grid_layout(ensemble, 3, np.sort(np.asarray(grid)))[0] == walk
    ours = partial_dependence(model, X, "d", grid=grid, kind="both")
    ref = _sk(model, X, ["d"], custom_values={"d": grid})
    np.testing.assert_allclose(ours.individual, ref["individual"][0], rtol=0, atol=TOL)


def test_multiclass_regression_and_raw_scale(data):
    X, logit, rng = data
    y3 = np.digitize(logit + rng.normal(size=len(X)), [-1, 1])
    multi = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y3)
    ref = _sk(multi, X, ["a"], grid_resolution=12)
    for k in range(3):
        ours = partial_dependence(multi, X, "a", grid=12, kind="both", class_index=k)
        np.testing.assert_allclose(ours.individual, ref["individual"][k], rtol=0, atol=TOL)
        assert ours.target == f"P(class={k})"
    raw = partial_dependence(multi, X, "a", grid=[-1.0, 0.0, 1.0], kind="individual", class_index=2, scale="raw")
    for g, value in enumerate([-1.0, 0.0, 1.0]):
        np.testing.assert_allclose(
            raw.individual[:, g], multi.predict(X.assign(a=value), raw_score=True)[:, 2], atol=TOL
        )

    reg = lgb.LGBMRegressor(n_estimators=30, num_leaves=15, verbose=-1).fit(X, logit)
    ours = partial_dependence(reg, X, ("a", "d"), grid=6, kind="both")
    ref = _sk(reg, X, ["a", "d"], grid_resolution=6)
    np.testing.assert_allclose(ours.individual, ref["individual"][0], rtol=0, atol=TOL)
    assert ours.target == "prediction"


def test_integer_column_and_booster(telco_xy):
    """scikit-learn refuses integer columns; ours sets them like any value (checked by hand)."""
    X, y = telco_xy
    X = X.iloc[:1500]
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1).fit(X, y.iloc[:1500])
    ours = partial_dependence(model.booster_, X, "tenure", grid=[1, 12, 24, 60], kind="both")
    for g, value in enumerate([1, 12, 24, 60]):
        np.testing.assert_allclose(ours.individual[:, g], model.predict_proba(X.assign(tenure=value))[:, 1], atol=TOL)


def test_generic_models_use_batched_brute(data):
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor

    X, logit, rng = data
    Xn = X.drop(columns="c").fillna(0).to_numpy()
    y = (logit + rng.normal(size=len(X)) > 0).astype(int)
    forest = RandomForestRegressor(n_estimators=10, max_depth=6, random_state=0).fit(Xn, logit)
    ours = partial_dependence(forest, Xn, (0, 2), grid=7, kind="both")
    ref = _sk(forest, Xn, [0, 2], grid_resolution=7)
    np.testing.assert_allclose(ours.individual, ref["individual"][0], rtol=0, atol=TOL)
    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(Xn, y)
    for scale, response in [("auto", "predict_proba"), ("raw", "decision_function")]:
        ours = partial_dependence(hgb, Xn, 1, grid=9, kind="both", scale=scale)
        ref = _sk(hgb, Xn, [1], grid_resolution=9, response_method=response)
        np.testing.assert_allclose(ours.individual, ref["individual"][0], rtol=0, atol=TOL)


def _reference_recursion(booster, grid_points: dict[int, float]) -> float:
    """Friedman's weighted walk, written from LightGBM's JSON dump (independent of our parser)."""

    def walk(node, weight):
        if "leaf_value" in node:
            return weight * node["leaf_value"]
        feature = node["split_feature"]
        if feature in grid_points:
            side = "left_child" if grid_points[feature] <= node["threshold"] else "right_child"
            return walk(node[side], weight)
        count = lambda child: child.get("leaf_count", child.get("internal_count"))  # noqa: E731
        left, right = node["left_child"], node["right_child"]
        total = count(left) + count(right)
        return walk(left, weight * count(left) / total) + walk(right, weight * count(right) / total)

    return sum(walk(tree["tree_structure"], 1.0) for tree in booster.dump_model()["tree_info"])


def test_recursion_equals_reference_walk_and_differs_from_exact_when_correlated():
    rng = np.random.default_rng(1)
    n = 3000
    a = rng.normal(size=n)
    X = pd.DataFrame({"a": a, "b": a + 0.3 * rng.normal(size=n), "c": rng.normal(size=n)})
    y = X["a"] * X["b"] + X["c"] + 0.1 * rng.normal(size=n)
    model = lgb.LGBMRegressor(n_estimators=25, num_leaves=8, verbose=-1).fit(X, y)
    rec = partial_dependence(model, X, "a", grid=9, method="recursion")
    expected = [_reference_recursion(model.booster_, {0: v}) for v in rec.grid[0]]
    np.testing.assert_allclose(rec.average, expected, rtol=0, atol=1e-12)
    two = partial_dependence(model, X, ("a", "c"), grid=5, method="recursion")
    expected = [[_reference_recursion(model.booster_, {0: u, 2: v}) for v in two.grid[1]] for u in two.grid[0]]
    np.testing.assert_allclose(two.average, expected, rtol=0, atol=1e-12)
    # a and b are correlated: the walk averages over b as the trees split it, not over the rows
    exact = partial_dependence(model, X, "a", grid=9)
    assert np.abs(exact.average - rec.average).max() > 0.05


def test_cvresult_averages_its_fold_models(data):
    from workbench.data import make_folds
    from workbench.models import train_cv

    X, logit, rng = data
    y = (logit + rng.normal(size=len(X)) > 0).astype(int)
    cv = train_cv(
        lgb.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1),
        X,
        y,
        make_folds(y, n_splits=3, random_state=0),
        progress=False,
    )
    ours = partial_dependence(cv, X, "a", grid=10, kind="both")
    folds = [_sk(m, X, ["a"], grid_resolution=10)["individual"][0] for m in cv.models]
    np.testing.assert_allclose(ours.individual, np.mean(folds, axis=0), rtol=0, atol=TOL)


def test_telco_totalcharges_dependence_decreases(telco_xy):
    """The seed's finding: churn probability falls as TotalCharges grows from 0 to 2,000."""
    X, y = telco_xy
    model = lgb.LGBMClassifier(
        n_estimators=150, learning_rate=0.05, num_leaves=8, min_child_samples=40, random_state=0, verbose=-1
    ).fit(X, y)
    grid = np.linspace(0, 2000, 21)
    with pytest.warns(UserWarning, match="TotalCharges.*extrapolates"):
        result = partial_dependence(model, X, "TotalCharges", grid=grid)
    pd_ = result.average
    assert pd_[0] - pd_[-1] > 0.05
    assert pd.Series(pd_).corr(pd.Series(grid), method="spearman") < -0.8


def test_bad_input(binary, data):
    model, X, y = binary
    with pytest.raises(ValueError, match=r"'tenur' is not a column of X.*did you mean 'tenure'"):
        partial_dependence(model, X.assign(tenure=1.0).drop(columns="a"), "tenur")
    with pytest.raises(ValueError, match="not fitted"):
        partial_dependence(lgb.LGBMClassifier(), X, "a")
    from sklearn.ensemble import RandomForestClassifier

    with pytest.raises(ValueError, match="not fitted"):
        partial_dependence(RandomForestClassifier(), X, "a")
    X_, logit, rng = data
    multi = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, np.digitize(logit, [-1, 1]))
    with pytest.raises(ValueError, match=r"class_index must be an integer in 0..2"):
        partial_dependence(multi, X, "a", class_index=3)
    with pytest.warns(UserWarning, match=r"grid for 'a' spans \[-10, 0\].*extrapolates"):
        partial_dependence(model, X, "a", grid=[-10, 0])
    with pytest.raises(ValueError, match="recursion.*no ICE"):
        partial_dependence(model, X, "a", method="recursion", kind="both")
    with pytest.raises(ValueError, match="raw scale only"):
        partial_dependence(model, X, "a", method="recursion", scale="probability")
    with pytest.raises(ValueError, match="not categories of 'c'"):
        partial_dependence(model, X, "c", grid=["p", "zz"])
    with pytest.raises(ValueError, match="the features must differ"):
        partial_dependence(model, X, ["a", "b", "a"])
    with pytest.raises(ValueError, match="needs a classifier"):
        partial_dependence(lgb.LGBMRegressor(n_estimators=2, verbose=-1).fit(X, logit), X, "a", scale="probability")


@pytest.mark.parametrize("n", [2, 3, 20, 21, 999])
def test_grid_quantiles_are_scipys(n):
    from scipy.stats.mstats import mquantiles

    from workbench.explain._pdp_grid import sorted_quantiles

    rng = np.random.default_rng(n)
    for scale in (1.0, 1e-3, 1e5):
        values = rng.normal(size=n) * scale
        for prob in ((0.05, 0.95), (0.0, 1.0), (0.1, 0.3), (0.33, 0.99)):
            expected = np.asarray(mquantiles(values, prob=prob, axis=0))
            assert np.array_equal(sorted_quantiles(np.sort(values), prob), expected), (scale, prob)
