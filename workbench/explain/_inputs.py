"""Checking what users pass to the explainers: the data, feature names, categorical columns."""

from __future__ import annotations

import difflib
from typing import Any

import numpy as np
import pandas as pd

from ..data.validation import default_column_names


def check_frame(X: Any) -> pd.DataFrame | np.ndarray:
    """``X`` as a DataFrame or a two-dimensional array; anything else is a clear error."""
    if isinstance(X, pd.DataFrame):
        if X.shape[0] == 0:
            raise ValueError("X has no rows; pass the data to explain the model on")
        return X
    if isinstance(X, pd.Series):
        raise ValueError("X is a Series; pass a DataFrame with all the model's features (X.to_frame() for one column)")
    arr = np.asarray(X)
    if arr.ndim != 2:
        raise ValueError(f"X must be two-dimensional (rows × features), got shape {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("X has no rows; pass the data to explain the model on")
    return arr


def feature_names(X: pd.DataFrame | np.ndarray, model_names: list[str] | None = None) -> list[str]:
    """Column names of a DataFrame; for arrays the model's names if it has them, else ``x0, x1...``."""
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    if model_names and len(model_names) == X.shape[1]:
        return list(model_names)
    return default_column_names(X.shape[1])


def feature_position(X: pd.DataFrame | np.ndarray, feature: Any, names: list[str]) -> int:
    """Column position of ``feature`` (a name, or an integer position for arrays)."""
    if isinstance(feature, (int, np.integer)) and not isinstance(feature, bool):
        if isinstance(X, pd.DataFrame) and feature in X.columns:
            return int(X.columns.get_loc(feature))
        if isinstance(X, pd.DataFrame) and pd.api.types.is_integer_dtype(X.columns):
            raise ValueError(f"feature {feature!r} is not a column of X; name a column of the DataFrame")
        if not 0 <= feature < X.shape[1]:
            raise ValueError(
                f"all features must be in [0, {X.shape[1] - 1}]: feature index {feature} is out of range "
                f"(X has {X.shape[1]} columns)"
            )
        return int(feature)
    key = str(feature)
    if key in names:
        return names.index(key)
    close = difflib.get_close_matches(key, names, n=3)
    hint = (
        f"; did you mean {', '.join(map(repr, close))}?"
        if close
        else f"; X has {len(names)} columns: {names[:10]}{'...' if len(names) > 10 else ''}"
    )
    lead = "Some column names are not columns of the dataframe: " if isinstance(X, pd.DataFrame) else ""
    raise ValueError(f"{lead}feature {feature!r} is not a column of X{hint}")


def categorical_mask(categorical_features: Any, X: pd.DataFrame | np.ndarray, names: list[str]) -> list[bool]:
    """Per column of ``X``, whether ``categorical_features`` names it (names, positions or a boolean mask)."""
    n = X.shape[1]
    if categorical_features is None:
        return [False] * n
    given = np.asarray(
        list(categorical_features) if not isinstance(categorical_features, str) else [categorical_features]
    )
    if given.size == 0:
        raise ValueError(
            "Passing an empty list (`[]`) to `categorical_features` is not supported. Use `None` instead to "
            "indicate that there are no categorical features."
        )
    if given.dtype.kind == "b":
        if given.size != n:
            raise ValueError(
                "When `categorical_features` is a boolean array-like, the array should be of shape "
                f"(n_features,). Got {given.size} elements while `X` contains {n} features."
            )
        return [bool(b) for b in given]
    if given.dtype.kind not in "iuOU":
        raise ValueError(
            "Expected `categorical_features` to be an array-like of boolean, integer, or string. "
            f"Got {given.dtype} instead."
        )
    mask = [False] * n
    for item in given.tolist():
        mask[feature_position(X, item, names)] = True
    return mask


def as_float(values: pd.Series | np.ndarray) -> np.ndarray:
    """Numeric values as float64, pandas missing values (``pd.NA``) as NaN."""
    if isinstance(values, pd.Series):
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def column(X: pd.DataFrame | np.ndarray, pos: int) -> pd.Series | np.ndarray:
    return X.iloc[:, pos] if isinstance(X, pd.DataFrame) else X[:, pos]


def is_categorical(values: pd.Series | np.ndarray) -> bool:
    """pandas ``category``/text/bool columns are categorical; numbers are not."""
    dtype = values.dtype
    return bool(
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    )
