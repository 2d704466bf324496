"""scikit-learn's inspection functions, computed by workbench: what scikit-learn's own test files call.

``tests/explain/test_sklearn_inspection_suite.py`` runs scikit-learn's test files with their
imports of ``sklearn.inspection`` pointed here. Every function takes scikit-learn's arguments,
computes with :mod:`workbench.explain` and returns what scikit-learn returns (``to_sklearn()``);
none calls scikit-learn's implementation (the suite makes those raise while it runs).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from workbench.explain import partial_dependence as _wb_partial_dependence
from workbench.explain import permutation_importance as _wb_permutation_importance
from workbench.explain._pdp_grid import build_grids, check_percentiles, check_resolution


def permutation_importance(
    estimator: Any,
    X: Any,
    y: Any,
    *,
    scoring: Any = None,
    n_repeats: int = 5,
    n_jobs: int | None = None,
    random_state: Any = None,
    sample_weight: Any = None,
    max_samples: float | int = 1.0,
) -> Any:
    result = _wb_permutation_importance(
        estimator,
        X,
        y,
        scoring=scoring,
        n_repeats=n_repeats,
        n_jobs=n_jobs,
        random_state=random_state,
        sample_weight=sample_weight,
        max_samples=max_samples,
        progress=False,
    )
    return result.to_sklearn()


def partial_dependence(
    estimator: Any,
    X: Any,
    features: Any,
    *,
    sample_weight: Any = None,
    categorical_features: Any = None,
    feature_names: Any = None,
    response_method: str = "auto",
    percentiles: tuple[float, float] = (0.05, 0.95),
    grid_resolution: int = 100,
    custom_values: dict | None = None,
    method: str = "auto",
    kind: str = "average",
) -> Any:
    result = _wb_partial_dependence(
        estimator,
        X,
        features,
        sample_weight=sample_weight,
        categorical_features=categorical_features,
        feature_names=feature_names,
        response_method=response_method,
        percentiles=percentiles,
        grid_resolution=grid_resolution,
        custom_values=custom_values,
        method=method,
        kind=kind,
        progress=False,
    )
    return result.to_sklearn()


def _grid_from_X(X: Any, percentiles: Any, is_categorical: list[bool], grid_resolution: int, custom_values: dict):
    """The cartesian grid and its axes, from workbench's grid builder."""
    if not isinstance(X, pd.DataFrame):
        X = np.asarray(X)
    positions = list(range(X.shape[1]))
    names = [str(p) for p in positions]
    axes = build_grids(
        X,
        positions,
        names,
        list(is_categorical),
        check_resolution(grid_resolution),
        dict(custom_values),
        check_percentiles(percentiles),
    )
    axes = [np.asarray(a.tolist()) if a.dtype == object and not _has_text(a) else a for a in axes]
    mesh = np.meshgrid(*[np.arange(len(a)) for a in axes], indexing="ij")
    grid = np.column_stack([a[m.ravel()] for a, m in zip(axes, mesh, strict=True)])
    return grid, axes


def _has_text(values: np.ndarray) -> bool:
    return any(isinstance(v, str) for v in values.tolist())


def _points(est: Any, grid: Any, features: Any, X: Any, **kwargs: Any) -> tuple[Any, np.ndarray]:
    """workbench's result on the axes of ``grid``, and where each point of ``grid`` lies on them."""
    grid = np.asarray(grid, dtype=object if _has_text(np.asarray(grid, dtype=object).ravel()) else None)
    features = [int(f) for f in np.asarray(features).ravel()]
    axes, index = [], []
    for j in range(grid.shape[1]):
        values, inverse = np.unique(grid[:, j], return_inverse=True)
        axes.append(values)
        index.append(inverse.ravel())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="the grid for .* extrapolates", category=UserWarning)
        result = _wb_partial_dependence(
            est, X, features, custom_values=dict(zip(features, axes, strict=True)), progress=False, **kwargs
        )
    return result, np.ravel_multi_index(index, [len(a) for a in axes])


def _partial_dependence_brute(est: Any, grid: Any, features: Any, X: Any, response_method: str, sample_weight=None):
    from sklearn.base import is_regressor

    result, flat = _points(
        est,
        grid,
        features,
        X,
        kind="both",
        method="brute",
        response_method=None if is_regressor(est) else response_method,
        sample_weight=sample_weight,
    )
    bunch = result.to_sklearn()
    n_out, n = bunch["individual"].shape[:2]
    averaged = bunch["average"].reshape(n_out, -1)[:, flat]
    predictions = bunch["individual"].reshape(n_out, n, -1)[:, :, flat]
    return averaged, (predictions[0] if n_out == 1 else predictions)


def _partial_dependence_recursion(est: Any, grid: Any, features: Any):
    n_features = getattr(est, "n_features_in_", int(np.max(features)) + 1)
    result, flat = _points(est, grid, features, np.zeros((1, n_features)), method="recursion")
    average = result.to_sklearn()["average"]
    return average.reshape(average.shape[0], -1)[:, flat]
