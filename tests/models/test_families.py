"""Model families beside LightGBM, their importances and the stack's meta model, against scikit-learn by hand."""

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, ExtraTreesRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from workbench.data import make_folds
from workbench.models import default_extratrees, default_lgbm, default_logreg, mean_importance, train_cv
from workbench.stacking import Stack, meta_model

CATS = ["Contract", "InternetService", "PaymentMethod", "PaperlessBilling", "TechSupport"]
NUMS = ["tenure", "MonthlyCharges", "TotalCharges", "SeniorCitizen"]


@pytest.fixture(scope="module")
def data(telco):
    """1,500 Telco rows: five categories and four numbers (TotalCharges has missing values)."""
    rows = telco.iloc[:1500].reset_index(drop=True)
    X, y = rows[CATS + NUMS], rows["Churn"]
    X.loc[:40, "TotalCharges"] = np.nan  # more missing values than Telco's own 11
    folds = make_folds(y, n_splits=3, random_state=0)
    return X, y, folds, [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(3)]


def test_logreg_is_logistic_regression_on_one_hot_and_standardised_features(data):
    X, y, folds, splits = data
    cv = train_cv(default_logreg("binary", random_state=0, C=0.5), X, y, folds, progress=False)
    by_hand = make_pipeline(
        ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore"), CATS),
                ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()), NUMS),
            ]
        ),
        LogisticRegression(C=0.5, max_iter=2000),
    )
    reference = cross_val_predict(by_hand, X, y, cv=splits, method="predict_proba")[:, 1]
    np.testing.assert_allclose(cv.oof, reference, rtol=0, atol=1e-10)
    assert cv.score > 0.8


def test_extratrees_is_extra_trees_on_ordinal_codes(data):
    X, y, folds, splits = data
    cv = train_cv(default_extratrees("binary", random_state=3, n_estimators=40), X, y, folds, progress=False)
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-2)
    by_hand = make_pipeline(
        ColumnTransformer([("cat", codes, CATS), ("num", SimpleImputer(strategy="median", add_indicator=True), NUMS)]),
        ExtraTreesClassifier(n_estimators=40, min_samples_leaf=20, max_features=0.5, random_state=3),
    )
    reference = cross_val_predict(by_hand, X, y, cv=splits, method="predict_proba")[:, 1]
    np.testing.assert_allclose(cv.oof, reference, rtol=0, atol=1e-12)
    again = train_cv(default_extratrees("binary", random_state=3, n_estimators=40), X, y, folds, progress=False)
    np.testing.assert_array_equal(cv.oof, again.oof)  # seeded: same numbers twice


def test_families_follow_the_task_and_refuse_bad_settings(data):
    X, y, *_ = data
    assert (
        isinstance(default_logreg("regression", C=4.0)[-1], Ridge)
        and default_logreg("regression", C=4.0)[-1].alpha == 0.25
    )
    assert isinstance(default_extratrees("regression")[-1], ExtraTreesRegressor)
    numeric_target = X["MonthlyCharges"]
    fitted = default_logreg("regression").fit(X.drop(columns="MonthlyCharges"), numeric_target)
    assert fitted.predict(X.drop(columns="MonthlyCharges")).shape == (len(X),)
    with pytest.raises(ValueError, match="C must be a positive number"):
        default_logreg(C=0)
    with pytest.raises(ValueError, match="unknown task 'ranking'"):
        default_extratrees("ranking")


def test_str_columns_are_encoded_like_categories(data):
    X, y, folds, _ = data
    as_text = X.assign(**{c: X[c].astype("str") for c in CATS})
    a = train_cv(default_logreg(), X, y, folds, progress=False)
    b = train_cv(default_logreg(), as_text, y, folds, progress=False)
    np.testing.assert_allclose(a.oof, b.oof, rtol=0, atol=1e-10)


def test_mean_importance_averages_the_fold_models(data):
    X, y, folds, _ = data
    et = train_cv(default_extratrees(n_estimators=30), X, y, folds, progress=False)
    imp = mean_importance(et)
    names = list(et.models[0][:-1].get_feature_names_out())
    by_hand = pd.Series(np.mean([m[-1].feature_importances_ for m in et.models], axis=0), index=names)
    pd.testing.assert_series_equal(imp, by_hand.sort_values(ascending=False, kind="stable"), check_names=False)
    assert imp.name == "impurity decrease" and set(CATS + NUMS) <= set(imp.index)

    lr = train_cv(default_logreg(), X, y, folds, progress=False)
    coef = mean_importance(lr)
    first = lr.models[0]
    assert coef.name == "|coefficient|" and "Contract_Two year" in coef.index
    k = list(first[:-1].get_feature_names_out()).index("tenure")
    assert coef["tenure"] == pytest.approx(np.mean([abs(m[-1].coef_[0, k]) for m in lr.models]))

    gbm = train_cv(default_lgbm(n_estimators=30, n_jobs=1), X, y, folds, progress=False)
    pd.testing.assert_series_equal(
        mean_importance(gbm), gbm.feature_importance["mean"].sort_values(ascending=False), check_names=False
    )
    assert mean_importance(gbm).name == "gain"


def test_logreg_meta_model_works_on_log_odds(data):
    X, y, folds, splits = data
    members = [("logreg", default_logreg()), ("et", default_extratrees(n_estimators=30))]
    stack = Stack(
        [members, [("meta", meta_model("logreg", "binary", random_state=0))]], folds=folds, progress=False
    ).fit(X, y)
    level1 = stack.level_oof(1)
    reference = cross_val_predict(
        LogisticRegression(max_iter=2000),
        logit(np.clip(level1.to_numpy(), 1e-6, 1 - 1e-6)),
        y,
        cv=splits,
        method="predict_proba",
    )[:, 1]
    np.testing.assert_allclose(stack.oof_, reference, rtol=0, atol=1e-10)

    restacked = Stack([members, [("meta", meta_model("logreg"))]], folds=folds, restack=True, progress=False).fit(X, y)
    inputs = restacked.results_["level2/meta"].models[0][0].get_feature_names_out()
    assert {"level1/logreg", "level1/et", "Contract_Two year", "tenure"} <= set(inputs)


def test_meta_model_choices():
    assert isinstance(meta_model("logreg", "regression", C=2.0)[-1], Ridge)
    gbm = meta_model("lgbm", "binary", random_state=4)
    assert gbm.get_params()["random_state"] == 4 and gbm.get_params()["num_leaves"] == 4
    with pytest.raises(ValueError, match=r"unknown meta model 'xgb'; choose one of \('logreg', 'lgbm'\)"):
        meta_model("xgb")


def test_reference_notebooks_offer_exactly_these_choices():
    from pathlib import Path

    from workbench.jobs import inspect_notebook
    from workbench.models import MODEL_FAMILIES
    from workbench.stacking import META_MODELS

    notebooks = Path(__file__).resolve().parents[2] / "notebooks"
    assert inspect_notebook(notebooks / "train.ipynb").parameters["model"].type.choices == MODEL_FAMILIES
    assert inspect_notebook(notebooks / "stack.ipynb").parameters["meta"].type.choices == META_MODELS
