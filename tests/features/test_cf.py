"""Collaborative filtering: a worked example by hand, brute-force references, leak-free features."""

from math import sqrt

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor
from scipy.stats import pearsonr

from workbench.data import fold_splits, make_folds
from workbench.features import CFFeatures, cf
from workbench.models import train_cv

# ann and bob rated i1, i2, i3 as (1, 3, 5) and (4, 1, 1).
RATINGS = pd.DataFrame(
    [
        ("ann", "i1", 1),
        ("ann", "i2", 3),
        ("ann", "i3", 5),
        ("bob", "i1", 4),
        ("bob", "i2", 1),
        ("bob", "i3", 1),
        ("bob", "i4", 2),
        ("cat", "i1", 2),
        ("cat", "i3", 4),
        ("cat", "i4", 5),
        ("dan", "i2", 5),
        ("dan", "i4", 1),
    ],
    columns=["user", "item", "rating"],
)


@pytest.fixture
def matrix():
    return cf.rating_matrix(RATINGS)


def test_rating_matrix_is_users_by_items(matrix):
    assert list(matrix.index) == ["ann", "bob", "cat", "dan"] and list(matrix.columns) == ["i1", "i2", "i3", "i4"]
    assert matrix.loc["bob", "i4"] == 2 and np.isnan(matrix.loc["ann", "i4"])
    dup = pd.concat([RATINGS, pd.DataFrame([("ann", "i1", 3)], columns=RATINGS.columns)])
    assert cf.rating_matrix(dup).loc["ann", "i1"] == 2.0  # repeated pairs averaged


def test_worked_example_by_hand(matrix):
    dist = cf.euclidean_distance(matrix)
    # ann-bob over i1..i3: sqrt(3^2 + 2^2 + 4^2) = sqrt(29)
    assert dist.loc["ann", "bob"] == pytest.approx(sqrt(29))
    assert round(dist.loc["ann", "bob"], 2) == 5.39
    assert dist.loc["ann", "cat"] == pytest.approx(sqrt(2))  # over i1, i3
    assert dist.loc["bob", "cat"] == pytest.approx(sqrt(22))  # over i1, i3, i4
    assert dist.loc["ann", "dan"] == pytest.approx(2.0)  # over i2 only
    pearson = cf.similarity(matrix, "pearson")
    # deviations from the co-rated means: (-2, 0, 2) and (2, -1, -1): -6 / sqrt(8 * 6)
    assert pearson.loc["ann", "bob"] == pytest.approx(-6 / sqrt(48))
    assert round(pearson.loc["ann", "bob"], 3) == -0.866
    assert pearson.loc["bob", "cat"] == pytest.approx(-33 / 42)
    assert pearson.loc["ann", "cat"] == pytest.approx(1.0)
    assert pearson.loc["bob", "dan"] == pytest.approx(-1.0)
    assert np.isnan(pearson.loc["ann", "dan"])  # one co-rated item: undefined
    euclid = cf.similarity(matrix, "euclidean")
    assert euclid.loc["ann", "bob"] == pytest.approx(1 / (1 + sqrt(29)))

    # ann has not rated i4; bob (2), cat (5) and dan (1) have.
    s_bob, s_cat, s_dan = 1 / (1 + sqrt(29)), 1 / (1 + sqrt(2)), 1 / (1 + 2)
    weighted = s_bob * 2 + s_cat * 5 + s_dan * 1
    scores = cf.recommend_scores(matrix, "euclidean")
    assert scores.loc["ann", "i4"] == pytest.approx(weighted / 3)  # divided by the number of raters
    assert round(scores.loc["ann", "i4"], 4) == 0.9059
    by_sim = cf.recommend_scores(matrix, "euclidean", normalize="similarity")
    assert by_sim.loc["ann", "i4"] == pytest.approx(weighted / (s_bob + s_cat + s_dan))
    # Pearson: bob is opposite (left out), dan undefined, cat identical: 1.0 * 5 / 1.
    assert cf.recommend_scores(matrix, "pearson").loc["ann", "i4"] == pytest.approx(5.0)
    top = cf.recommend(matrix, "ann", n=3, method="euclidean")
    assert list(top.index) == ["i4"] and top.iloc[0] == pytest.approx(weighted / 3)


def test_item_based_scores_by_hand(matrix):
    items = cf.similarity(matrix, "pearson", kind="item")
    # i1 and i3 co-rated by ann (1, 5), bob (4, 1), cat (2, 4)
    assert items.loc["i1", "i3"] == pytest.approx(pearsonr([1, 4, 2], [5, 1, 4]).statistic)
    scores = cf.recommend_scores(matrix, "pearson", kind="item")
    # dan's score for i3: items he rated (i2 = 5, i4 = 1) weighted by their similarity to i3
    s23, s43 = items.loc["i2", "i3"], items.loc["i4", "i3"]
    used = [(s, r) for s, r in [(s23, 5), (s43, 1)] if s > 0]
    assert scores.loc["dan", "i3"] == pytest.approx(sum(s * r for s, r in used) / len(used))


