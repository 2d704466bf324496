"""Out-of-fold target encoding: workbench's TargetEncoder vs scikit-learn's (cross-fitted) and category_encoders.

1,000,000 rows x 5 categorical columns (cardinalities 10 to 10,000), binary target, 5 folds.
All three use the same StratifiedKFold splits; workbench and scikit-learn must agree exactly.
Two input forms: integer-coded columns (scikit-learn's fast path) and pandas ``category`` columns.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _harness import header, measure, parser, report  # noqa: E402

CARDINALITIES = (10, 100, 1_000, 5_000, 10_000)


def make_data(n: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Integer category codes with skewed frequencies and a target that depends on two columns."""
    rng = np.random.default_rng(seed)
    cols = {}
    for j, k in enumerate(CARDINALITIES):
        cols[f"c{j}"] = np.minimum(rng.zipf(1.3, n) - 1, k - 1) if j % 2 else rng.integers(0, k, n)
    X = pd.DataFrame(cols)
    logit = -1.0 + 0.5 * np.sin(X["c1"].to_numpy()) + 0.3 * (X["c3"].to_numpy() % 7 == 0)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    return X, y


def category_encoders_fold_loop(X: pd.DataFrame, y: np.ndarray, splits: list) -> np.ndarray:
    import category_encoders as ce

    out = np.empty(X.shape, dtype=np.float64)
    for train, val in splits:
        enc = ce.TargetEncoder(cols=list(X.columns), return_df=True)
        enc.fit(X.iloc[train], pd.Series(y[train], index=X.index[train]))
        out[val] = enc.transform(X.iloc[val]).to_numpy(dtype=np.float64)
    return out


def main() -> None:
    args = parser(__doc__).parse_args()
    import warnings

    from sklearn.model_selection import StratifiedKFold
    from sklearn.preprocessing import TargetEncoder as SklearnTargetEncoder

    from workbench.features import TargetEncoder

    warnings.filterwarnings("ignore", category=FutureWarning)
    n = 20_000 if args.quick else 1_000_000
    repeat, warmup = (1, 1) if args.quick else (3, 0)
    X, y = make_data(n)
    cv = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    splits = list(cv.split(X, y))
    columns = list(X.columns)
    header(f"target encoding, {n:,} rows x {len(columns)} columns (cardinality up to {max(CARDINALITIES):,}), 5 folds")

    for form, data in (("int codes", X), ("pandas category", X.astype("category"))):
        ours = measure(
            lambda d=data: TargetEncoder(columns=columns, folds=cv, smooth="auto").fit_transform(d, y),
            repeat=repeat,
            warmup=warmup,
        )
        peer = measure(
            lambda d=data: SklearnTargetEncoder(cv=cv, smooth="auto", target_type="binary").fit_transform(d, y),
            repeat=repeat,
            warmup=warmup,
        )
        np.testing.assert_allclose(ours.value.to_numpy(dtype=np.float64), peer.value, rtol=0, atol=1e-12)
        report(f"target_encoding[{form}]", ours.best, peer.best, "sklearn.TargetEncoder", target="<=1.0")

    ce_time = measure(lambda: category_encoders_fold_loop(X, y, splits), repeat=1)
    ours = measure(lambda: TargetEncoder(columns=columns, folds=cv, smooth=20.0).fit_transform(X, y), repeat=repeat)
    report(
        "target_encoding[int codes]",
        ours.best,
        ce_time.best,
        "category_encoders.TargetEncoder(fold loop)",
        target="<=1.0",
    )


if __name__ == "__main__":
    main()
