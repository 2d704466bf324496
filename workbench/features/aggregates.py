"""Per-group statistics of numeric columns, learned on the training data and looked up for new rows."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from ._frame import (
    FrameTransformer,
    as_list,
    check_columns,
    check_feature_names_arg,
    check_input,
    input_names,
    output,
)

STATISTICS = ("mean", "std", "min", "max", "count", "nunique")
RELATIVE = ("diff_mean", "ratio_mean")  # the row's value minus / divided by its group's mean
AGGREGATIONS = STATISTICS + RELATIVE


def _group_positions(frame: pd.DataFrame, keys: list[Hashable], groups: pd.Index) -> np.ndarray:
    """Position of each row's group in ``groups`` (``-1``: a group not seen in fit, or a missing key)."""
    if len(keys) == 1:
        return groups.get_indexer(frame[keys[0]].astype(object))
    rows = pd.MultiIndex.from_arrays([frame[k].astype(object).to_numpy() for k in keys])
    pos = groups.get_indexer(rows)
    pos[frame[keys].isna().any(axis=1).to_numpy()] = -1
    return pos


def _is_number_column(s: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(s.dtype):
        return False
    if pd.api.types.is_numeric_dtype(s.dtype):
        return True
    if s.dtype == object:  # numbers stored as objects count as numbers
        try:
            pd.to_numeric(s)
        except (TypeError, ValueError):
            return False
        return True
    return False


def _numbers(frame: pd.DataFrame, values: list[Hashable]) -> pd.DataFrame:
    """The value columns with numbers stored as objects converted to numeric dtypes."""
    return pd.DataFrame(
        {v: pd.to_numeric(frame[v]) if frame[v].dtype == object else frame[v] for v in values}, index=frame.index
    )


class GroupAggregates(FrameTransformer):
    """Add per-group statistics of ``values`` grouped by ``keys``, learned on the training data.

    ``aggs`` come from ``mean, std, min, max, count, nunique`` (pandas ``groupby`` semantics:
    ``std`` with ``ddof=1``, ``count`` and ``nunique`` of non-missing values) and ``diff_mean`` /
    ``ratio_mean``: the row's value minus / divided by its group's mean. New columns are appended
    after the input columns, named ``<value>_<agg>_by_<key>`` (several keys joined by ``+``). Rows
    whose group was not seen in fit, or whose key is missing, get NaN.

    Parameters
    ----------
    keys : column name or list of them
        The grouping columns.
    values : column name or list of them
        The columns aggregated.
    aggs : sequence of str, default ("mean", "std", "min", "max", "count", "nunique")
        The statistics, as above.

    Examples
    --------
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> train, test = df.iloc[:5000], df.iloc[5000:]
    >>> agg = GroupAggregates(keys="Contract", values=["MonthlyCharges"], aggs=["mean", "diff_mean"])
    >>> agg.fit(train).transform(test)["MonthlyCharges_mean_by_Contract"].head(3).round(2)
    5000    66.49
    5001    66.49
    5002    61.48
    Name: MonthlyCharges_mean_by_Contract, dtype: float64
    """

    def __init__(
        self,
        keys: Sequence[Hashable] | Hashable = None,
        values: Sequence[Hashable] | Hashable = None,
        aggs: Sequence[str] = STATISTICS,
    ) -> None:
        self.keys = keys
        self.values = values
        self.aggs = aggs

    def _check_params(self, frame: pd.DataFrame) -> tuple[list[Hashable], list[Hashable], list[str]]:
        keys, values, aggs = as_list(self.keys), as_list(self.values), as_list(self.aggs)
        if not keys or not values:
            raise ValueError(
                "GroupAggregates needs keys=... (columns to group by) and values=... (columns to aggregate)"
            )
        unknown = [a for a in aggs if a not in AGGREGATIONS]
        if unknown or not aggs:
            raise ValueError(f"GroupAggregates: unknown aggregation(s) {unknown}; choose from {AGGREGATIONS}")
        both = [c for c in values if c in keys]
        if both:
            raise ValueError(f"GroupAggregates: {both} are both keys and values; a column cannot aggregate itself")
        check_columns(frame, keys, "GroupAggregates", what="key column")
        check_columns(frame, values, "GroupAggregates", what="value column")
        if any(a not in ("count", "nunique") for a in aggs):
            bad = [c for c in values if not _is_number_column(frame[c])]
            if bad:
                raise ValueError(
                    f"GroupAggregates: value column(s) {bad} are not numeric; mean/std/min/max and diff/ratio need "
                    "numbers (use aggs=['count', 'nunique'] for other columns)"
                )
        return keys, values, aggs

    def _new_names(self) -> list[str]:
        by = "+".join(str(k) for k in self.keys_)
        return [f"{v}_{a}_by_{by}" for v in self.values_ for a in self.aggs_]

    def fit(self, X: Any, y: Any = None) -> GroupAggregates:
        frame, _ = check_input(self, X, reset=True)
        self.keys_, self.values_, self.aggs_ = self._check_params(frame)
        stats = [a for a in STATISTICS if a in self.aggs_ or (a == "mean" and set(RELATIVE) & set(self.aggs_))]
        numeric = any(a not in ("count", "nunique") for a in self.aggs_)
        data = pd.concat([frame[self.keys_], _numbers(frame, self.values_) if numeric else frame[self.values_]], axis=1)
        table = data.groupby(self.keys_, observed=True, dropna=True, sort=True)[self.values_].agg(stats)
        if len(self.keys_) == 1:
            table.index = pd.Index(table.index.astype(object), name=self.keys_[0])
        else:
            table.index = pd.MultiIndex.from_arrays(
                [table.index.get_level_values(i).astype(object) for i in range(len(self.keys_))], names=self.keys_
            )
        self.table_ = table.astype(np.float64)
        clashes = [n for n in self._new_names() if n in set(input_names(self))]
        if clashes:
            raise ValueError(f"GroupAggregates: output columns {clashes} already exist in the data; rename them")
        return self

    def transform(self, X: Any) -> Any:
        """The input columns followed by each row's group statistics (NaN for unseen groups)."""
        check_is_fitted(self, "table_")
        frame, was_frame = check_input(self, X, reset=False)
        pos = _group_positions(frame, self.keys_, self.table_.index)
        known = pos >= 0
        new: dict[str, np.ndarray] = {}
        names = iter(self._new_names())
        for value in self.values_:
            for agg in self.aggs_:
                stat = "mean" if agg in RELATIVE else agg
                col = np.full(len(frame), np.nan)
                col[known] = self.table_[(value, stat)].to_numpy()[pos[known]]
                if agg in RELATIVE:
                    x = pd.to_numeric(frame[value]).to_numpy(dtype=np.float64, na_value=np.nan)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        col = x - col if agg == "diff_mean" else np.where(col != 0, x / col, np.nan)
                new[next(names)] = col
        out = pd.concat([frame, pd.DataFrame(new, index=frame.index)], axis=1)
        return output(out, was_frame)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """The input columns, then ``<value>_<agg>_by_<keys>`` for each value and aggregation."""
        check_is_fitted(self, "table_")
        check_feature_names_arg(self, input_features)
        return np.asarray(input_names(self) + self._new_names(), dtype=object)


__all__ = ["AGGREGATIONS", "GroupAggregates"]
