"""The grid of partial dependence: per feature, given values or a resolution, as scikit-learn builds it.

A numeric feature gets its unique values when there are fewer than the resolution, else
``resolution`` evenly spaced points between two percentiles of its non-missing values; a
categorical one its categories present in ``X``; a feature with given values exactly those.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from . import _inputs


def check_percentiles(percentiles: Any) -> tuple[float, float]:
    """``percentiles`` as two increasing numbers in ``[0, 1]``, with scikit-learn's messages."""
    try:
        low, high = (float(p) for p in percentiles)
    except (TypeError, ValueError):
        raise ValueError("'percentiles' must be a sequence of 2 elements, like (0.05, 0.95).") from None
    if not (0 <= low <= 1 and 0 <= high <= 1):
        raise ValueError(f"'percentiles' values must be in [0, 1]; got {tuple(percentiles)}.")
    if low >= high:
        raise ValueError(f"percentiles[0] must be strictly less than percentiles[1]; got {tuple(percentiles)}.")
    return low, high


def check_resolution(resolution: Any) -> int:
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)) or resolution <= 1:
        raise ValueError(f"'grid_resolution' must be strictly greater than 1 (an int); got {resolution!r}.")
    return int(resolution)


def numeric_grid(name: str, values: np.ndarray, resolution: int, percentiles: tuple[float, float]) -> np.ndarray:
    """Unique values, or ``resolution`` points evenly spaced between the ``percentiles``."""
    ordered = np.sort(values[~np.isnan(values)])
    if ordered.size == 0:
        raise ValueError(f"feature {name!r} has no non-missing values in X, so it has no grid; pass grid values")
    uniques = ordered[np.concatenate(([True], ordered[1:] != ordered[:-1]))]  # np.unique, from the one sort
    if uniques.size < resolution:
        return uniques
    low, high = sorted_quantiles(ordered, percentiles)
    if abs(low - high) <= 1e-8 + 1e-5 * abs(high):  # np.allclose(low, high) of two finite numbers
        raise ValueError(
            f"percentiles are too close to each other: the {percentiles} percentiles of {name!r} are both "
            f"{low:g}, so the grid would be one point; choose percentiles further apart (e.g. (0, 1)) or pass "
            "grid values"
        )
    return np.linspace(low, high, num=resolution, endpoint=True)


def sorted_quantiles(ordered: np.ndarray, prob: tuple[float, float]) -> np.ndarray:
    """``scipy.stats.mstats.mquantiles(values, prob)`` (its default plotting positions, which
    scikit-learn's grid uses) of sorted values without NaN, at least two, in the same arithmetic."""
    alphap = betap = 0.4
    p = np.asarray(prob, dtype=np.float64)
    n = len(ordered)
    aleph = n * p + (alphap + p * (1.0 - alphap - betap))
    k = np.floor(aleph.clip(1, n - 1)).astype(int)
    gamma = (aleph - k).clip(0, 1)
    return (1.0 - gamma) * ordered[k - 1] + gamma * ordered[k]


def categorical_grid(col: pd.Series | np.ndarray) -> np.ndarray:
    """The categories present in ``col``: in category order for pandas ``category``, else sorted."""
    series = pd.Series(col)
    present = series.dropna()
    if isinstance(series.dtype, pd.CategoricalDtype):
        seen = set(present.unique().tolist())
        return np.asarray([c for c in series.cat.categories if c in seen], dtype=object)
    try:
        return np.asarray(sorted(present.unique().tolist()), dtype=object)
    except TypeError as exc:
        raise ValueError(
            f"the column {series.name!r} mixes value types that cannot be sorted (e.g. strings and numbers); "
            "give it one type (astype(str)) to use it as a categorical feature"
        ) from exc


