"""Every level uses the same folds: group, time and scikit-learn splitters; results computed earlier."""

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, ShuffleSplit, TimeSeriesSplit, cross_val_predict

from workbench.data import make_folds
from workbench.models import CVResult, train_cv
from workbench.stacking import Stack


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n = 900
    X = pd.DataFrame(rng.normal(size=(n, 5)), columns=[f"x{i}" for i in range(5)])
    groups = np.repeat(np.arange(90), 10)
    group_effect = rng.normal(scale=0.8, size=90)[groups]
    y = (X["x0"] - 0.7 * X["x1"] + group_effect + rng.normal(scale=0.8, size=n) > 0).astype(int)
    return X, y.to_numpy(), groups


def lgbm():
    return LGBMClassifier(n_estimators=25, num_leaves=7, verbose=-1, n_jobs=1, random_state=0)


def two_levels(**kw):
    return Stack(
        [[("lr", LogisticRegression()), ("lgbm", lgbm())], [("meta", LogisticRegression())]], progress=False, **kw
    )


def test_group_folds_hold_at_every_level(data):
    X, y, groups = data
    stack = two_levels(folds=GroupKFold(n_splits=4)).fit(X, y, groups=groups)
    folds = np.asarray(stack.folds_)
    assert all(np.unique(folds[groups == g]).size == 1 for g in np.unique(groups))  # groups never split
    splits = list(GroupKFold(n_splits=4).split(X, y, groups))
    reference = cross_val_predict(LogisticRegression(), X, y, cv=splits, method="predict_proba")[:, 1]
    np.testing.assert_allclose(stack.level_oof(1)["level1/lr"].to_numpy(), reference, atol=1e-12)
    for result in stack.results_.values():
        np.testing.assert_array_equal(np.asarray(result.folds), folds)
    meta_ref = cross_val_predict(LogisticRegression(), stack.level_oof(1), y, cv=splits, method="predict_proba")[:, 1]
    np.testing.assert_allclose(stack.oof_, meta_ref, atol=1e-12)
    by_number = two_levels(folds=make_folds(y, kind="group", n_splits=4, groups=groups, random_state=0)).fit(X, y)
    assert by_number.folds_.kind == "group"
    with_int = two_levels(folds=4).fit(X, y, groups=groups)
    assert with_int.folds_.kind == "group"
    assert all(np.unique(np.asarray(with_int.folds_)[groups == g]).size == 1 for g in np.unique(groups))


def test_time_folds_lose_one_block_per_level(data):
    X, y, _ = data
    folds = make_folds(y, kind="time", n_splits=4)
    levels = [[("lr", LogisticRegression())], [("lr2", LogisticRegression())], [("top", LogisticRegression())]]
    stack = Stack(levels, folds=folds, progress=False).fit(X, y, X_test=X.iloc[:30])
    ids = np.asarray(folds)
    level1, level2 = stack.level_oof(1)["level1/lr"].to_numpy(), stack.level_oof(2)["level2/lr2"].to_numpy()
    assert np.isnan(level1[ids == -1]).all() and not np.isnan(level1[ids >= 0]).any()
    assert np.isnan(level2[ids <= 0]).all() and not np.isnan(level2[ids >= 1]).any()
    assert np.isnan(stack.oof_[ids <= 1]).all() and not np.isnan(stack.oof_[ids >= 2]).any()
    # By hand: level 2's model for block k trains only on the earlier blocks that have level-1 OOF.
    for k in (1, 2, 3):
        train, val = (ids >= 0) & (ids < k), ids == k
        manual = LogisticRegression().fit(level1[train, None], y[train]).predict_proba(level1[val, None])[:, 1]
        np.testing.assert_allclose(level2[val], manual, atol=1e-12)
    assert stack.score_ == pytest.approx(roc_auc_score(y[ids >= 2], stack.oof_[ids >= 2]))
    assert stack.test_pred_.shape == (30,) and not np.isnan(stack.test_pred_).any()
    with pytest.raises(ValueError, match="4 folds allow at most 3 levels"):
        Stack([*levels, [("more", LogisticRegression())]], folds=folds, progress=False).fit(X, y)


