"""``workbench explain``: the explanation report of a trained model as one HTML file."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="write a self-contained HTML report explaining a model",
        description="Run the explanation notebook (permutation importance, partial dependence "
        "and ICE, SHAP) on a saved CVResult or joblib model and write one HTML file. "
        "Without --cv/--model, a quick LightGBM is trained on the bundled Telco data.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--cv", default="", help="a saved CVResult, or a run directory holding one (cv/ or artifacts/cv/)"
    )
    source.add_argument("--model", default="", help="a fitted model saved with joblib")
    p.add_argument("--data", default="", help="data with features and target (.parquet/.csv/.pkl); default: Telco")
    p.add_argument("--target", default="Churn", help="target column of --data (default: Churn)")
    p.add_argument(
        "--out", default=Path("report.html"), type=Path, help="the HTML file to write (default: report.html)"
    )
    p.add_argument("--top-k", default=5, type=int, help="partial dependence plots for this many features (default: 5)")
    p.add_argument("--max-rows", default=2000, type=int, help="rows sampled for ICE and SHAP (default: 2000)")
    p.add_argument("--seed", default=0, type=int, help="seed for sampling and permutations (default: 0)")
    p.add_argument(
        "--trust",
        action="store_true",
        help="unpickle a model or data file another user wrote (runs any code in it: only if you trust them; "
        "LightGBM and skops models of a saved CVResult load without it)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..notebooks.explain_notebook import run_notebook

    for name in ("cv", "model", "data"):
        value = getattr(args, name)
        if value and not Path(value).exists():
            raise FileNotFoundError(f"--{name} {value}: no such file or directory")
    if args.top_k < 1 or args.max_rows < 1:
        raise ValueError("--top-k and --max-rows must be positive")
    params = {
        "cv_dir": str(args.cv),
        "model_path": str(args.model),
        "data_path": str(args.data),
        "target": args.target,
        "top_k": args.top_k,
        "max_rows": args.max_rows,
        "seed": args.seed,
        "trust": bool(args.trust),
    }
    out = run_notebook(params, args.out)
    print(f"report: {out}")
    return 0
