"""train_cv overhead vs a plain scikit-learn fold loop (cross_val_predict) with the same LightGBM model."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _harness import header, measure, parser, report  # noqa: E402


def main() -> None:
    args = parser(__doc__).parse_args()
    from lightgbm import LGBMClassifier
    from sklearn.datasets import make_classification
    from sklearn.model_selection import cross_val_predict

    from workbench.data import make_folds
    from workbench.models import train_cv

    n = 2_000 if args.quick else 50_000
    X, y = make_classification(n_samples=n, n_features=40, n_informative=12, random_state=0)
    model = LGBMClassifier(n_estimators=50 if args.quick else 200, num_leaves=31, verbose=-1, random_state=0, n_jobs=2)
    folds = make_folds(y, n_splits=5, random_state=0)
    splits = [(np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(5)]
    header(f"train_cv vs cross_val_predict, {n} rows x 40, LightGBM {model.n_estimators} trees, 5 folds")
    ours = measure(lambda: train_cv(model, X, y, folds, progress=False), repeat=1 if args.quick else 3)
    peer = measure(
        lambda: cross_val_predict(model, X, y, cv=splits, method="predict_proba"), repeat=1 if args.quick else 3
    )
    assert np.allclose(ours.value.oof, peer.value[:, 1])
    report("train_cv", ours.best, peer.best, "sklearn.cross_val_predict", target="<=1.1")


if __name__ == "__main__":
    main()
