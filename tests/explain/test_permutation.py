"""Permutation importance: the same numbers as scikit-learn, from both engines, and bit-exact permuted scores."""

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance as sklearn_pi
from sklearn.metrics import make_scorer, mean_absolute_error

from workbench.explain import PermutationImportances, permutation_importance, sklearn_permutations
from workbench.explain._permutation_engine import permuted_raw_scores
from workbench.explain._trees import parse_lightgbm, to_matrix

TOL = 1e-9


def _frame(n, seed=0):
    """Numeric, integer-valued, categorical, NaN-laden and zero-heavy columns."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.integers(0, 40, n).astype(float),
            "c": pd.Categorical(rng.choice(list("pqrstuvwxyz"), n)),
            "d": rng.exponential(size=n),
            "e": rng.integers(0, 2, n),
            "noise": rng.normal(size=n),
        }
    )
    X.loc[rng.random(n) < 0.1, "a"] = np.nan
    X.loc[rng.random(n) < 0.2, "d"] = 0.0
    logit = (
        X["a"].fillna(0) + X["c"].isin(["p", "q", "r"]) * 1.5 - 0.05 * X["b"] + np.log1p(X["d"]) + 0.5 * X["e"]
    ).to_numpy()
    return X, logit, rng


@pytest.fixture(scope="module")
def binary():
    X, logit, rng = _frame(2400)
    y = (logit + rng.normal(size=len(X)) > 0).astype(int)
    model = lgb.LGBMClassifier(
        n_estimators=40, num_leaves=15, min_child_samples=10, verbose=-1, n_jobs=1, random_state=0
    )
    model.fit(X.iloc[:1600], y[:1600])
    return model, X.iloc[1600:], y[1600:]


def _assert_same(ours: PermutationImportances, ref) -> None:
    np.testing.assert_allclose(ours.to_sklearn().importances, ref.importances, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.importances_mean, ref.importances_mean, rtol=0, atol=TOL)
    np.testing.assert_allclose(ours.to_sklearn().importances_std, ref.importances_std, rtol=0, atol=TOL)


@pytest.mark.parametrize("scoring", ["roc_auc", "neg_log_loss", "accuracy", None, "average_precision", "f1"])
def test_binary_matches_sklearn(binary, scoring):
    model, X, y = binary
    ours = permutation_importance(model, X, y, scoring=scoring, n_repeats=4, random_state=7, progress=False)
    ref = sklearn_pi(model, X, y, scoring=scoring, n_repeats=4, random_state=7)
    assert ours.engine == "tree"
    _assert_same(ours, ref)
    assert ours.importances.loc["noise"].abs().max() < ours.importances.loc["c"].min()


def test_generic_engine_matches_sklearn_and_lightgbm_engine(binary):
    model, X, y = binary
    fast = permutation_importance(model, X, y, scoring="roc_auc", random_state=3, progress=False)
    generic = permutation_importance(model, X, y, scoring="roc_auc", random_state=3, engine="generic", progress=False)
    ref = sklearn_pi(model, X, y, scoring="roc_auc", n_repeats=5, random_state=3)
    assert (fast.engine, generic.engine) == ("tree", "generic")
    _assert_same(generic, ref)
    np.testing.assert_allclose(fast.importances, generic.importances, rtol=0, atol=TOL)


def test_max_samples_int_and_fraction(binary):
    model, X, y = binary
    for max_samples in (300, 0.4):
        ours = permutation_importance(
            model, X, y, scoring="roc_auc", max_samples=max_samples, random_state=1, progress=False
        )
        ref = sklearn_pi(model, X, y, scoring="roc_auc", max_samples=max_samples, random_state=1)
        _assert_same(ours, ref)
        assert ours.n_rows == (300 if max_samples == 300 else int(0.4 * len(X)))


def test_multiclass_matches_sklearn():
    X, logit, rng = _frame(2400, seed=1)
    y = np.array(["low", "mid", "high"])[np.digitize(logit + rng.normal(size=len(X)), [-0.5, 1.0])]
    model = lgb.LGBMClassifier(n_estimators=15, num_leaves=7, verbose=-1, n_jobs=1, random_state=0)
    model.fit(X.iloc[:1600], y[:1600])
    Xv, yv = X.iloc[1600:], y[1600:]
    for scoring in ("neg_log_loss", "accuracy", "roc_auc_ovr"):
        ours = permutation_importance(model, Xv, yv, scoring=scoring, n_repeats=3, random_state=0, progress=False)
        assert ours.engine == "tree"
        _assert_same(ours, sklearn_pi(model, Xv, yv, scoring=scoring, n_repeats=3, random_state=0))


@pytest.mark.parametrize("objective", ["regression", "poisson"])
def test_regression_matches_sklearn(objective):
    X, logit, rng = _frame(2400, seed=2)
    y = np.exp(0.3 * logit) + rng.exponential(size=len(X))
    model = lgb.LGBMRegressor(objective=objective, n_estimators=30, num_leaves=15, verbose=-1, n_jobs=1, random_state=0)
    model.fit(X.iloc[:1600], y[:1600])
    Xv, yv = X.iloc[1600:], y[1600:]
    for scoring in ("r2", "neg_root_mean_squared_error", make_scorer(mean_absolute_error, greater_is_better=False)):
        ours = permutation_importance(model, Xv, yv, scoring=scoring, n_repeats=3, random_state=5, progress=False)
        assert ours.engine == "tree"
        _assert_same(ours, sklearn_pi(model, Xv, yv, scoring=scoring, n_repeats=3, random_state=5))


def test_numpy_input_zero_as_missing_and_sample_weight():
    X, logit, rng = _frame(2000, seed=3)
    Xn = X.drop(columns="c").to_numpy()
    y = (logit + rng.normal(size=len(X)) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=30, zero_as_missing=True, verbose=-1, n_jobs=1).fit(Xn[:1400], y[:1400])
    w = rng.uniform(0.5, 2.0, size=600)
    ours = permutation_importance(model, Xn[1400:], y[1400:], scoring="roc_auc", sample_weight=w, progress=False)
    assert ours.engine == "tree" and list(ours.importances.index) == [0, 1, 2, 3, 4]
    _assert_same(ours, sklearn_pi(model, Xn[1400:], y[1400:], scoring="roc_auc", sample_weight=w, random_state=0))


def test_other_estimators_and_callable_scorers_use_the_generic_engine():
    from sklearn.ensemble import RandomForestRegressor

    X, logit, rng = _frame(900, seed=4)
    Xn = X.drop(columns="c")
    y = logit + rng.normal(size=len(X))
    model = RandomForestRegressor(n_estimators=10, max_depth=5, random_state=0).fit(Xn[:600], y[:600])

    def mae_scorer(estimator, X_, y_):
        return -float(np.mean(np.abs(estimator.predict(X_) - y_)))

    for scoring, engine in ((None, "tree"), (mae_scorer, "generic")):  # forests are read by the tree engine
        ours = permutation_importance(model, Xn[600:], y[600:], scoring=scoring, n_repeats=3, progress=False)
        assert ours.engine == engine
        _assert_same(ours, sklearn_pi(model, Xn[600:], y[600:], scoring=scoring, n_repeats=3, random_state=0))
    lgbm = lgb.LGBMRegressor(n_estimators=10, verbose=-1, n_jobs=1).fit(Xn[:600], y[:600])
    assert permutation_importance(lgbm, Xn[600:], y[600:], scoring=mae_scorer, progress=False).engine == "generic"


def _hand_permuted_scores(model, X, y, cols, n_repeats, random_state, scorer):
    """What scikit-learn would do for a group: one seeded row shuffle per repeat, applied cumulatively."""
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    rs = np.random.RandomState(seed)
    idx = np.arange(len(X))
    Xp = X.copy()
    scores = []
    for _ in range(n_repeats):
        rs.shuffle(idx)
        block = Xp[cols].iloc[idx]
        block.index = Xp.index
        Xp[cols] = block
        scores.append(scorer(model, Xp, y))
    return np.array(scores)


def test_groups_permute_columns_together(binary):
    from sklearn.metrics import get_scorer

    model, X, y = binary
    groups = {"ab": ["a", "b"], "cde": ["c", "d", "e"]}
    for engine in ("tree", "generic"):
        ours = permutation_importance(
            model,
            X,
            y,
            scoring="roc_auc",
            n_repeats=3,
            feature_groups=groups,
            random_state=11,
            engine=engine,
            progress=False,
        )
        assert list(ours.importances.index) == ["ab", "cde", "noise"]
        assert ours.feature_groups == groups
        scorer = get_scorer("roc_auc")
        baseline = scorer(model, X, y)
        for name, cols in groups.items():
            hand = baseline - _hand_permuted_scores(model, X, y, cols, 3, 11, scorer)
            np.testing.assert_allclose(ours.importances.loc[name], hand, rtol=0, atol=TOL)
    single = permutation_importance(model, X, y, scoring="roc_auc", feature_groups={"only_c": ["c"]}, progress=False)
    plain = permutation_importance(model, X, y, scoring="roc_auc", progress=False)
    np.testing.assert_array_equal(single.importances.loc["only_c"], plain.importances.loc["c"])
    subset = permutation_importance(model, X, y, scoring="roc_auc", features=["c", "a"], progress=False)
    np.testing.assert_array_equal(subset.importances, plain.importances.loc[["a", "c"]])


def test_permuted_raw_scores_are_bit_identical_to_lightgbm():
    X, logit, rng = _frame(1500, seed=5)
    y = np.digitize(logit + rng.normal(size=len(X)), [-0.5, 1.0])
    model = lgb.LGBMClassifier(n_estimators=12, num_leaves=31, min_child_samples=5, verbose=-1, n_jobs=1).fit(X, y)
    ensemble = parse_lightgbm(model)
    rows, perms = sklearn_permutations(len(X), 2, 0)
    assert rows is None and sorted(perms[1]) == list(range(len(X)))
    units = [[0], [2], [3], [1, 4]]
    permuted, raw = permuted_raw_scores(ensemble, to_matrix(ensemble, X), units, perms)
    np.testing.assert_array_equal(raw, model.predict(X, raw_score=True))
    for u, cols in enumerate(units):
        for r in range(2):
            Xp = X.copy()
            for c in cols:
                Xp.isetitem(c, X.iloc[perms[r], c].reset_index(drop=True).set_axis(X.index))
            np.testing.assert_array_equal(permuted[u, r], model.predict(Xp, raw_score=True))


def test_result_rendering(binary):
    model, X, y = binary
    result = permutation_importance(model, X, y, scoring="roc_auc", feature_groups={"ab": ["a", "b"]}, progress=False)
    frame = result.to_frame()
    assert list(frame.columns[:2]) == ["mean", "std"] and frame["mean"].is_monotonic_decreasing
    np.testing.assert_allclose(frame["mean"], frame.filter(like="repeat_").mean(axis=1))
    html = result._repr_html_()
    assert all(str(name) in html for name in frame.index) and "&plusmn;" in html and "2 columns" in html
    assert list(result.top_features(2).index) == list(frame.index[:2])
    assert "roc_auc" in repr(result)


def test_bad_input(binary):
    from sklearn.exceptions import NotFittedError

    model, X, y = binary
    with pytest.raises(NotFittedError, match="not fitted yet"):
        permutation_importance(lgb.LGBMClassifier(), X, y)
    with pytest.raises(ValueError, match=r"group 'g' names column 'zz', which is not|'zz' is not a column"):
        permutation_importance(model, X, y, feature_groups={"g": ["a", "zz"]})
    with pytest.raises(ValueError, match="feature 'tenur' is not a column of X; did you mean"):
        permutation_importance(model, X.rename(columns={"a": "tenure"}), y, features=["tenur"])
    with pytest.raises(ValueError, match="in feature groups 'g1' and 'g2'"):
        permutation_importance(model, X, y, feature_groups={"g1": ["a", "b"], "g2": ["b"]})
    with pytest.raises(ValueError, match="part of group 'g1'"):
        permutation_importance(model, X, y, feature_groups={"g1": ["a", "b"]}, features=["a"])
    with pytest.raises(ValueError, match="unknown scoring 'roc-auc'; did you mean"):
        permutation_importance(model, X, y, scoring="roc-auc")
    with pytest.raises(ValueError, match="X has 800 rows but y has 799"):
        permutation_importance(model, X, y[:-1])
    with pytest.raises(
        ValueError,
        match=r"the 'n_repeats' parameter of permutation_importance\(\) must be an int in the range \[1, inf\); got 0",
    ):
        permutation_importance(model, X, y, n_repeats=0)
    with pytest.raises(
        ValueError,
        match=r"the 'n_jobs' parameter of permutation_importance\(\) must be None \(one worker\), a positive int",
    ):
        permutation_importance(model, X, y, n_jobs=0)
    with pytest.raises(ValueError, match="max_samples=2000 must be between 1 and the number of rows"):
        permutation_importance(model, X, y, max_samples=2000)
    for name in ("tree", "lightgbm"):  # "lightgbm": the tree engine's older name
        with pytest.raises(ValueError, match="the tree engine does not apply"):
            permutation_importance(model, X, y, scoring=lambda est, X_, y_: 0.0, engine=name)
    multi = lgb.LGBMClassifier(n_estimators=3, verbose=-1, n_jobs=1).fit(X, np.arange(len(X)) % 3)
    with pytest.raises(ValueError, match="applies to binary targets, but the model has 3 classes"):
        permutation_importance(multi, X, np.arange(len(X)) % 3, scoring="roc_auc")


def test_early_stopping_ova_rf_and_linear_trees_stay_exact():
    from sklearn.datasets import make_classification

    X, y = make_classification(1200, 6, n_informative=4, n_classes=3, random_state=0)
    fit_X, fit_y, X_valid, y_valid = X[:800], y[:800], X[800:], y[800:]
    common = {"verbose": -1, "n_jobs": 1, "random_state": 0}
    cases = [
        (
            lgb.LGBMClassifier(n_estimators=300, learning_rate=0.3, **common),
            {"eval_X": (X_valid,), "eval_y": (y_valid,), "callbacks": [lgb.early_stopping(3, verbose=False)]},
            "tree",
        ),
        (lgb.LGBMClassifier(objective="multiclassova", n_estimators=8, **common), {}, "tree"),
        (
            lgb.LGBMClassifier(boosting_type="rf", subsample=0.7, subsample_freq=1, n_estimators=8, **common),
            {},
            "generic",
        ),
        (lgb.LGBMClassifier(linear_tree=True, n_estimators=8, **common), {}, "generic"),
    ]
    for model, fit_kwargs, engine in cases:
        model.fit(fit_X, fit_y, **fit_kwargs)
        ours = permutation_importance(model, X_valid, y_valid, scoring="accuracy", n_repeats=2, progress=False)
        assert ours.engine == engine, model
        _assert_same(ours, sklearn_pi(model, X_valid, y_valid, scoring="accuracy", n_repeats=2, random_state=0))
    assert 0 < cases[0][0].best_iteration_ < 300


def test_compiled_auc_sorts_as_numpy_and_scores_as_sklearn():
    from sklearn.metrics import roc_auc_score

    from workbench.explain._permutation_engine import _sorted, roc_auc_many

    rng = np.random.default_rng(4)
    scores = rng.normal(size=(6, 500)) * np.array([[1.0], [1e-300], [1e300], [1.0], [1.0], [1.0]])
    scores[3] = np.round(scores[3], 1)  # many ties
    scores[3, :40] = np.where(np.arange(40) % 2, 0.0, -0.0)  # both zeros compare equal
    scores[4] = 1.0 / (1.0 + np.exp(-40 * scores[4]))  # probabilities, many of them exactly 1.0
    scores[5, [3, 77]] = np.nan  # NaN sorts last, as NumPy does
    for row in scores:
        ordered = _sorted(row.copy())
        assert np.array_equal(ordered, np.sort(row), equal_nan=True)
    positive = rng.random(500) < 0.3
    ours = roc_auc_many(scores[:5], positive)
    np.testing.assert_allclose(ours, [roc_auc_score(positive, s) for s in scores[:5]], rtol=0, atol=1e-12)
