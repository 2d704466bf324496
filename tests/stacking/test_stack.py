"""Stack on Telco: beats its best base model, trains level 2 on out-of-fold inputs only, shows its work."""

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import log_loss, mean_squared_error, roc_auc_score
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from stacking_counting import CountingExtraTrees, CountingLGBM, CountingLogisticRegression

from workbench.data import make_folds
from workbench.models import train_cv
from workbench.stacking import Stack, StackModel


def telco_columns(X):
    cats = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
    return cats, [c for c in X.columns if c not in cats]


def base_models(X):
    """Three diverse level-1 models: gradient boosting, a linear model on one-hot features, ExtraTrees."""
    cats, nums = telco_columns(X)
    lgbm = CountingLGBM(
        n_estimators=80,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=40,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.6,
        random_state=0,
        n_jobs=1,
        verbose=-1,
    )
    logreg = make_pipeline(
        make_column_transformer(
            (OneHotEncoder(handle_unknown="ignore"), cats), (make_pipeline(SimpleImputer(), StandardScaler()), nums)
        ),
        CountingLogisticRegression(max_iter=1000),
    )
    extra = make_pipeline(
        make_column_transformer((OrdinalEncoder(), cats), (SimpleImputer(), nums)),
        CountingExtraTrees(n_estimators=60, min_samples_leaf=10, max_features=0.5, random_state=0, n_jobs=1),
    )
    return [("lgbm_leaves15", lgbm), ("logreg_onehot", logreg), ("extratrees", extra)]


@pytest.fixture(scope="module")
def telco_stack(telco_xy, tmp_path_factory):
    X, y = telco_xy
    folds = make_folds(y, n_splits=5, random_state=0)
    X_test = X.iloc[:400]
    stack = Stack(
        [base_models(X), [("logreg", LogisticRegression())]],
        folds=folds,
        cache_dir=tmp_path_factory.mktemp("stack-cache"),
        progress=False,
    )
    stack.fit(X, y, X_test=X_test)
    return stack, X, y, folds, X_test


def splits_of(folds):
    return [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(folds.n_splits)]


def test_stack_beats_best_single_model_on_telco(telco_stack):
    stack, X, y, folds, _ = telco_stack
    table = stack.to_frame()
    print("\n" + table[["column", "score", "score_std", "source", "fit_s"]].to_string(index=False))
    level1 = {c: roc_auc_score(y, stack.level_oof(1)[c]) for c in stack.level_oof(1).columns}
    best_name = max(level1, key=level1.get)
    print(f"best single model {best_name}: AUC {level1[best_name]:.5f}; stack (level 2): AUC {stack.score_:.5f}")
    assert stack.score_ == pytest.approx(roc_auc_score(y, stack.oof_), abs=1e-12)
    assert stack.score_ >= level1[best_name]
    assert min(level1.values()) > 0.80  # three real models, not a strawman
    for row in table.itertuples():
        assert row.score == pytest.approx(roc_auc_score(y, stack.level_oof(row.level)[row.column]), abs=1e-12)


def test_level2_trains_on_out_of_fold_inputs_only(telco_stack):
    """Level 2 sees exactly the cross-validated predictions that scikit-learn's cross_val_predict gives."""
    stack, X, y, folds, _ = telco_stack
    level1 = stack.level_oof(1)
    for name, model in base_models(X):
        reference = cross_val_predict(model, X, y, cv=splits_of(folds), method="predict_proba")[:, 1]
        np.testing.assert_allclose(level1[f"level1/{name}"].to_numpy(), reference, rtol=0, atol=1e-12)
    meta = stack.results_["level2/logreg"]
    assert meta.feature_names == list(level1.columns)
    honest = train_cv(LogisticRegression(), level1, y, folds, progress=False)
    np.testing.assert_array_equal(meta.oof, honest.oof)


def test_in_sample_level1_predictions_would_inflate_the_score(telco_stack):
    """The guard can fail: feeding level 2 in-sample predictions instead of OOF ones inflates its CV score."""
    stack, X, y, folds, _ = telco_stack
    in_sample = pd.DataFrame(
        {f"level1/{name}": model.fit(X, y).predict_proba(X)[:, 1] for name, model in base_models(X)}
    )
    leaky = train_cv(LogisticRegression(), in_sample, y, folds, progress=False)
    print(f"\nlevel-2 AUC on OOF inputs {stack.score_:.5f}; on in-sample inputs {leaky.score:.5f} (leaked)")
    assert leaky.score > stack.score_ + 0.01
    assert not np.allclose(in_sample.to_numpy(), stack.level_oof(1).to_numpy())


