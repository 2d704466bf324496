"""The rows and permutations scikit-learn's ``permutation_importance`` draws, replayed exactly."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd


def sklearn_permutations(
    n_rows: int, n_repeats: int, random_state: Any, max_samples: int | float | None = None
) -> tuple[np.ndarray | None, np.ndarray]:
    """The rows and permutations scikit-learn's ``permutation_importance`` applies to every feature.

    scikit-learn draws one seed from ``random_state``, then for each feature re-creates
    ``RandomState(seed)``, optionally samples ``max_samples`` rows without replacement, and
    shuffles a row index in place once per repeat, applying it to the already permuted column.
    Returns ``(rows, perms)``: the sampled rows (None for all) and ``perms[r, i]``, the position
    (within those rows) whose value row ``i`` holds in repeat ``r``.
    """
    from sklearn.utils import check_random_state
    from sklearn.utils.random import sample_without_replacement

    rs = check_random_state(random_state)
    seed = rs.randint(np.iinfo(np.int32).max + 1)
    m = _n_samples(max_samples, n_rows)
    rs = check_random_state(seed)
    rows = None
    if m < n_rows:
        rows = np.asarray(sample_without_replacement(n_rows, m, random_state=rs), dtype=np.int64)
    shuffling = np.arange(m)
    source = np.arange(m)
    perms = np.empty((n_repeats, m), dtype=np.int64)
    for r in range(n_repeats):
        rs.shuffle(shuffling)
        source = source[shuffling]
        perms[r] = source
    return rows, perms


def _n_samples(max_samples: int | float | None, n_rows: int) -> int:
    if max_samples is None:
        return n_rows
    if isinstance(max_samples, numbers.Integral) and not isinstance(max_samples, bool):
        if not 1 <= max_samples <= n_rows:
            raise ValueError(
                f"max_samples must be <= n_samples: max_samples={max_samples} must be between 1 and the "
                f"number of rows ({n_rows})"
            )
        return int(max_samples)
    if isinstance(max_samples, numbers.Real) and 0 < max_samples <= 1:
        m = int(max_samples * n_rows)
        if m < 1:
            raise ValueError(f"max_samples={max_samples} of {n_rows} rows leaves no row; use a larger fraction")
        return m
    raise ValueError(f"max_samples must be an int in [1, n_rows] or a fraction in (0, 1], got {max_samples!r}")


def sampled(data: Any, rows: np.ndarray | None) -> Any:
    """``data`` restricted to the sampled ``rows`` (all of it when ``rows`` is None)."""
    if rows is None or data is None:
        return data
    return data.iloc[rows] if isinstance(data, pd.DataFrame | pd.Series) else data[rows]
