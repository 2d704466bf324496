import pickle

import numpy as np
import pytest
from sklearn.model_selection import GroupKFold, KFold

from workbench.data import fold_splits, make_folds


@pytest.mark.parametrize("kind", ["stratified", "kfold", "group", "time"])
def test_folds_are_reproducible_and_complete(kind):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    groups = rng.integers(0, 60, 1000)
    a = make_folds(y, kind=kind, n_splits=4, groups=groups, random_state=3)
    b = make_folds(y, kind=kind, n_splits=4, groups=groups, random_state=3)
    assert a.kind == kind and len(a) == 1000
    np.testing.assert_array_equal(a, b)
    expected = {-1, 0, 1, 2, 3} if kind == "time" else {0, 1, 2, 3}
    assert set(np.unique(a)) == expected
    if kind != "time":
        assert not np.array_equal(a, make_folds(y, kind=kind, n_splits=4, groups=groups, random_state=4))


def test_stratified_keeps_class_balance():
    y = np.r_[np.zeros(900), np.ones(100)].astype(int)
    f = make_folds(y, n_splits=5)
    assert all(y[f == k].sum() == 20 for k in range(5))


def test_stratified_regression_uses_bins():
    y = np.random.default_rng(0).lognormal(size=500)
    f = make_folds(y, n_splits=5)
    means = [y[f == k].mean() for k in range(5)]
    assert max(means) / min(means) < 1.3


def test_group_folds_keep_groups_together():
    groups = np.repeat(np.arange(50), 7)
    f = make_folds(np.zeros(350), kind="group", groups=groups, n_splits=5)
    for g in range(50):
        assert np.unique(f[groups == g]).size == 1


def test_time_folds_train_on_the_past_only():
    t = np.arange(600)[::-1]  # rows in reverse time order
    f = make_folds(np.zeros(600), kind="time", n_splits=5, time=t)
    splits, fold_of_row = fold_splits(f, 600)
    for train, val in splits:
        assert t[train].max() < t[val].min()
    assert (fold_of_row == -1).sum() == 100


def test_fold_splits_accepts_splitters_and_pairs():
    X = np.zeros((100, 2))
    splits, fold = fold_splits(KFold(4, shuffle=True, random_state=0), 100, X)
    assert len(splits) == 4 and (fold >= 0).all()
    pairs = [(tr, va) for tr, va in GroupKFold(5).split(X, groups=np.arange(100) % 10)]
    splits2, _ = fold_splits(pairs, 100)
    assert len(splits2) == 5


def test_pickle_keeps_kind():
    f = make_folds(np.arange(20) % 2, kind="time", n_splits=3)
    assert pickle.loads(pickle.dumps(f)).kind == "time"


def test_bad_fold_input():
    with pytest.raises(ValueError, match="the .kind. parameter of make_folds.. must be one of"):
        make_folds([0, 1] * 10, kind="random")
    with pytest.raises(ValueError, match="needs groups"):
        make_folds([0, 1] * 10, kind="group")
    with pytest.raises(ValueError, match="rarest class has 2 rows"):
        make_folds([0] * 20 + [1, 1], n_splits=5)
    with pytest.raises(ValueError, match="in no validation fold"):
        fold_splits([(np.arange(5, 10), np.arange(0, 5))] * 1 + [(np.arange(0, 5), np.arange(5, 8))], 10)
    with pytest.raises(ValueError, match="negative fold number"):
        fold_splits(np.array([0, 1, -1, 0, 1]), 5)
    with pytest.raises(ValueError, match="5 entries but the data has 6 rows"):
        fold_splits(np.array([0, 1, 0, 1, 0]), 6)
