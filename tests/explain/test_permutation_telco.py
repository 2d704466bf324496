"""Permutation importance on Telco: the seed analysis' findings, eli5's ranking, plots, and the selection loop."""

import io

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance as sklearn_pi
from sklearn.model_selection import train_test_split

from workbench.data import make_folds
from workbench.explain import (
    PermutationImportances,
    cv_permutation_importance,
    drop_noisy_features,
    permutation_importance,
)
from workbench.explain.selection import noisy_features
from workbench.models import train_cv

PARAMS = {
    "n_estimators": 150,
    "learning_rate": 0.04,
    "num_leaves": 8,
    "min_child_samples": 40,
    "verbose": -1,
    "random_state": 0,
    "n_jobs": 1,
}


@pytest.fixture(scope="module")
def split(telco_xy):
    X, y = telco_xy
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def telco_pi(split):
    X_train, X_valid, y_train, y_valid = split
    model = lgb.LGBMClassifier(**PARAMS).fit(X_train, y_train)
    return permutation_importance(model, X_valid, y_valid, scoring="roc_auc", n_repeats=5, progress=False)


def test_contract_and_tenure_lead(telco_pi):
    assert telco_pi.engine == "tree"
    assert set(list(telco_pi.top_features(2).index)) == {"Contract", "tenure"}
    # gender, Partner and Dependents carry (almost) nothing once the contract and tenure are known
    assert telco_pi.mean[["gender", "Partner", "Dependents"]].max() < 0.1 * telco_pi.mean["tenure"]


def test_same_top_ranking_as_eli5(split, telco_pi):
    from eli5.sklearn import PermutationImportance

    X_train, X_valid, y_train, y_valid = split
    # eli5 feeds NumPy arrays to the model, so give it the category codes as LightGBM categoricals.
    cats = [i for i, c in enumerate(X_train.columns) if isinstance(X_train[c].dtype, pd.CategoricalDtype)]

    def codes(frame):
        return np.column_stack(
            [
                frame.iloc[:, i].cat.codes.to_numpy(float) if i in cats else frame.iloc[:, i].to_numpy(float)
                for i in range(frame.shape[1])
            ]
        )

    model = lgb.LGBMClassifier(**PARAMS).fit(codes(X_train), y_train, categorical_feature=cats)
    eli5_pi = PermutationImportance(model, scoring="roc_auc", n_iter=5, random_state=0, cv="prefit")
    eli5_pi.fit(codes(X_valid), y_valid)
    eli5_rank = list(pd.Series(eli5_pi.feature_importances_, index=X_valid.columns).sort_values(ascending=False).index)
    assert eli5_rank[:2] == list(telco_pi.top_features(2).index)
    assert set(eli5_rank[:4]) == set(list(telco_pi.top_features(4).index))


def test_eli5_interop_and_plots(telco_pi):
    import eli5
    from matplotlib.image import imread

    explanation = telco_pi.to_eli5(top=8)
    html = eli5.format_as_html(explanation)
    assert "Contract" in html and "tenure" in html and "more" in html
    table = eli5.format_as_dataframe(explanation)
    np.testing.assert_allclose(table.set_index("feature")["weight"], telco_pi.mean[table["feature"]], rtol=1e-12)
    for kind in ("bar", "box"):
        fig = telco_pi.plot(kind=kind, top=10)
        assert [t.get_text() for t in fig.axes[0].get_yticklabels()][-1] == list(telco_pi.top_features(1).index)[0]
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=60)
        pixels = imread(io.BytesIO(buf.getvalue()))[..., :3]
        assert (pixels.min(axis=2) < 0.9).mean() > 0.02, f"{kind} plot is blank"
    with pytest.raises(ValueError, match="kind must be one of 'bar', 'box'"):
        telco_pi.plot(kind="pie")


def test_noisy_features_decide_on_the_mean_not_a_single_repeat():
    table = pd.DataFrame(
        [
            [0.010, 0.012, -0.002, 0.011],
            [0.001, -0.002, -0.001, 0.0005],
            [0.0, 0.0, 0.0, 0.0],
            [0.002, 0.0, 0.001, 0.0],
        ],
        index=pd.Index(["helps", "hurts", "unused", "weak"], name="feature"),
    )
    result = PermutationImportances(table, baseline_score=0.8, scoring="roc_auc", n_rows=100)
    assert noisy_features(result) == ["hurts", "unused"]
    assert noisy_features(result, noise=1.0) == ["hurts", "unused", "weak"]  # weak: 0.00075 <= 1 * 0.00083
    with pytest.raises(ValueError, match="at least two repeats"):
        noisy_features(PermutationImportances(table.iloc[:, :1], 0.8, "roc_auc", 100))
    with pytest.raises(ValueError, match="noise must be >= 0"):
        noisy_features(result, noise=-1)


def test_cv_permutation_importance_is_sklearn_on_each_validation_fold(telco_xy):
    X, y = telco_xy
    X, y = X.iloc[:3000], y.iloc[:3000]
    folds = make_folds(y, n_splits=3, random_state=0)
    cv = train_cv(lgb.LGBMClassifier(**{**PARAMS, "n_estimators": 60}), X, y, folds, progress=False)
    pooled = cv_permutation_importance(cv, X, y, n_repeats=2, random_state=4, progress=False)
    assert pooled.scoring == "roc_auc" and pooled.importances.shape == (X.shape[1], 6)
    for k in range(3):
        rows = np.flatnonzero(np.asarray(folds) == k)
        ref = sklearn_pi(cv.models[k], X.iloc[rows], y.iloc[rows], scoring="roc_auc", n_repeats=2, random_state=4 + k)
        np.testing.assert_allclose(pooled.importances.filter(like=f"fold{k}_"), ref.importances, rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="X must have the columns cv was trained on"):
        cv_permutation_importance(cv, X.iloc[:, ::-1], y)


def test_drop_noisy_features_drops_noise_and_reports_both_scores(telco_xy):
    X, y = telco_xy
    rng = np.random.default_rng(0)
    X = X.assign(**{f"noise_{k}": rng.normal(size=len(X)) for k in range(3)})
    folds = make_folds(y, n_splits=4, random_state=0)
    estimator = lgb.LGBMClassifier(**PARAMS)
    sel = drop_noisy_features(estimator, X, y, folds=folds, metric="auc", n_repeats=3, noise=1.0, progress=False)
    imp = sel.importances[0]
    expected = [c for c in X.columns if imp.mean[c] <= imp.std[c]]
    assert sel.dropped == expected and sel.kept == [c for c in X.columns if c not in expected]
    assert {"noise_0", "noise_1", "noise_2"} <= set(sel.dropped)
    assert {"Contract", "tenure"} <= set(sel.kept)
    # old vs new score: exactly what train_cv reports on all and on the kept features
    before = train_cv(estimator, X, y, folds, metric="auc", progress=False).score
    after = train_cv(estimator, X[sel.kept], y, folds, metric="auc", progress=False).score
    assert (sel.score_before, sel.score_after) == (before, after)
    assert sel.improved == (after > before)
    summary = sel.to_frame()
    assert list(summary["n_features"]) == [X.shape[1], len(sel.kept)] and summary.loc[0, "dropped_next"] == expected
    assert "auc" in sel._repr_html_() and "dropped" in repr(sel)
