"""Compile the tree engine's kernels into the numba cache, so the first call in a new process is fast.

Run once where the package is installed (the curated images do it at build time)::

    python -m workbench.explain.warmup

It fits a tiny LightGBM model with numeric, categorical and missing values and runs permutation
importance, exact and recursion partial dependence and interaction SHAP values through the
engine, which compiles every kernel for the argument types real calls use; a small random forest
and, when installed, XGBoost and CatBoost models compile the kernels only they use. The cache goes where
:mod:`workbench.explain._numba_cache` puts it (next to the package when writable, else the user's
cache folder; ``NUMBA_CACHE_DIR`` when set).
"""

from __future__ import annotations

import importlib.util
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def _toy_data(random_state: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(random_state)
    n = 400
    X = pd.DataFrame(
        {
            "x0": rng.normal(size=n),
            "x1": rng.normal(size=n),
            "cat": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
        }
    )
    X.loc[rng.random(n) < 0.1, "x1"] = np.nan
    logits = X["x0"] + np.nan_to_num(X["x1"].to_numpy()) + (X["cat"] == "b").to_numpy()
    y = (logits + rng.normal(scale=0.5, size=n) > 0).astype(int)
    return X, y.to_numpy()


def warm_up() -> Path:
    """Compile every kernel of the tree engine; returns the numba cache folder used.

    Returns
    -------
    Path
        The folder numba cached the compiled kernels in.

    Example
    -------
    >>> from workbench.explain.warmup import warm_up
    >>> folder = warm_up()  # doctest: +SKIP
    """
    from lightgbm import LGBMClassifier, LGBMRegressor

    from . import partial_dependence, permutation_importance, shap_values
    from ._numba_cache import configure

    folder = configure()
    X, y = _toy_data()
    model = LGBMClassifier(n_estimators=5, num_leaves=7, min_child_samples=5, verbose=-1, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for scoring in ("roc_auc", "neg_log_loss"):
            permutation_importance(model, X, y, scoring=scoring, n_repeats=2, random_state=0, progress=False)
        for feature in ("x0", "cat"):
            partial_dependence(model, X, feature, grid=70, kind="both", progress=False)
            partial_dependence(model, X, feature, grid=5, kind="both", progress=False)
        partial_dependence(model, X, ["x0", "x1"], grid=5, method="recursion", progress=False)
        if importlib.util.find_spec("shap") is not None:
            shap_values(model, X, max_rows=50, interactions=True)
        # softmax (multiclass) and exp (count objectives) output transforms
        classes = (X["x0"].to_numpy() > 0).astype(int) + y
        multi = LGBMClassifier(n_estimators=3, num_leaves=5, verbose=-1, random_state=0).fit(X, classes)
        permutation_importance(multi, X, classes, n_repeats=2, random_state=0, progress=False)
        counts = LGBMRegressor(objective="poisson", n_estimators=3, num_leaves=5, verbose=-1).fit(X, classes)
        permutation_importance(counts, X, classes, n_repeats=2, random_state=0, progress=False)
        _warm_other_libraries(X, y, classes)
        _warm_catboost(X, y)
    return folder


def _warm_other_libraries(X: pd.DataFrame, y: np.ndarray, classes: np.ndarray) -> None:
    """The kernels only other readers use: XGBoost's float32 outputs, a forest's one-class walk."""
    from sklearn.ensemble import RandomForestClassifier

    from . import partial_dependence, permutation_importance

    numeric = X[["x0", "x1"]].fillna(0.0)
    forest = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(numeric, y)
    permutation_importance(forest, numeric, y, scoring="roc_auc", n_repeats=2, random_state=0, progress=False)
    partial_dependence(forest, numeric, "x0", grid=5, kind="both", progress=False)
    if importlib.util.find_spec("xgboost") is None:
        return
    from xgboost import XGBClassifier, XGBRegressor

    for target in (y, classes):
        model = XGBClassifier(n_estimators=3, max_depth=2, random_state=0, n_jobs=1).fit(numeric, target)
        permutation_importance(model, numeric, target, n_repeats=2, random_state=0, progress=False)
        partial_dependence(model, numeric, "x0", grid=5, kind="both", class_index=0, progress=False)
    counts = XGBRegressor(objective="count:poisson", n_estimators=3, max_depth=2, n_jobs=1).fit(numeric, classes)
    permutation_importance(counts, numeric, classes, n_repeats=2, random_state=0, progress=False)


def _warm_catboost(X: pd.DataFrame, y: np.ndarray) -> None:
    """The oblivious-tree kernels (CatBoost, when installed): leaf indices, permuted sums, ICE lookups."""
    if importlib.util.find_spec("catboost") is None:
        return
    from catboost import CatBoostClassifier

    from . import partial_dependence, permutation_importance

    model = CatBoostClassifier(
        iterations=3, depth=2, one_hot_max_size=10, random_seed=0, thread_count=1, verbose=0, allow_writing_files=False
    ).fit(X, y, cat_features=["cat"])
    permutation_importance(model, X, y, scoring="roc_auc", n_repeats=2, random_state=0, progress=False)
    partial_dependence(model, X, "x0", grid=5, kind="both", progress=False)


def main() -> int:
    """Command line: compile the kernels and say where they were cached."""
    start = time.perf_counter()
    folder = warm_up()
    print(f"workbench: compiled the explain kernels into {folder} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
