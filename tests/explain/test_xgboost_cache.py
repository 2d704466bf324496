"""The parsed XGBoost model is reused while the booster is unchanged, and read again when it changes."""

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