def custom_grid(name: str, col: pd.Series | np.ndarray, values: Any, categorical: bool) -> np.ndarray:
    """Given grid values, checked against the column: known categories, numbers without NaN.

    ``name`` labels the feature in messages (a quoted column name, or a position).
    """
    grid = values if isinstance(values, np.ndarray) else np.asarray(list(values) if not np.isscalar(values) else values)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(
            f"The custom grid for some features is not a one-dimensional array. Feature {name}: {grid.ndim} "
            f"dimensions (grid values must be a non-empty one-dimensional list, got shape {grid.shape})"
        )
    if categorical:
        if isinstance(getattr(col, "dtype", None), pd.CategoricalDtype):
            known = set(col.cat.categories.tolist())
        else:
            known = set(categorical_grid(col).tolist())
        unknown = [v for v in grid.tolist() if v not in known]
        if unknown:
            raise ValueError(
                f"grid values {unknown[:5]} are not categories of {name}; known: {sorted(map(str, known))[:10]}"
            )
        return grid.astype(object)
    try:
        grid = grid.astype(np.float64)
    except (TypeError, ValueError) as exc:
        if np.asarray(col).dtype.kind in "OUS":  # a text column: the values are what it holds
            return grid.astype(object)
        raise ValueError(
            f"grid values for the numeric feature {name} must be numbers, got {grid[:3].tolist()}; "
            f"name it in categorical_features if its values are categories"
        ) from exc
    if np.isnan(grid).any():
        raise ValueError(f"grid values for {name} contain NaN; partial dependence is defined on values, leave NaN out")
    data = _inputs.as_float(col)
    lo, hi = np.nanmin(data), np.nanmax(data)
    if grid.min() < lo or grid.max() > hi:
        warnings.warn(
            f"the grid for {name} spans [{grid.min():g}, {grid.max():g}] but X ranges over [{lo:g}, {hi:g}]; "
            "beyond the data the model extrapolates (trees stay flat past their last split)",
            UserWarning,
            stacklevel=4,
        )
    return grid


def grid_specs(
    grid: Any, grid_resolution: int | None, custom_values: Mapping[Any, Any] | None, n_features: int
) -> tuple[int, dict[Any, Any]]:
    """The resolution and the ``{feature: values}`` given, from ``grid`` and scikit-learn's spellings.

    ``grid``: an int (the resolution), values (one feature), or ``{feature: values}`` for some
    features (the others use ``grid_resolution``); ``custom_values`` is scikit-learn's name for
    that mapping. Values given for the one feature without naming it are keyed ``None``.
    """
    resolution = None if grid_resolution is None else check_resolution(grid_resolution)
    custom: dict[Any, Any] = {}
    if isinstance(grid, Mapping):
        custom.update(grid)
    elif isinstance(grid, (int, np.integer)) and not isinstance(grid, bool):
        if resolution is not None and resolution != grid:
            raise ValueError(f"grid={grid} and grid_resolution={resolution} disagree; pass one of them")
        resolution = check_resolution(grid)
    elif grid is not None:
        if n_features != 1:
            raise ValueError(
                "for several features pass grid as an int (resolution) or a dict {feature: values} "
                "(features left out use grid_resolution)"
            )
        custom[None] = grid  # the one feature
    if custom_values is not None:
        if not isinstance(custom_values, Mapping):
            raise ValueError(f"custom_values must be a dict {{feature: values}}, got {type(custom_values).__name__}")
        overlap = set(custom) & set(custom_values)
        if overlap:
            raise ValueError(f"grid values for {sorted(map(str, overlap))} are given in both grid and custom_values")
        custom.update(custom_values)
    return (100 if resolution is None else resolution), custom


def build_grids(
    X: pd.DataFrame | np.ndarray,
    positions: list[int],
    names: list[str],
    categorical: list[bool],
    resolution: int,
    custom: dict[int, Any],
    percentiles: tuple[float, float],
) -> list[np.ndarray]:
    """One grid per feature; ``custom`` maps positions in ``features`` to given values."""
    out = []
    for j, (pos, name, cat) in enumerate(zip(positions, names, categorical, strict=True)):
        col = _inputs.column(X, pos)
        if j in custom:
            out.append(custom_grid(repr(name) if isinstance(X, pd.DataFrame) else str(pos), col, custom[j], cat))
        elif cat:
            out.append(categorical_grid(col))
        else:
            out.append(numeric_grid(name, _inputs.as_float(col), resolution, percentiles))
    return out
