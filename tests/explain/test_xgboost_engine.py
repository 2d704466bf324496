"""XGBoost in the tree engine: the parse is reused while the booster is unchanged and read again when
it changes; single-output models are permuted tree by tree with float32 sums, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.explain._trees import predict_raw, to_matrix
from workbench.explain.model_info import tree_ensemble

xgb = pytest.importorskip("xgboost", reason="the xgboost extra is not installed (pip install workbench[xgboost])")


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 4))
    return X, (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


def _margins_match(ensemble, booster, X) -> bool:
    ours = predict_raw(ensemble, to_matrix(ensemble, X))[:, 0]
    return np.array_equal(ours.astype(np.float32), booster.predict(xgb.DMatrix(X), output_margin=True))


def test_an_unchanged_model_is_read_once(data):
    X, y = data
    model = xgb.XGBClassifier(n_estimators=5, max_depth=3, random_state=0, n_jobs=1).fit(X, y)
    assert tree_ensemble(model) is tree_ensemble(model)


def test_a_refit_with_the_same_tree_count_is_read_again(data):
    X, y = data
    model = xgb.XGBClassifier(n_estimators=5, max_depth=3, random_state=0, n_jobs=1).fit(X, y)
    first = tree_ensemble(model)
    model.fit(X, 1 - y)  # same rounds, other trees
    second = tree_ensemble(model)
    assert second is not first
    assert _margins_match(second, model.get_booster(), X)


def test_continued_training_is_read_again(data):
    X, y = data
    model = xgb.XGBClassifier(n_estimators=3, max_depth=3, random_state=0, n_jobs=1).fit(X, y)
    first = tree_ensemble(model)
    model.fit(X, y, xgb_model=model.get_booster())  # three more rounds on the trees it has
    second = tree_ensemble(model)
    assert second.n_trees == first.n_trees + 3
    assert _margins_match(second, model.get_booster(), X)


def test_a_booster_trained_or_loaded_in_place_is_read_again(data):
    X, y = data
    dtrain = xgb.DMatrix(X, label=y)
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
    booster = xgb.train(params, dtrain, num_boost_round=3)
    first = tree_ensemble(booster)
    assert tree_ensemble(booster) is first
    booster.update(dtrain, 3)  # one more round, the same object
    second = tree_ensemble(booster)
    assert second.n_trees == 4 and _margins_match(second, booster, X)
    other = xgb.train(params, xgb.DMatrix(X, label=1 - y), num_boost_round=4)
    booster.load_model(other.save_raw("ubj"))  # same object, same round count, other trees
    third = tree_ensemble(booster)
    assert third is not second and _margins_match(third, booster, X)


def test_tree_by_tree_permutation_equals_the_row_kernel_and_xgboost(data, monkeypatch):
    """Float32 running sums in both kernels, each permuted row's score equal to XGBoost's margin."""
    from workbench.explain import _permutation_engine as engine
    from workbench.explain import _permutation_forest as forest

    X, y = data
    X = np.column_stack([X, np.round(X[:, 0], 1)])  # a feature with repeated values: shared donor walks
    X[::17, 1] = np.nan  # missing values take the default branch
    model = xgb.XGBRegressor(n_estimators=30, max_depth=5, base_score=0.3, random_state=0, n_jobs=1)
    model.fit(X, X[:, 0] + np.nan_to_num(X[:, 1]) * X[:, 4] + y)
    ensemble = tree_ensemble(model)
    units = [[f] for f in range(X.shape[1])]
    perms = np.stack([np.random.RandomState(r).permutation(len(X)) for r in range(3)])
    M = to_matrix(ensemble, X)
    assert forest.applies(ensemble, units)
    permuted, raw = engine.permuted_raw_scores(ensemble, M, units, perms)
    monkeypatch.setattr(forest, "applies", lambda *_: False)  # the row-major kernel, as for multiclass
    by_row, raw_by_row = engine.permuted_raw_scores(ensemble, M, units, perms)
    assert np.array_equal(permuted, by_row) and np.array_equal(raw, raw_by_row)
    booster = model.get_booster()
    for u, r in [(0, 0), (1, 2), (4, 1)]:
        shuffled = X.copy()
        shuffled[:, u] = X[perms[r], u]
        margin = booster.predict(xgb.DMatrix(shuffled), output_margin=True)
        assert np.array_equal(permuted[u, r, :, 0].astype(np.float32), margin)
    assert np.array_equal(raw[:, 0].astype(np.float32), booster.predict(xgb.DMatrix(X), output_margin=True))
