"""``workbench demo``: the main job on the bundled Telco data."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="train LightGBM with 5-fold CV on the bundled Telco data",
                       description="Train LightGBM with cross-validation on the bundled Telco churn data and "
                                   "write the fold models, out-of-fold predictions and scores under --runs-dir.")  # fmt: skip
    p.add_argument("--runs-dir", default="runs", type=Path, help="where run directories go (default: runs)")
    p.add_argument("--seed", default=0, type=int, help="seed for folds and model (default: 0)")
    p.add_argument("--n-splits", default=5, type=int, help="number of CV folds (default: 5)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import secrets
    import time

    from .._io import atomic_write_json
    from ..data import infer_schema, make_folds
    from ..datasets import load_telco
    from ..models import default_lgbm, train_cv

    df = load_telco()
    schema = infer_schema(df, target="Churn")
    y = df[schema.target]
    folds = make_folds(y, kind="stratified", n_splits=args.n_splits, seed=args.seed)
    cv = train_cv(default_lgbm("binary", seed=args.seed), df[schema.features], y, folds,
                  metric="auc", early_stopping_rounds=200)  # fmt: skip
    run_dir = args.runs_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-demo-{secrets.token_hex(3)}"
    cv.save(run_dir / "cv")
    atomic_write_json(run_dir / "metrics.json", {"cv_auc": cv.score, "fold_auc": cv.fold_scores})
    print(f"CV AUC {cv.score:.4f} ({args.n_splits}-fold, {cv.n_splits} LightGBM models)")
    print(f"outputs: {run_dir}")
    return 0
