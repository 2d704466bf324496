"""The explainability benchmarks' shared setup: synthetic data and a LightGBM model as in the issue.

50k training rows x 40 features (12 informative), LightGBM 300 trees x 31 leaves, 20k held-out rows;
``quick`` shrinks it to 3k / 1k rows and 30 trees.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def synthetic_lightgbm(quick: bool) -> tuple[Any, np.ndarray, np.ndarray]:
    """``(fitted LGBMClassifier, X_held_out, y_held_out)``, the same on every run."""
    from lightgbm import LGBMClassifier
    from sklearn.datasets import make_classification

    n_train, n_test, trees = (3_000, 1_000, 30) if quick else (50_000, 20_000, 300)
    X, y = make_classification(n_samples=n_train + n_test, n_features=40, n_informative=12, random_state=0)
    model = LGBMClassifier(n_estimators=trees, num_leaves=31, verbose=-1, random_state=0, n_jobs=2)
    model.fit(X[:n_train], y[:n_train])
    return model, X[n_train:], y[n_train:]