def test_vectorised_similarities_match_pairwise_loops():
    rng = np.random.default_rng(0)
    values = rng.integers(1, 6, (9, 12)).astype(float)
    values[rng.random(values.shape) < 0.45] = np.nan
    matrix = pd.DataFrame(values, index=[f"u{i}" for i in range(9)], columns=[f"m{j}" for j in range(12)])
    dist, pear = cf.euclidean_distance(matrix), cf.similarity(matrix, "pearson")
    scores = cf.recommend_scores(matrix, "pearson")
    for a in range(9):
        for b in range(9):
            both = ~np.isnan(values[a]) & ~np.isnan(values[b])
            x, z = values[a, both], values[b, both]
            assert dist.iloc[a, b] == pytest.approx(np.linalg.norm(x - z)) if both.any() else np.isnan(dist.iloc[a, b])
            defined = both.sum() >= 2 and x.std() > 0 and z.std() > 0
            assert pear.iloc[a, b] == pytest.approx(pearsonr(x, z).statistic) if defined else np.isnan(pear.iloc[a, b])
    for u in range(9):
        for i in range(12):
            terms = [
                (pear.iloc[u, v], values[v, i])
                for v in range(9)
                if v != u and not np.isnan(values[v, i]) and pear.iloc[u, v] > 0
            ]
            expected = sum(s * r for s, r in terms) / len(terms) if terms else np.nan
            assert scores.iloc[u, i] == pytest.approx(expected, nan_ok=True)


def _latent_ratings(seed=0, n_users=80, n_items=50, density=0.35):
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    pairs = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < density]
    X = pd.DataFrame(pairs, columns=["user", "item"]).astype("category")
    y = np.clip(np.round([U[u] @ V[i] + 3 for u, i in pairs] + rng.normal(scale=0.3, size=len(pairs))), 1, 5)
    return X, y


def test_features_are_out_of_fold_and_never_see_their_own_rating():
    X, y = _latent_ratings(n_users=30, n_items=20, density=0.5)
    folds = make_folds(y, kind="kfold", n_splits=4, random_state=0)
    feats = CFFeatures(folds=folds).fit_transform(X, y)
    splits, _ = fold_splits(folds, len(y))
    train, val = splits[1]
    long = pd.DataFrame({"user": X["user"].to_numpy()[train], "item": X["item"].to_numpy()[train], "rating": y[train]})
    ref = cf.recommend_scores(cf.rating_matrix(long), "pearson")
    expected = [
        ref.at[u, i] if u in ref.index and i in ref.columns else np.nan
        for u, i in zip(X["user"].to_numpy()[val], X["item"].to_numpy()[val], strict=True)
    ]
    np.testing.assert_allclose(feats["cf_user_pearson"].to_numpy()[val], expected, rtol=1e-12)
    flipped = y.copy()
    flipped[val] = 6 - flipped[val]  # change every validation rating of fold 1
    again = CFFeatures(folds=folds).fit_transform(X, flipped)
    np.testing.assert_array_equal(again.iloc[val, 2:].to_numpy(), feats.iloc[val, 2:].to_numpy())
    full = CFFeatures().fit(X, y).transform(pd.DataFrame({"user": [0, 999], "item": [0, 0]}))
    assert not np.isnan(full["cf_user_pearson"].iloc[0]) and full.iloc[1, 2:].isna().all()  # unknown user


def test_cf_features_help_a_gbdt():
    X, y = _latent_ratings()
    folds = make_folds(y, kind="kfold", n_splits=5, random_state=0)
    model = LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=8, verbose=-1, random_state=0, n_jobs=1)
    ids_only = train_cv(model, X, y, folds, task="regression", progress=False).score
    with_cf = train_cv(
        model, CFFeatures(folds=folds).fit_transform(X, y), y, folds, task="regression", progress=False
    ).score
    print(f"RMSE ids only {ids_only:.3f}, with CF features {with_cf:.3f}")
    assert with_cf < 0.85 * ids_only


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="'stars'"):
        cf.rating_matrix(RATINGS, rating="stars")
    with pytest.raises(ValueError, match="'customer'"):
        CFFeatures(user="customer").fit(RATINGS[["user", "item"]], RATINGS["rating"])
    with pytest.raises(ValueError, match="NaN"):
        CFFeatures().fit(RATINGS[["user", "item"]], RATINGS["rating"].where(RATINGS.index != 3))
    with pytest.raises(ValueError, match="method must be one of"):
        cf.similarity(cf.rating_matrix(RATINGS), "cosine")
    with pytest.raises(ValueError, match="user 'zed' is not in the rating matrix"):
        cf.recommend(cf.rating_matrix(RATINGS), "zed")
