"""The oblivious-tree kernels (CatBoost): leaf indices as level bits, against the general tree walk,
CatBoost's own predict and scikit-learn's inspection functions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import assert_ice_equals_sklearn_brute

from workbench.explain import _oblivious
from workbench.explain._pdp_trees import ice_raw
from workbench.explain._permutation_engine import permuted_raw_scores
from workbench.explain._trees import predict_raw, to_matrix
from workbench.explain.model_info import tree_ensemble

cb = pytest.importorskip("catboost", reason="the catboost extra is not installed (pip install workbench[catboost])")

N = 300


@pytest.fixture(scope="module")
def data() -> dict:
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(N, 3)), columns=["a", "b", "c"])
    X.loc[rng.random(N) < 0.15, "b"] = np.nan
    X["cat"] = pd.Categorical(rng.choice(list("pqrst"), N))
    # a wavy signal in "a": the trees test "a" at several levels of the same tree
    signal = np.sin(3 * X["a"].to_numpy()) + 0.7 * np.nan_to_num(X["b"].to_numpy(), nan=1.5)
    signal = signal + 1.2 * (X["cat"] == "q").to_numpy() - 0.8 * (X["cat"] == "s").to_numpy()
    y = {
        "regression": signal + rng.normal(scale=0.2, size=N),
        "binary": (signal > 0.2).astype(int),
        "multiclass": np.digitize(signal, [-0.5, 0.8]),
    }
    return {"X": X, "y": y}


def _model(task: str, data: dict, nan_mode: str = "Min", depth: int = 5):
    cls = cb.CatBoostRegressor if task == "regression" else cb.CatBoostClassifier
    model = cls(
        iterations=20,
        depth=depth,
        one_hot_max_size=10,
        nan_mode=nan_mode,
        random_seed=0,
        verbose=0,
        thread_count=1,
        allow_writing_files=False,
    )
    return model.fit(data["X"], data["y"][task], cat_features=["cat"])


def _general_engine(monkeypatch) -> None:
    monkeypatch.setattr(_oblivious, "fits", lambda view, n_rows: False)


@pytest.mark.parametrize(("task", "nan_mode"), [("regression", "Min"), ("binary", "Max"), ("multiclass", "Min")])
def test_permuted_sums_equal_the_general_walk_bit_for_bit(data, task, nan_mode, monkeypatch):
    model = _model(task, data, nan_mode)
    e = tree_ensemble(model)
    view = _oblivious.oblivious_view(e)
    assert view is not None
    repeated = [len(set(f[f >= 0].tolist())) < (f >= 0).sum() for f in view.level_feature]
    assert any(repeated), "no tree tests a feature at two levels: the test lost its point"
    M = to_matrix(e, data["X"])
    perms = np.random.default_rng(0).permuted(np.tile(np.arange(N), (3, 1)), axis=1)
    units = [[0], [3], [1, 2]]  # numeric, one-hot categorical, a group of two columns (one with NaN)
    ours, raw = permuted_raw_scores(e, M, units, perms)
    np.testing.assert_array_equal(raw, predict_raw(e, M))
    np.testing.assert_array_equal(
        raw, np.asarray(model.predict(data["X"], prediction_type="RawFormulaVal")).reshape(N, -1)
    )
    _general_engine(monkeypatch)
    np.testing.assert_array_equal(raw, predict_raw(e, M))  # the general walk's leaves
    theirs, _ = permuted_raw_scores(e, M, units, perms)
    np.testing.assert_array_equal(ours, theirs)
    for u, cols in enumerate(units):  # and each one is the model's own raw score on the permuted rows
        permuted = data["X"].copy()
        for c in cols:
            permuted.iloc[:, c] = data["X"].iloc[perms[1], c].to_numpy()
        expected = np.asarray(model.predict(permuted, prediction_type="RawFormulaVal")).reshape(N, -1)
        np.testing.assert_array_equal(ours[u, 1], expected)


@pytest.mark.parametrize(("task", "table"), [("regression", True), ("binary", False), ("multiclass", True)])
def test_ice_sums_are_the_model_on_each_grid_value(data, task, table, monkeypatch):
    if not table:  # the leaf looked up per grid point, as for trees too deep for the table
        monkeypatch.setattr(_oblivious, "_MAX_TABLE", 0)
    model = _model(task, data, "Max")
    e = tree_ensemble(model)
    M = to_matrix(e, data["X"])
    grids = ((0, np.array([1.5, -2.0, 0.1, 0.1, 3.0])), (1, np.array([-0.3, 0.9])), (3, np.array([0.0, 2.0, 4.0])))
    ours = {feature: ice_raw(e, M, feature, values) for feature, values in grids}
    _general_engine(monkeypatch)  # the reference: the general tree walk
    for feature, values in grids:
        for g, value in enumerate(values):
            work = M.copy()
            work[:, feature] = value
            np.testing.assert_array_equal(ours[feature][:, g], predict_raw(e, work))


@pytest.mark.parametrize(
    ("task", "nan_mode", "scoring"),
    [
        ("regression", "Min", "r2"),
        ("binary", "Max", "roc_auc"),
        ("binary", "Min", "neg_log_loss"),
        ("multiclass", "Max", "neg_log_loss"),
    ],
)
def test_permutation_importance_equals_sklearn(data, task, nan_mode, scoring):
    from sklearn.inspection import permutation_importance as sklearn_pi

    from workbench.explain import permutation_importance

    model = _model(task, data, nan_mode)
    y = data["y"][task]
    ours = permutation_importance(model, data["X"], y, scoring=scoring, n_repeats=4, random_state=3, progress=False)
    theirs = sklearn_pi(model, data["X"], y, scoring=scoring, n_repeats=4, random_state=3)
    assert ours.engine == "tree"
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


@pytest.mark.parametrize(("task", "nan_mode"), [("regression", "Max"), ("binary", "Min"), ("multiclass", "Max")])
def test_exact_ice_equals_sklearn_brute(data, task, nan_mode):
    model = _model(task, data, nan_mode)
    X = data["X"]
    assert_ice_equals_sklearn_brute(model, X, ("a", "b", "cat"), grid=12)


def test_only_oblivious_layouts_are_read_as_such(data):
    from dataclasses import replace

    from lightgbm import LGBMRegressor

    lgbm = LGBMRegressor(n_estimators=3, num_leaves=4, verbose=-1).fit(data["X"][["a", "c"]], data["y"]["regression"])
    assert _oblivious.oblivious_view(tree_ensemble(lgbm)) is None
    e = tree_ensemble(_model("regression", data, depth=3))
    assert _oblivious.oblivious_view(e) is not None
    for field in ("threshold", "split_feature", "default_left"):  # one node of a level tests another split
        changed = getattr(e, field).copy()
        changed[2] = changed[2] + 1 if field != "default_left" else not changed[2]
        assert _oblivious.oblivious_view(replace(e, **{field: changed})) is None, field
    swapped = e.left.copy()
    swapped[0], swapped[1] = e.left[1], e.left[0]  # children out of heap order
    assert _oblivious.oblivious_view(replace(e, left=swapped)) is None


class CatBoostClassifier(cb.CatBoostClassifier):
    """Placed as CatBoost's classifier (so the engine reads it), but its probabilities are nudged."""

    __module__ = "catboost.core"

    def predict_proba(self, data, *args, **kwargs):
        return np.asarray(super().predict_proba(data, *args, **kwargs)) * (1 - 1e-12)


