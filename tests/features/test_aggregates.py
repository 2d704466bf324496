"""GroupAggregates against pandas groupby: learned on train, looked up for test."""

import numpy as np
import pandas as pd
import pytest

from workbench.features import AGGREGATIONS, GroupAggregates


@pytest.fixture
def shops():
    rng = np.random.default_rng(0)
    n = 200
    train = pd.DataFrame(
        {
            "shop": pd.Categorical(rng.choice(["north", "south", "east"], n)),
            "kind": pd.Series(rng.choice(["food", "tools"], n), dtype="str"),
            "price": np.round(rng.gamma(2.0, 10.0, n), 1),
            "qty": rng.integers(1, 5, n).astype(float),
        }
    )
    train.loc[::17, "price"] = np.nan
    test = pd.DataFrame(
        {
            "shop": pd.Categorical(["north", "west", "south", None]),
            "kind": pd.Series(["food", "food", "tools", "food"], dtype="str"),
            "price": [10.0, 20.0, np.nan, 5.0],
            "qty": [1.0, 2.0, 3.0, 4.0],
        }
    )
    return train, test


def test_statistics_match_pandas_groupby_transform(shops):
    train, _ = shops
    agg = GroupAggregates(keys="shop", values=["price", "qty"], aggs=AGGREGATIONS)
    out = agg.fit_transform(train)
    grouped = train.groupby("shop", observed=True)
    for value in ["price", "qty"]:
        for stat in ["mean", "std", "min", "max", "count", "nunique"]:
            expected = grouped[value].transform(stat).astype(float)
            np.testing.assert_allclose(out[f"{value}_{stat}_by_shop"], expected, rtol=1e-12, equal_nan=True)
        mean = grouped[value].transform("mean")
        np.testing.assert_allclose(out[f"{value}_diff_mean_by_shop"], train[value] - mean, rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(out[f"{value}_ratio_mean_by_shop"], train[value] / mean, rtol=1e-12, equal_nan=True)
    assert list(out.columns[:4]) == list(train.columns)
    assert list(out.columns) == list(agg.get_feature_names_out())


def test_test_rows_get_training_statistics_and_unseen_groups_nan(shops):
    train, test = shops
    agg = GroupAggregates(keys=["shop", "kind"], values="price", aggs=["mean", "count", "diff_mean"]).fit(train)
    out = agg.transform(test)
    table = train.groupby(["shop", "kind"], observed=True)["price"].agg(["mean", "count"])
    assert out["price_mean_by_shop+kind"].iloc[0] == pytest.approx(table.loc[("north", "food"), "mean"])
    assert out["price_count_by_shop+kind"].iloc[2] == table.loc[("south", "tools"), "count"]
    assert out["price_diff_mean_by_shop+kind"].iloc[0] == pytest.approx(10.0 - table.loc[("north", "food"), "mean"])
    assert out.iloc[[1, 3]][["price_mean_by_shop+kind", "price_count_by_shop+kind"]].isna().all().all()  # west, missing
    assert np.isnan(out["price_diff_mean_by_shop+kind"].iloc[2])  # missing value


def test_bad_input_is_named(shops):
    train, test = shops
    with pytest.raises(ValueError, match="key column 'store'"):
        GroupAggregates(keys="store", values="price").fit(train)
    with pytest.raises(ValueError, match="value column 'cost'"):
        GroupAggregates(keys="shop", values=["cost"]).fit(train)
    with pytest.raises(ValueError, match=r"\['kind'\] are not numeric"):
        GroupAggregates(keys="shop", values="kind").fit(train)
    assert (
        GroupAggregates(keys="shop", values="kind", aggs=["nunique"]).fit_transform(train)["kind_nunique_by_shop"].max()
        == 2
    )
    with pytest.raises(ValueError, match="unknown aggregation"):
        GroupAggregates(keys="shop", values="price", aggs=["median"]).fit(train)
    with pytest.raises(ValueError, match="- qty"):
        GroupAggregates(keys="shop", values="price").fit(train).transform(test.drop(columns="qty"))
