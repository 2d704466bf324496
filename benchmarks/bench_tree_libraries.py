"""Permutation importance and exact PD + ICE through the tree engine, per tree library, vs scikit-learn.

For LightGBM, XGBoost, CatBoost, RandomForest, ExtraTrees, GradientBoosting and HistGradientBoosting
(binary classifiers on the same
synthetic data, 100 trees): workbench's ``permutation_importance`` (roc_auc, 5 repeats) vs
``sklearn.inspection.permutation_importance``, and exact partial dependence + ICE at 20 grid points
vs scikit-learn's brute method. Results must agree (<= 1e-9) before any time is reported.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _harness import header, measure, parser, report  # noqa: E402


def _models(quick: bool) -> dict:
    from lightgbm import LGBMClassifier
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        RandomForestClassifier,
    )

    trees = 10 if quick else 100
    models = {
        "lightgbm": LGBMClassifier(n_estimators=trees, num_leaves=31, verbose=-1, random_state=0, n_jobs=2),
        "random_forest": RandomForestClassifier(n_estimators=trees, max_depth=10, random_state=0, n_jobs=2),
        "extra_trees": ExtraTreesClassifier(n_estimators=trees, max_depth=10, random_state=0, n_jobs=2),
        "gradient_boosting": GradientBoostingClassifier(n_estimators=trees, max_depth=3, random_state=0),
        "hist_gradient_boosting": HistGradientBoostingClassifier(max_iter=trees, early_stopping=False, random_state=0),
    }
    try:
        from xgboost import XGBClassifier

        models["xgboost"] = XGBClassifier(n_estimators=trees, max_depth=6, random_state=0, n_jobs=2)
    except ImportError:
        print("xgboost is not installed: skipped (pip install workbench[xgboost])")
    try:
        from catboost import CatBoostClassifier

        models["catboost"] = CatBoostClassifier(
            iterations=trees, depth=6, random_seed=0, thread_count=2, verbose=0, allow_writing_files=False
        )
    except ImportError:
        print("catboost is not installed: skipped (pip install workbench[catboost])")
    return models


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--only", nargs="+", metavar="LIBRARY", help="run only these libraries (the names it prints)")
    args = p.parse_args()
    from sklearn.datasets import make_classification
    from sklearn.inspection import partial_dependence as sk_partial_dependence
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    from workbench.explain import partial_dependence, permutation_importance

    n_train, n_test = (2_000, 500) if args.quick else (20_000, 4_000)
    X, y = make_classification(n_samples=n_train + n_test, n_features=20, n_informative=8, random_state=0)
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    pi = dict(scoring="roc_auc", n_repeats=5, random_state=0)
    feature = 0
    header(f"tree libraries: {n_test} held-out rows x 20 features, binary")
    for name, model in _models(args.quick).items():
        if args.only and name not in args.only:
            continue
        model.fit(X_train, y_train)
        if hasattr(model, "n_jobs"):
            model.set_params(n_jobs=1)  # predict on one thread in both runs, as scikit-learn's default
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # a fallback to the generic engine fails the run
            permutation_importance(model, X_test[:100], y_test[:100], progress=False, **pi)  # compile once
            ours = measure(lambda m=model: permutation_importance(m, X_test, y_test, progress=False, **pi), repeat=2)
            assert ours.value.engine == "tree", f"{name}: the tree engine was not used"
            peer = measure(lambda m=model: sk_permutation_importance(m, X_test, y_test, **pi), repeat=1)
            np.testing.assert_allclose(ours.value.importances, peer.value.importances, rtol=0, atol=1e-9)
            report(f"{name}_permutation_importance", ours.best, peer.best, "sklearn", target=">=10")
            partial_dependence(model, X_test[:50], feature, grid=5, kind="both", progress=False)
            ours = measure(
                lambda m=model: partial_dependence(m, X_test, feature, grid=20, kind="both", progress=False), repeat=2
            )
            peer = measure(
                lambda m=model: sk_partial_dependence(
                    m, X_test, [feature], grid_resolution=20, method="brute", kind="both"
                ),
                repeat=1,
            )
            np.testing.assert_allclose(ours.value.individual, peer.value["individual"][0], rtol=0, atol=1e-9)
            report(f"{name}_pd_ice_exact_20_grid_points", ours.best, peer.best, "sklearn.brute", target=">=10")


if __name__ == "__main__":
    main()
