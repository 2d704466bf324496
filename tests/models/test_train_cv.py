import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import KFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from workbench.data import make_folds
from workbench.models import CVResult, Metric, default_lgbm, train_cv


def small_lgbm(**kw):
    return LGBMClassifier(n_estimators=60, num_leaves=15, learning_rate=0.1, verbose=-1, random_state=0, n_jobs=2, **kw)


@pytest.fixture(scope="module")
def telco_cv(telco_xy):
    X, y = telco_xy
    folds = make_folds(y, n_splits=5, random_state=0)
    return train_cv(small_lgbm(), X, y, folds, X_test=X.iloc[:300], metric="auc", progress=False), X, y, folds


def test_overall_auc_is_auc_of_oof(telco_cv):
    cv, X, y, folds = telco_cv
    assert cv.score == pytest.approx(roc_auc_score(y, cv.oof), abs=1e-12)
    for k in range(5):
        rows = np.asarray(folds) == k
        assert cv.fold_scores[k] == pytest.approx(roc_auc_score(y[rows], cv.oof[rows]), abs=1e-12)
    assert 0.80 < cv.score < 0.90


def test_each_fold_model_reproduces_its_oof_rows(telco_cv):
    cv, X, y, folds = telco_cv
    for k, model in enumerate(cv.models):
        rows = np.flatnonzero(np.asarray(folds) == k)
        np.testing.assert_array_equal(model.predict_proba(X.iloc[rows])[:, 1], cv.oof[rows])


def test_test_prediction_is_fold_average(telco_cv):
    cv, X, y, _ = telco_cv
    expected = np.mean([m.predict_proba(X.iloc[:300])[:, 1] for m in cv.models], axis=0)
    np.testing.assert_allclose(cv.test_pred, expected, rtol=0, atol=1e-15)
    np.testing.assert_allclose(cv.predict(X.iloc[:300]), expected, rtol=0, atol=1e-15)


def test_lightgbm_uses_category_columns_natively(telco_cv):
    cv, X, _, _ = telco_cv
    booster = cv.models[0].booster_
    cat_cols = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    assert len(booster.pandas_categorical) == len(cat_cols) == 15
    assert cv.feature_importance is not None
    assert set(cv.feature_importance.index) == set(X.columns)
    assert "Contract" in cv.top_features(5).index


def test_same_seed_same_oof(telco_xy):
    X, y = telco_xy
    runs = [
        train_cv(
            small_lgbm(subsample=0.8, subsample_freq=1, colsample_bytree=0.7),
            X,
            y,
            make_folds(y, random_state=7),
            progress=False,
        )
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0].oof, runs[1].oof)


def test_sklearn_estimator_matches_cross_val_predict(telco_xy):
    X, y = telco_xy
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    nums = ["tenure", "MonthlyCharges", "SeniorCitizen"]
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(handle_unknown="ignore"), cats), (StandardScaler(), nums)),
        LogisticRegression(max_iter=500),
    )
    folds = make_folds(y, n_splits=5, random_state=1)
    splits = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(5)]
    cv = train_cv(model, X, y, folds, progress=False)
    reference = cross_val_predict(model, X, y, cv=splits, method="predict_proba")[:, 1]
    np.testing.assert_allclose(cv.oof, reference, rtol=0, atol=1e-12)
    assert cv.feature_importance is None


def test_multiclass_with_string_labels():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 4)), columns=list("abcd"))
    y = np.where(X["a"] > 0.5, "high", np.where(X["a"] < -0.5, "low", "mid"))
    folds = make_folds(y, n_splits=3, random_state=0)
    cv = train_cv(LogisticRegression(max_iter=300), X, y, folds, progress=False)
    assert cv.task == "multiclass" and cv.metric == "logloss" and cv.classes == ["high", "low", "mid"]
    assert cv.oof.shape == (600, 3)
    np.testing.assert_allclose(cv.oof.sum(axis=1), 1.0)
    codes = np.searchsorted(cv.classes, y)
    assert cv.score == pytest.approx(log_loss(codes, cv.oof), abs=1e-12)
    lgb = train_cv(
        LGBMClassifier(n_estimators=30, verbose=-1), X, y, folds, metric="auc", early_stopping_rounds=5, progress=False
    )
    assert lgb.score > 0.95


def test_regression_with_early_stopping():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(800, 5)), columns=[f"x{i}" for i in range(5)])
    y = 3 * X["x0"] - X["x1"] ** 2 + rng.normal(scale=0.1, size=800)
    folds = make_folds(y, kind="kfold", n_splits=4)
    cv = train_cv(
        LGBMRegressor(n_estimators=3000, learning_rate=0.1, verbose=-1),
        X,
        y,
        folds,
        early_stopping_rounds=20,
        progress=False,
    )
    assert cv.task == "regression" and cv.metric == "rmse"
    assert cv.score == pytest.approx(np.sqrt(mean_squared_error(y, cv.oof)), abs=1e-12)
    assert all(m.best_iteration_ < 3000 for m in cv.models)
    assert cv.timings["best_iteration"].notna().all()
    ridge = train_cv(Ridge(), X, y, KFold(4, shuffle=True, random_state=0), metric="r2", progress=False)
    assert ridge.metric == "r2" and 0 < ridge.score < 1


class _MyLGBM(LGBMRegressor):
    """A user's subclass: still LightGBM for early stopping and importance."""


def test_subclasses_of_lightgbm_models_are_treated_as_lightgbm():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(600, 3)), columns=["a", "b", "c"])
    y = X["a"] * 2 + rng.normal(scale=0.1, size=600)
    cv = train_cv(
        _MyLGBM(n_estimators=2000, learning_rate=0.2, verbose=-1),
        X,
        y,
        make_folds(y, kind="kfold", n_splits=3),
        early_stopping_rounds=10,
        progress=False,
    )
    assert all(m.best_iteration_ < 2000 for m in cv.models) and cv.feature_importance is not None


