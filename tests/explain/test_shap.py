"""SHAP values: LightGBM's TreeSHAP, checked against shap's TreeExplainer and brute-force Shapley values."""

import math
import warnings
from itertools import combinations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import shap

from workbench.explain import interaction_bytes, shap_values
from workbench.explain._pdp_trees import recursion_raw
from workbench.explain.model_info import lightgbm_ensemble


def _brute_shapley(expectation, x, j: int, m: int) -> float:
    """Feature ``j``'s Shapley value at ``x`` by the definition: every subset of the other features."""
    others = [f for f in range(m) if f != j]
    phi = 0.0
    for size in range(m):
        for subset in combinations(others, size):
            weight = math.factorial(size) * math.factorial(m - size - 1) / math.factorial(m)
            phi += weight * (expectation(x, sorted((*subset, j))) - expectation(x, subset))
    return phi


def _tree_explainer(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer = shap.TreeExplainer(model)
        return np.asarray(explainer.shap_values(X)), np.atleast_1d(explainer.expected_value)


@pytest.fixture(scope="module")
def numeric():
    rng = np.random.default_rng(0)
    n = 1200
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["a", "b", "c", "d"])
    X.loc[rng.random(n) < 0.1, "b"] = np.nan
    score = X["a"] * X["c"] + X["b"].fillna(0) - 0.5 * X["d"]
    return X, score.to_numpy(), rng


def test_telco_binary_equals_tree_explainer(telco_xy):
    X, y = telco_xy
    model = lgb.LGBMClassifier(n_estimators=60, num_leaves=8, verbose=-1).fit(X, y)
    sv = shap_values(model, X, max_rows=800)
    ref, base = _tree_explainer(model, sv.data)
    np.testing.assert_allclose(sv.values, ref, rtol=0, atol=1e-12)
    assert sv.base_value == pytest.approx(base[0], abs=1e-12)
    np.testing.assert_allclose(sv.raw_prediction(), model.predict(sv.data, raw_score=True), rtol=0, atol=1e-9)
    assert sv.target == "log-odds of class 1" and sv.engine == "LightGBM pred_contrib"
    assert {"Contract", "tenure"} <= set(sv.importance().index[:4])


