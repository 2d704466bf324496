"""A small stack run as its own process: ``python stacking_resume_job.py CACHE_DIR OUT.npz``.

Four level-1 models and a logistic meta model on synthetic data; writes the final out-of-fold and
test predictions to ``OUT.npz`` when done. The resume test kills it mid-stack and runs it again.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from stacking_counting import CountingExtraTrees, CountingKNN, CountingLogisticRegression

from workbench.data import make_folds
from workbench.stacking import Stack


def build(cache_dir):
    X, y = make_classification(n_samples=1200, n_features=8, n_informative=5, random_state=0)
    X = pd.DataFrame(X, columns=[f"x{i}" for i in range(8)])
    X_test = X.iloc[:200] * 1.1
    levels = [
        [
            ("lr_c1", CountingLogisticRegression()),
            ("lr_c01", CountingLogisticRegression(C=0.1)),
            ("extratrees", CountingExtraTrees(n_estimators=30, min_samples_leaf=5, random_state=0, n_jobs=1)),
            ("knn", CountingKNN(n_neighbors=25)),
        ],
        [("meta", LogisticRegression())],
    ]
    stack = Stack(levels, folds=make_folds(y, n_splits=5, random_state=0), cache_dir=cache_dir, progress=False)
    return stack, X, y, X_test


def main(cache_dir: str, out: str) -> None:
    stack, X, y, X_test = build(cache_dir)
    stack.fit(X, y, X_test=X_test)
    np.savez(out, oof=stack.oof_, test_pred=stack.test_pred_, n_fits=stack.n_fits_)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