def test_timeseriessplit_is_accepted_and_checked(data):
    X, y, _ = data
    stack = two_levels(folds=TimeSeriesSplit(n_splits=4)).fit(X, y)
    assert stack.folds_.kind == "time"
    oof = stack.level_oof(1)["level1/lr"].to_numpy()
    for train, val in TimeSeriesSplit(n_splits=4).split(X):
        manual = LogisticRegression().fit(X.iloc[train], y[train]).predict_proba(X.iloc[val])[:, 1]
        np.testing.assert_allclose(oof[val], manual, atol=1e-12)
    direct = train_cv(LogisticRegression(), X, y, TimeSeriesSplit(n_splits=4), progress=False)
    np.testing.assert_array_equal(direct.oof, oof)
    with pytest.raises(ValueError, match="cannot be reused level after level"):
        two_levels(folds=TimeSeriesSplit(n_splits=4, gap=10)).fit(X, y)
    with pytest.raises(ValueError, match="no validation fold|validates rows that another fold"):
        two_levels(folds=ShuffleSplit(n_splits=3, test_size=0.2, random_state=0)).fit(X, y)


@pytest.fixture(scope="module")
def saved_run(data, tmp_path_factory):
    X, y, _ = data
    folds = make_folds(y, n_splits=4, random_state=3)
    cv = train_cv(LogisticRegression(C=0.5), X, y, folds, X_test=X.iloc[:40], progress=False)
    return cv, cv.save(tmp_path_factory.mktemp("runs") / "lr-run" / "cv")


def test_saved_results_are_used_as_they_are(data, saved_run):
    X, y, _ = data
    cv, path = saved_run
    stack = Stack([[("lr_run", path), ("lgbm", lgbm())], [("meta", LogisticRegression())]], progress=False)
    stack.fit(X, y, X_test=X.iloc[:40])
    np.testing.assert_array_equal(np.asarray(stack.folds_), np.asarray(cv.folds))  # folds taken from the result
    np.testing.assert_array_equal(stack.level_oof(1)["level1/lr_run"].to_numpy(), cv.oof)
    np.testing.assert_array_equal(stack.level_test(1)["level1/lr_run"].to_numpy(), cv.test_pred)
    assert [m.source for m in stack.models_] == ["given", "fit", "fit"] and stack.n_fits_ == 2
    np.testing.assert_allclose(stack.predict(X.iloc[:40]), stack.test_pred_, atol=1e-12)  # reads its fold models

    only_runs = Stack([[cv, ("again", CVResult.load(path))], [("meta", LogisticRegression())]], progress=False).fit(
        X, y
    )
    assert only_runs.test_pred_ is not None and only_runs.n_fits_ == 1  # test predictions come with the runs
    assert list(only_runs.level_oof(1).columns) == ["level1/logisticregression", "level1/again"]


def test_saved_results_must_match_the_stack(data, saved_run):
    X, y, _ = data
    cv, path = saved_run
    with pytest.raises(ValueError, match=r"trained on other folds .* Pass folds=<that result>.folds"):
        Stack(
            [[path, lgbm()], [LogisticRegression()]], folds=make_folds(y, n_splits=4, random_state=4), progress=False
        ).fit(X, y)
    order = np.random.default_rng(0).permutation(len(y))
    with pytest.raises(ValueError, match="records auc=.* other rows, another row order or another target"):
        Stack([[path]], folds=cv.folds, progress=False).fit(X.iloc[order], y[order])
    with pytest.raises(ValueError, match="only level 1 may use results computed elsewhere"):
        Stack([[lgbm()], [path]])
    no_test = train_cv(LogisticRegression(), X, y, cv.folds, progress=False)
    with pytest.raises(ValueError, match="has no test predictions, but X_test was given"):
        Stack([[no_test, lgbm()]], progress=False).fit(X, y, X_test=X.iloc[:40])
    with pytest.raises(ValueError, match="out-of-fold predictions for 900 rows, but X has 899"):
        Stack([[cv]], folds=3, progress=False).fit(X.iloc[:899], y[:899])
    with pytest.warns(UserWarning, match="no test predictions: level-1 models \\['lgbm'\\] have none"):
        mixed = Stack([[cv, lgbm()], [LogisticRegression()]], progress=False).fit(X, y)
    assert mixed.test_pred_ is None