def test_multiclass_and_regression_equal_tree_explainer(numeric):
    X, score, rng = numeric
    y3 = np.digitize(score + rng.normal(size=len(X)), [-1, 1])
    multi = lgb.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1).fit(X, y3)
    ref, base = _tree_explainer(multi, X)  # (n, features, classes)
    for k in range(3):
        sv = shap_values(multi, X, class_index=k, max_rows=None)
        np.testing.assert_allclose(sv.values, ref[:, :, k], rtol=0, atol=1e-12)
        assert sv.base_value == pytest.approx(base[k], abs=1e-12)
    reg = lgb.LGBMRegressor(n_estimators=25, num_leaves=8, verbose=-1).fit(X, score)
    sv = shap_values(reg, X, max_rows=None)
    np.testing.assert_allclose(sv.values, _tree_explainer(reg, X)[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(sv.raw_prediction(), reg.predict(X), rtol=0, atol=1e-9)


def test_values_are_shapley_values_of_the_path_dependent_expectation(numeric):
    """Brute force over all coalitions S with E[f | x_S] from the weighted tree walk (independent code)."""
    X, score, rng = numeric
    model = lgb.LGBMRegressor(n_estimators=8, num_leaves=6, verbose=-1).fit(X.fillna(0), score)
    ensemble = lightgbm_ensemble(model)
    rows = X.fillna(0).iloc[:5]
    sv = shap_values(model, rows, max_rows=None)
    m = rows.shape[1]

    def expectation(x, subset):
        return recursion_raw(ensemble, list(subset), np.asarray([[x[j] for j in subset]], dtype=float))[0, 0]

    for i, x in enumerate(rows.to_numpy()):
        for j in range(m):
            assert sv.values[i, j] == pytest.approx(_brute_shapley(expectation, x, j, m), abs=1e-9)
    assert sv.base_value == pytest.approx(expectation(rows.to_numpy()[0], ()), abs=1e-9)


def test_sampling_is_seeded_and_stated(numeric):
    X, score, _ = numeric
    model = lgb.LGBMRegressor(n_estimators=10, verbose=-1).fit(X, score)
    full = shap_values(model, X, max_rows=None)
    a = shap_values(model, X, max_rows=300, random_state=7)
    b = shap_values(model, X, max_rows=300, random_state=7)
    c = shap_values(model, X, max_rows=300, random_state=8)
    np.testing.assert_array_equal(a.rows, b.rows)
    assert not np.array_equal(a.rows, c.rows) and len(np.unique(a.rows)) == 300
    np.testing.assert_array_equal(a.values, full.values[a.rows])
    assert a.sample_note == "SHAP values for 300 of 1,200 rows (random sample, seed 7)"
    assert full.sample_note == "SHAP values for all 1,200 rows" and "300 of 1,200" in repr(a)
    assert len(shap_values(model, X).rows) == len(X)  # below the default max_rows: every row


def test_interactions_opt_in_with_memory_check(numeric, telco_xy):
    X, score, rng = numeric
    y = (score > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=15, num_leaves=8, verbose=-1).fit(X, y)
    sv = shap_values(model, X, max_rows=200, interactions=True)
    assert sv.interactions.shape == (200, 4, 4)
    np.testing.assert_allclose(sv.interactions.sum(axis=2), sv.values, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sv.interactions, np.transpose(sv.interactions, (0, 2, 1)), atol=1e-12)
    assert shap_values(model, X, max_rows=200).interactions is None
    assert interaction_bytes(1000, 4) == 1000 * 25 * 8
    with pytest.raises(
        ValueError, match=r"1,200 rows × 4 × 4 features need about 234\.4 KB.*pass max_rows=100 or fewer"
    ):
        shap_values(model, X, max_rows=None, interactions=True, max_memory=20_000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = shap.TreeExplainer(model.booster_).shap_interaction_values(sv.data)
    np.testing.assert_allclose(sv.interactions, reference, rtol=0, atol=1e-12)


def test_interactions_follow_categorical_splits(telco_xy):
    """shap's TreeExplainer misreads LightGBM's categorical splits; ours must still add up exactly."""
    X, y = telco_xy
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=8, verbose=-1).fit(X, y)
    sv = shap_values(model, X, max_rows=150, interactions=True)
    np.testing.assert_allclose(sv.interactions.sum(axis=2), sv.values, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sv.interactions, np.transpose(sv.interactions, (0, 2, 1)), atol=1e-12)
    j = sv.feature_names.index("Contract")
    assert (
        np.abs(sv.interactions[:, j, :]).sum() > 0 and np.abs(np.diagonal(sv.interactions, axis1=1, axis2=2)).max() > 0
    )


def test_cvresult_and_other_tree_models(numeric):
    from sklearn.ensemble import GradientBoostingClassifier

    from workbench.data import make_folds
    from workbench.models import train_cv

    X, score, rng = numeric
    y = (score + rng.normal(size=len(X)) > 0).astype(int)
    cv = train_cv(
        lgb.LGBMClassifier(n_estimators=10, verbose=-1), X, y, make_folds(y, n_splits=3, random_state=0), progress=False
    )
    sv = shap_values(cv, X, max_rows=None)
    np.testing.assert_allclose(sv.values, np.mean([_tree_explainer(m, X)[0] for m in cv.models], axis=0), atol=1e-12)
    assert "mean of 3 fold models" in sv.engine
    Xf = X.fillna(0)
    gbm = GradientBoostingClassifier(n_estimators=20, max_depth=3, random_state=0).fit(Xf, y)
    sv = shap_values(gbm, Xf.to_numpy(), max_rows=None)
    np.testing.assert_allclose(sv.values, _tree_explainer(gbm, Xf.to_numpy())[0], atol=1e-12)
    assert sv.feature_names == ["a", "b", "c", "d"]  # the names the model was fitted with


def test_bad_input(numeric):
    from sklearn.linear_model import LogisticRegression

    X, score, rng = numeric
    y3 = np.digitize(score, [-1, 1])
    multi = lgb.LGBMClassifier(n_estimators=3, verbose=-1).fit(X, y3)
    with pytest.raises(ValueError, match="pass class_index=0..2"):
        shap_values(multi, X)
    with pytest.raises(ValueError, match="not fitted"):
        shap_values(lgb.LGBMRegressor(), X)
    linear = LogisticRegression().fit(X.fillna(0), (score > 0).astype(int))
    with pytest.raises(ValueError, match="explains tree models.*shap.Explainer"):
        shap_values(linear, X.fillna(0))
    with pytest.raises(
        ValueError, match=r"the 'max_rows' parameter of shap_values\(\) must be an int in the range \[1, inf\) or None"
    ):
        shap_values(multi, X, max_rows=0, class_index=0)


@pytest.mark.parametrize("task", ["regression", "binary", "multiclass"])
def test_xgboost_uses_its_own_treeshap(numeric, task):
    xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed (pip install workbench[xgboost])")
    X, score, rng = numeric
    y = {"regression": score, "binary": (score > 0).astype(int), "multiclass": np.digitize(score, [-1, 1])}[task]
    model = (xgb.XGBRegressor if task == "regression" else xgb.XGBClassifier)(n_estimators=15, max_depth=3)
    model.fit(X, y)
    k = 1 if task == "multiclass" else None
    sv = shap_values(model, X, max_rows=300, class_index=k, interactions=True)
    assert sv.engine == "XGBoost pred_contribs"
    ref, base = _tree_explainer(model, sv.data)
    ref = ref[..., k] if task == "multiclass" else ref
    np.testing.assert_allclose(sv.values, ref, rtol=0, atol=1e-6)  # float32 values, as XGBoost computes them
    assert sv.base_value == pytest.approx(base[k or 0], abs=1e-6)
    margin = np.asarray(model.predict(sv.data, output_margin=True)).reshape(len(sv.data), -1)[:, k or 0]
    np.testing.assert_allclose(sv.raw_prediction(), margin, rtol=0, atol=1e-5)
    np.testing.assert_allclose(sv.interactions.sum(axis=2), sv.values, rtol=0, atol=1e-5)


@pytest.mark.parametrize("task", ["regression", "multiclass"])
def test_catboost_uses_its_own_treeshap(numeric, task):
    """Additivity, and brute-force Shapley values of E[f | x_S] from the engine's weighted walk."""
    cb = pytest.importorskip("catboost", reason="the catboost extra is not installed (pip install workbench[catboost])")
    from workbench.explain.model_info import tree_ensemble

    X, score, rng = numeric
    X = X.iloc[:, :3]
    y = score if task == "regression" else np.digitize(score, [-1, 1])
    cls = cb.CatBoostRegressor if task == "regression" else cb.CatBoostClassifier
    model = cls(iterations=6, depth=3, random_seed=0, verbose=0, allow_writing_files=False).fit(X, y)
    k = 2 if task == "multiclass" else None
    rows = X.iloc[:4]
    sv = shap_values(model, rows, max_rows=None, class_index=k, interactions=True)
    assert sv.engine == "CatBoost ShapValues"
    raw = np.asarray(model.predict(rows, prediction_type="RawFormulaVal")).reshape(len(rows), -1)[:, k or 0]
    np.testing.assert_allclose(sv.raw_prediction(), raw, rtol=0, atol=1e-9)
    np.testing.assert_allclose(sv.interactions.sum(axis=2), sv.values, rtol=0, atol=1e-9)
    ensemble = tree_ensemble(model)
    m = rows.shape[1]

    def expectation(x, subset):
        point = np.asarray([[x[j] for j in subset]], dtype=np.float32).astype(float)
        return recursion_raw(ensemble, list(subset), point)[0, k or 0]

    for i, x in enumerate(rows.to_numpy()):
        for j in range(m):
            assert sv.values[i, j] == pytest.approx(_brute_shapley(expectation, x, j, m), abs=1e-9)