def test_test_predictions_flow_through_fold_averages(telco_stack):
    stack, X, y, folds, X_test = telco_stack
    level1_test = stack.level_test(1)
    for name, _ in base_models(X):
        result = stack.results_[f"level1/{name}"]
        loaded = stack.models_[[m.label for m in stack.models_].index(f"level1/{name}")].with_models()
        expected = np.mean([m.predict_proba(X_test)[:, 1] for m in loaded.models], axis=0)
        np.testing.assert_allclose(level1_test[f"level1/{name}"].to_numpy(), expected, rtol=0, atol=1e-12)
        assert result.n_splits == 5
    meta_models = stack.models_[-1].with_models().models
    expected_final = np.mean([m.predict_proba(level1_test)[:, 1] for m in meta_models], axis=0)
    np.testing.assert_allclose(stack.test_pred_, expected_final, rtol=0, atol=1e-12)
    np.testing.assert_allclose(stack.predict(X_test), stack.test_pred_, rtol=0, atol=1e-12)


def test_introspection_names_table_correlation_plot(telco_stack):
    stack, X, y, *_ = telco_stack
    oof = stack.level_oof(1)
    assert list(oof.columns) == ["level1/lgbm_leaves15", "level1/logreg_onehot", "level1/extratrees"]
    assert list(stack.level_oof(2).columns) == ["level2/logreg"] == list(stack.level_oof(-1).columns)
    table = stack.to_frame()
    assert list(table["column"]) == [*oof.columns, "level2/logreg"]
    assert set(table["source"]) <= {"fit", "cache"}
    corr = stack.correlation(1)
    np.testing.assert_allclose(corr.to_numpy(), np.corrcoef(oof.to_numpy().T), atol=1e-12)
    fig = stack.plot()
    score_ax, corr_ax = fig.axes[:2]
    assert [t.get_text() for t in score_ax.get_yticklabels()] == list(table["column"])
    assert [t.get_text() for t in corr_ax.get_xticklabels()] == ["lgbm_leaves15", "logreg_onehot", "extratrees"]
    html = stack._repr_html_()
    assert "level1/extratrees" in html and f"{stack.score_:.5f}" in html
    with pytest.raises(ValueError, match="level must be 1..2"):
        stack.level_oof(3)


def test_restack_passes_original_features_up(telco_xy):
    X, y = telco_xy
    index = pd.Index(np.arange(1500)[::-1] * 3, name="row")  # rows keep their own labels throughout
    X, y = X.iloc[:1500].set_axis(index), y.iloc[:1500].set_axis(index)
    folds = make_folds(y, n_splits=3, random_state=1)
    meta = LGBMClassifier(n_estimators=30, num_leaves=7, verbose=-1, random_state=0, n_jobs=1)
    stack = Stack(
        [[("lgbm", LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1))], [("meta", meta)]],
        folds=folds,
        restack=True,
        progress=False,
    ).fit(X, y, X_test=X.iloc[:100])
    level2 = stack.results_["level2/meta"]
    assert level2.feature_names == [*X.columns, "level1/lgbm"]
    assert stack.level_oof(1).index.equals(X.index) and stack.level_test(1).index.equals(X.index[:100])
    reference = train_cv(meta, pd.concat([X, stack.level_oof(1)], axis=1), y, folds, progress=False)
    np.testing.assert_array_equal(stack.oof_, reference.oof)
    np.testing.assert_allclose(stack.predict(X.iloc[:100]), stack.test_pred_, atol=1e-12)


def test_three_levels_and_per_model_options(telco_xy):
    """Each model keeps its own fit_params, early stopping and feature subset; levels chain on OOF."""
    X, y = telco_xy
    X, y = X.iloc[:2000].reset_index(drop=True), y.iloc[:2000].reset_index(drop=True)
    folds = make_folds(y, n_splits=4, random_state=2)
    weights = np.where(y == 1, 2.0, 1.0)
    es = StackModel(
        LGBMClassifier(n_estimators=1000, learning_rate=0.1, verbose=-1, n_jobs=1),
        name="lgbm_es",
        early_stopping_rounds=10,
    )
    weighted = StackModel(
        LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1),
        name="lgbm_w",
        fit_params={"sample_weight": weights},
        features=["tenure", "Contract", "MonthlyCharges"],
    )
    small = LGBMClassifier(n_estimators=20, num_leaves=4, verbose=-1, n_jobs=1)
    stack = Stack(
        [[es, weighted], [LogisticRegression(), small], [("top", LogisticRegression(C=0.5))]],
        folds=folds,
        random_state=3,
        progress=False,
    ).fit(X, y)
    assert stack.test_pred_ is None
    es_result = stack.results_["level1/lgbm_es"]
    assert (es_result.timings["best_iteration"] < 1000).all()
    manual = train_cv(
        LGBMClassifier(n_estimators=40, verbose=-1, n_jobs=1, random_state=3),
        X[["tenure", "Contract", "MonthlyCharges"]],
        y,
        folds,
        fit_params={"sample_weight": weights},
        progress=False,
    )
    np.testing.assert_array_equal(stack.level_oof(1)["level1/lgbm_w"].to_numpy(), manual.oof)
    assert list(stack.level_oof(2).columns) == ["level2/logisticregression", "level2/lgbm"]
    small_ref = train_cv(small.set_params(random_state=3), stack.level_oof(1), y, folds, progress=False)
    np.testing.assert_array_equal(stack.level_oof(2)["level2/lgbm"].to_numpy(), small_ref.oof)
    top = train_cv(LogisticRegression(C=0.5), stack.level_oof(2), y, folds, progress=False)
    np.testing.assert_array_equal(stack.oof_, top.oof)
    assert stack.results_["level1/lgbm_es"].models[0].random_state == 3  # unset seeds take the stack's seed