def test_early_stopping_with_a_metric_lightgbm_lacks(telco_xy):
    X, y = telco_xy
    cv = train_cv(small_lgbm(), X, y, make_folds(y, n_splits=3), metric="f1", early_stopping_rounds=5, progress=False)
    assert cv.metric == "f1" and 0.4 < cv.score < 0.8


def test_fit_params_per_row_follow_the_fold(telco_xy):
    X, y = telco_xy
    w = np.where(y == 1, 3.0, 1.0)
    folds = make_folds(y, n_splits=3, random_state=0)
    cv = train_cv(small_lgbm(), X, y, folds, fit_params={"sample_weight": w}, progress=False)
    k = 0
    train = np.flatnonzero(folds != k)
    manual = small_lgbm().fit(X.iloc[train], y.iloc[train], sample_weight=w[train])
    val = np.flatnonzero(folds == k)
    np.testing.assert_array_equal(manual.predict_proba(X.iloc[val])[:, 1], cv.oof[val])


def test_time_folds_leave_warmup_without_oof():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"t": np.arange(500.0), "x": rng.normal(size=500)})
    y = (X["x"] + rng.normal(scale=0.5, size=500) > 0).astype(int)
    folds = make_folds(y, kind="time", n_splits=4, time=X["t"])
    cv = train_cv(LogisticRegression(), X, y, folds, progress=False)
    warm = np.asarray(folds) == -1
    assert np.isnan(cv.oof[warm]).all() and not np.isnan(cv.oof[~warm]).any()
    assert cv.score == pytest.approx(roc_auc_score(y[~warm], cv.oof[~warm]))


def test_custom_metric():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = (X[:, 0] > 0).astype(int)
    brier = Metric("brier", lambda t, p: float(np.mean((t - p) ** 2)), greater_is_better=False)
    cv = train_cv(LogisticRegression(), X, y, make_folds(y, n_splits=3), metric=brier, progress=False)
    assert cv.metric == "brier" and not cv.greater_is_better
    assert cv.score == pytest.approx(np.mean((y - cv.oof) ** 2))
    assert cv.feature_names == ["x0", "x1", "x2"]


def test_save_load_round_trip(tmp_path, telco_cv):
    cv, X, y, _ = telco_cv
    cv.save(tmp_path / "cv")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers
    back = CVResult.load(tmp_path / "cv")
    np.testing.assert_array_equal(back.oof, cv.oof)
    np.testing.assert_array_equal(back.test_pred, cv.test_pred)
    np.testing.assert_array_equal(np.asarray(back.folds), np.asarray(cv.folds))
    assert back.folds.kind == "stratified"
    assert back.fold_scores == cv.fold_scores and back.score == cv.score
    assert back.classes == [0, 1] and back.metric == "auc" and back.task == "binary"
    np.testing.assert_array_equal(back.predict(X.iloc[:50]), cv.predict(X.iloc[:50]))
    pd.testing.assert_frame_equal(back.feature_importance, cv.feature_importance)
    assert (tmp_path / "cv" / "models" / "fold_0.lgbm.txt").exists()
    with pytest.raises(FileNotFoundError, match="no saved CVResult"):
        CVResult.load(tmp_path)


def test_html_summary(telco_cv):
    cv = telco_cv[0]
    page = cv._repr_html_()
    assert "LGBMClassifier" in page and f"{cv.score:.5f}" in page and "Contract" in page
    assert page.count("<tr>") >= 5 + 5
    summary = cv.to_frame()
    assert list(summary["fold"]) == [0, 1, 2, 3, 4, "overall"]


def test_bad_input_errors(telco_xy):
    X, y = telco_xy
    folds = make_folds(y, n_splits=3)
    y_nan = y.astype(float).copy()
    y_nan.iloc[[3, 10]] = np.nan
    with pytest.raises(ValueError, match=r"target contains 2 NaN value\(s\) \(first rows: \[3, 10\]\)"):
        train_cv(small_lgbm(), X, y_nan, folds, progress=False)
    with pytest.raises(ValueError, match="X has 7043 rows but y has 7042"):
        train_cv(small_lgbm(), X, y.iloc[1:], folds, progress=False)
    with pytest.raises(ValueError, match=r"missing from X_test \['tenure'\], not in X \['extra'\]"):
        train_cv(small_lgbm(), X, y, folds, X_test=X.drop(columns=["tenure"]).assign(extra=1), progress=False)
    with pytest.raises(ValueError, match="unknown metric 'aucc'"):
        train_cv(small_lgbm(), X, y, folds, metric="aucc", progress=False)
    with pytest.raises(ValueError, match="does not apply to a binary target"):
        train_cv(small_lgbm(), X, y, folds, metric="rmse", progress=False)
    half = np.arange(len(y)) < 3000
    pairs = [(np.flatnonzero(half), np.flatnonzero(~half)[:2000]), (np.flatnonzero(~half), np.flatnonzero(half))]
    with pytest.raises(ValueError, match="rows are in no validation fold"):
        train_cv(small_lgbm(), X, y, pairs, progress=False)
    with pytest.raises(ValueError, match="early_stopping_rounds works with LightGBM"):
        train_cv(LogisticRegression(), X[["tenure"]], y, folds, early_stopping_rounds=10, progress=False)


def test_default_lgbm_reaches_demo_quality(telco_xy):
    X, y = telco_xy
    cv = train_cv(
        default_lgbm("binary", random_state=0),
        X,
        y,
        make_folds(y, random_state=0),
        early_stopping_rounds=200,
        progress=False,
    )
    assert cv.score >= 0.845