def test_a_catboost_model_is_still_checked_after_the_kernels(data):
    """CatBoost's outputs are compared after the kernels ran; a mismatch still falls back."""
    import warnings

    from sklearn.inspection import permutation_importance as sklearn_pi

    from workbench.explain import permutation_importance

    X, y = data["X"][["a", "b", "c"]], data["y"]["binary"]
    model = CatBoostClassifier(iterations=10, depth=3, random_seed=0, verbose=0, allow_writing_files=False).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = permutation_importance(model, X, y, scoring="neg_log_loss", n_repeats=2, random_state=0, progress=False)
    assert ours.engine == "generic"
    assert any("could not be reproduced" in str(w.message) for w in caught)
    theirs = sklearn_pi(model, X, y, scoring="neg_log_loss", n_repeats=2, random_state=0)
    np.testing.assert_allclose(np.asarray(ours.importances), theirs.importances, rtol=0, atol=1e-9)


def test_ice_probabilities_taken_in_the_kernel_equal_the_sigmoid_of_the_sums(data):
    from workbench.explain._pdp_trees import ice_output
    from workbench.explain._trees import raw_to_output

    model = _model("binary", data, "Min")
    e = tree_ensemble(model)
    M = to_matrix(e, data["X"])
    values = np.array([-1.0, 0.0, 0.3, 2.5])
    ours = ice_output(e, M, 0, values)
    raw = ice_raw(e, M, 0, values)
    np.testing.assert_array_equal(ours, raw_to_output(e, raw.reshape(-1, 1)).reshape(raw.shape))
    for g, value in enumerate(values):  # and CatBoost's own probabilities
        X = data["X"].copy()
        X["a"] = np.float32(value)
        np.testing.assert_array_equal(ours[:, g, 0], model.predict_proba(X)[:, 1])
