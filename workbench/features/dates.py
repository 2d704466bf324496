"""Calendar parts of datetime columns and the days elapsed since a reference date."""

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

PARTS = (
    "year",
    "quarter",
    "month",
    "day",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "is_weekend",
    "elapsed_days",
)
DEFAULT_PARTS = ("year", "month", "day", "day_of_week", "hour", "elapsed_days")


def _parse(s: pd.Series, name: Hashable) -> pd.Series:
    """``s`` as datetimes: datetime columns as they are, date text parsed; anything else refused."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return s
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        raise ValueError(
            f"DateFeatures: column {name!r} is numeric ({s.dtype}), not dates; convert it first, e.g. "
            f"pd.to_datetime(df[{name!r}], unit='s') for epoch seconds"
        )
    text = s.astype(object).where(s.notna(), None)
    blank = text.map(lambda v: v is None or (isinstance(v, str) and not v.strip()))
    parsed = pd.to_datetime(text.where(~blank, None), errors="coerce", format="mixed")
    bad = parsed.isna() & ~blank
    if bad.any():
        example = text[bad].iloc[0]
        raise ValueError(
            f"DateFeatures: column {name!r} has {int(bad.sum())} value(s) that are not dates (e.g. {example!r}); "
            "clean them or set them to missing"
        )
    return parsed


def _elapsed_days(s: pd.Series, reference: pd.Timestamp) -> np.ndarray:
    tz = s.dt.tz
    if tz is not None and reference.tz is None:
        reference = reference.tz_localize(tz)
    elif tz is None and reference.tz is not None:
        reference = reference.tz_convert("UTC").tz_localize(None)
    return ((s - reference) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64, na_value=np.nan)


def _part(s: pd.Series, part: str) -> np.ndarray:
    if part == "is_weekend":
        values = (s.dt.day_of_week >= 5).astype(float).where(s.notna())
    else:
        values = getattr(s.dt, part)
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


class DateFeatures(FrameTransformer):
    """Replace each datetime column by its calendar parts and the days elapsed since a reference.

    ``columns`` defaults to the datetime columns (other columns pass through); text columns named
    in ``columns`` are parsed as dates, and a value that is not a date is an error naming it.
    ``parts`` come from :data:`PARTS` (``day_of_week``: Monday = 0); ``elapsed_days`` counts
    fractional days from ``reference``, by default the earliest date of the column seen in fit.
    Outputs are float (NaN for missing dates), named ``<column>_<part>``; ``keep_original=True``
    keeps the datetime column too.

    Parameters
    ----------
    columns : column name or list of them, optional
        The date columns (default: every datetime column).
    parts : sequence of str, default ("year", "month", "day", "day_of_week", "hour", "elapsed_days")
        The parts, from :data:`PARTS`.
    reference : datetime-like, optional
        Origin of ``elapsed_days`` (default: each column's earliest date in fit).
    keep_original : bool, default False
        Keep the datetime columns.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"signup": pd.to_datetime(["2024-01-15", "2024-03-02", "2024-12-31"])})
    >>> DateFeatures(parts=["year", "month", "day_of_week", "elapsed_days"]).fit(df).transform(df)
       signup_year  signup_month  signup_day_of_week  signup_elapsed_days
    0       2024.0           1.0                 0.0                  0.0
    1       2024.0           3.0                 5.0                 47.0
    2       2024.0          12.0                 1.0                351.0
    """

    categorical_input = False

    def __init__(
        self,
        columns: Sequence[Hashable] | Hashable | None = None,
        parts: Sequence[str] = DEFAULT_PARTS,
        reference: Any = None,
        keep_original: bool = False,
    ) -> None:
        self.columns = columns
        self.parts = parts
        self.reference = reference
        self.keep_original = keep_original

    def fit(self, X: Any, y: Any = None) -> DateFeatures:
        frame, _ = check_input(self, X, reset=True)
        parts = as_list(self.parts)
        unknown = [p for p in parts if p not in PARTS]
        if unknown or not parts:
            raise ValueError(f"DateFeatures: unknown part(s) {unknown}; choose from {PARTS}")
        if self.columns is None:
            self.columns_ = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c].dtype)]
        else:
            self.columns_ = as_list(self.columns)
            check_columns(frame, self.columns_, "DateFeatures")
        self.parts_ = parts
        self.reference_: dict[Hashable, pd.Timestamp | None] = {}
        for col in self.columns_:
            parsed = _parse(frame[col], col)
            if self.reference is not None:
                try:
                    self.reference_[col] = pd.Timestamp(self.reference)
                except (TypeError, ValueError) as exc:
                    raise ValueError(f"DateFeatures: reference {self.reference!r} is not a date: {exc}") from exc
            else:
                earliest = parsed.min()
                self.reference_[col] = None if pd.isna(earliest) else pd.Timestamp(earliest)
        names = set(input_names(self)) - ({str(c) for c in self.columns_} if not self.keep_original else set())
        clashes = [n for col in self.columns_ for n in self.part_names(col) if n in names]
        if clashes:
            raise ValueError(f"DateFeatures: output columns {clashes} already exist in the data; rename them")
        return self

    def part_names(self, col: Hashable) -> list[str]:
        """Output names of date column ``col``: ``<col>_<part>`` per part."""
        return [f"{col}_{p}" for p in self.parts_]

    def transform(self, X: Any) -> Any:
        """Each datetime column replaced (or followed, with ``keep_original``) by its parts."""
        check_is_fitted(self, "reference_")
        frame, was_frame = check_input(self, X, reset=False)
        data: dict[Hashable, Any] = {}
        for col in frame.columns:
            if col not in self.reference_:
                data[col] = frame[col]
                continue
            if self.keep_original:
                data[col] = frame[col]
            parsed = _parse(frame[col], col)
            for name, part in zip(self.part_names(col), self.parts_, strict=True):
                if part == "elapsed_days":
                    ref = self.reference_[col]
                    data[name] = np.full(len(frame), np.nan) if ref is None else _elapsed_days(parsed, ref)
                else:
                    data[name] = _part(parsed, part)
        return output(pd.DataFrame(data, index=frame.index), was_frame)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Input columns with each date column replaced by ``<column>_<part>`` names."""
        check_is_fitted(self, "reference_")
        check_feature_names_arg(self, input_features)
        dates = {str(c): c for c in self.columns_}
        names: list[str] = []
        for name in input_names(self):
            if name in dates:
                names += ([name] if self.keep_original else []) + self.part_names(dates[name])
            else:
                names.append(name)
        return np.asarray(names, dtype=object)


__all__ = ["DEFAULT_PARTS", "PARTS", "DateFeatures"]
