"""Permutation importance on LightGBM: workbench's tree engine vs scikit-learn (and eli5), same permutations.

Synthetic binary data, 50k training / 20k held-out rows x 40 features, LightGBM 300 trees x 31
leaves, 5 repeats scored by ROC AUC. workbench draws the permutations scikit-learn draws, so the
importances must agree (checked); eli5 draws its own, so only its timing is compared.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _harness import header, measure, parser, report  # noqa: E402


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--no-eli5", action="store_true", help="skip the eli5 comparison (always skipped with --quick)")
    args = p.parse_args()
    from lightgbm import LGBMClassifier
    from sklearn.datasets import make_classification
    from sklearn.inspection import permutation_importance as sklearn_pi

    from workbench.explain import permutation_importance

    n_train, n_valid, n_trees = (2_000, 500, 20) if args.quick else (50_000, 20_000, 300)
    X, y = make_classification(
        n_samples=n_train + n_valid, n_features=40, n_informative=15, n_redundant=5, flip_y=0.05, random_state=0
    )
    X_train, y_train, X_valid, y_valid = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    model = LGBMClassifier(
        n_estimators=n_trees, num_leaves=31, learning_rate=0.05, verbose=-1, random_state=0, n_jobs=2
    ).fit(X_train, y_train)
    header(
        f"permutation importance, LightGBM {n_trees} trees x 31 leaves, {n_valid} held-out rows x 40, "
        "5 repeats, roc_auc"
    )
    kwargs = {"scoring": "roc_auc", "n_repeats": 5, "random_state": 0}

    # Compile (or load the compiled kernels from cache) outside the timing.
    permutation_importance(model, X_valid[:200], y_valid[:200], progress=False, **kwargs)
    repeat = 1 if args.quick else 3
    ours = measure(lambda: permutation_importance(model, X_valid, y_valid, progress=False, **kwargs), repeat=repeat)
    peer = measure(lambda: sklearn_pi(model, X_valid, y_valid, n_jobs=1, **kwargs), repeat=1)
    assert ours.value.engine == "tree", ours.value.engine
    diff = float(np.abs(ours.value.to_sklearn().importances - peer.value.importances).max())
    print(f"max |workbench - sklearn| over all importances: {diff:.2e}", flush=True)
    assert diff <= 1e-9, diff
    report("permutation_importance", ours.best, peer.best, "sklearn", target=">=10")
    if not (args.quick or args.no_eli5):
        from eli5.sklearn import PermutationImportance

        eli5 = measure(
            lambda: PermutationImportance(model, scoring="roc_auc", n_iter=5, random_state=0, cv="prefit").fit(
                X_valid, y_valid
            ),
            repeat=1,
        )
        report("permutation_importance_vs_eli5", ours.best, eli5.best, "eli5")


if __name__ == "__main__":
    main()