def test_multiclass_stack_has_a_column_per_class():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(900, 5)), columns=[f"x{i}" for i in range(5)])
    y = np.array(["low", "mid", "high"])[
        np.digitize(X["x0"] + 0.5 * X["x1"] + rng.normal(scale=0.5, size=900), [-0.6, 0.6])
    ]
    folds = make_folds(y, n_splits=3, random_state=0)
    stack = Stack(
        [
            [LogisticRegression(max_iter=500), LGBMClassifier(n_estimators=30, verbose=-1, n_jobs=1)],
            [("meta", LogisticRegression(max_iter=500))],
        ],
        folds=folds,
        progress=False,
    ).fit(X, y, X_test=X.iloc[:50])
    assert list(stack.level_oof(1).columns) == [
        "level1/logisticregression/high",
        "level1/logisticregression/low",
        "level1/logisticregression/mid",
        "level1/lgbm/high",
        "level1/lgbm/low",
        "level1/lgbm/mid",
    ]
    assert stack.oof_.shape == (900, 3) and stack.test_pred_.shape == (50, 3)
    assert stack.score_ == pytest.approx(log_loss(np.searchsorted(["high", "low", "mid"], y), stack.oof_))
    reference = cross_val_predict(LogisticRegression(max_iter=500), X, y, cv=splits_of(folds), method="predict_proba")
    np.testing.assert_allclose(stack.level_oof(1).iloc[:, :3].to_numpy(), reference, atol=1e-10)


def test_regression_stack():
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(800, 4)), columns=list("abcd"))
    y = 2 * X["a"] - X["b"] ** 2 + rng.normal(scale=0.3, size=800)
    stack = Stack(
        [[Ridge(), ("lgbm", LGBMRegressor(n_estimators=50, verbose=-1, n_jobs=1))], [Ridge(alpha=0.1)]],
        folds=4,
        progress=False,
    ).fit(X, y)
    assert stack.task_ == "regression" and stack.metric_.name == "rmse"
    assert stack.folds_.kind == "kfold"
    assert stack.score_ == pytest.approx(np.sqrt(mean_squared_error(y, stack.oof_)))
    assert stack.score_ < min(stack.results_["level1/ridge"].score, stack.results_["level1/lgbm"].score) + 1e-9


def test_bad_input_is_named():
    X = pd.DataFrame({"a": np.arange(100.0), "b": np.arange(100.0) % 7})
    y = (np.arange(100) % 2 == 0).astype(int)
    with pytest.raises(ValueError, match="levels must be a non-empty list"):
        Stack([])
    with pytest.raises(ValueError, match="level 1 must be a list of models"):
        Stack([LogisticRegression()])
    with pytest.raises(ValueError, match="level 2 is empty"):
        Stack([[LogisticRegression()], []])
    with pytest.raises(ValueError, match="names \\['lr'\\] more than once"):
        Stack([[("lr", LogisticRegression()), ("lr", Ridge())]])
    with pytest.raises(ValueError, match="model name 'a/b' is not allowed"):
        Stack([[("a/b", LogisticRegression())]])
    with pytest.raises(TypeError, match="cannot use int as a stack model"):
        Stack([[3]])
    with pytest.raises(ValueError, match="no saved CVResult"):
        Stack([["/nonexistent/run"]])
    with pytest.raises(ValueError, match="features \\['nope'\\] are not among"):
        Stack([[StackModel(LogisticRegression(), features=["nope"])]], folds=3, progress=False).fit(X, y)
    with pytest.raises(ValueError, match="X has 100 rows but y has 99"):
        Stack([[LogisticRegression()]], folds=3, progress=False).fit(X, y[:99])
    with pytest.raises(ValueError, match="must be two-dimensional"):
        Stack([[LogisticRegression()]], folds=3, progress=False).fit(X["a"], y)
    with pytest.raises(ValueError, match="not fitted yet"):
        Stack([[LogisticRegression()]]).to_frame()
    auto = Stack([[LogisticRegression(), LogisticRegression(C=2.0)]], folds=3, progress=False).fit(X, y)
    assert list(auto.level_oof(1).columns) == ["level1/logisticregression", "level1/logisticregression_2"]
    assert auto.test_pred_ is None and auto.n_fits_ == 2
