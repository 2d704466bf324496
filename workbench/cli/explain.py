"""``workbench explain``: the explanation report of a trained model, as a recorded run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._jobargs import add_notify, add_output, add_progress, add_runs_dir, display_path

# Library parameters whose flag is spelled differently (the rest match their flag: max_rows → --max-rows).
PARAMETER_FLAGS = {
    "cv_dir": "--cv",
    "model_path": "--model",
    "data_path": "--data",
    "top": "--top-k",
    "random_state": "--seed",
    "out": "--output",
}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "explain",
        help="explain a model (HTML report), as a recorded run",
        description="Run the explanation notebook (permutation importance, partial dependence "
        "and ICE, SHAP) on a saved CVResult or joblib model through the job runner: a run directory "
        "with the parameters, metrics and a self-contained report.html. "
        "Without --cv/--model, a quick LightGBM is trained on the bundled Telco data.",
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--cv", default="", help="a saved CVResult, or a run directory holding one (cv/ or artifacts/cv/)"
    )
    source.add_argument("--model", default="", help="a fitted model saved with joblib")
    p.add_argument("--data", default="", help="data with features and target (.parquet/.csv/.pkl); default: Telco")
    p.add_argument("--target", default="Churn", help="target column of --data (default: Churn)")
    add_output(p, "also write the report to this HTML file", default="only report.html in the run directory")
    p.add_argument("--top-k", default=5, type=int, help="partial dependence plots for this many features (default: 5)")
    p.add_argument("--max-rows", default=2000, type=int, help="rows sampled for ICE and SHAP (default: 2000)")
    p.add_argument("--seed", default=0, type=int, help="seed for sampling and permutations (default: 0)")
    p.add_argument(
        "--trust",
        action="store_true",
        help="unpickle a model or data file another user wrote (runs any code in it: only if you trust them; "
        "LightGBM and skops models of a saved CVResult load without it)",
    )
    p.add_argument("--name", default="explain", help="run name (default: explain)")
    add_runs_dir(p)
    p.add_argument("--timeout", type=float, metavar="S", help="stop the run after S seconds (kernel included)")
    add_notify(p)
    add_progress(p)
    p.set_defaults(func=run)


def notebook_params(args: argparse.Namespace) -> dict:
    """The explanation notebook's parameters from the flags; paths made absolute (the kernel runs elsewhere)."""
    for name in ("cv", "model", "data"):
        value = getattr(args, name)
        if value and not Path(value).exists():
            raise FileNotFoundError(f"--{name} {value}: no such file or directory")
    if args.top_k < 1 or args.max_rows < 1:
        raise ValueError("--top-k and --max-rows must be positive")
    return {
        "cv_dir": str(Path(args.cv).resolve()) if args.cv else "",
        "model_path": str(Path(args.model).resolve()) if args.model else "",
        "data_path": str(Path(args.data).resolve()) if args.data else "",
        "target": args.target,
        "top_k": args.top_k,
        "max_rows": args.max_rows,
        "seed": args.seed,
        "trust": bool(args.trust),
    }


def run(args: argparse.Namespace) -> int:
    from .._io import atomic_write_bytes
    from ..jobs.runner import execute_run, prepare_run
    from ..jobs.startup import skip_unused_optional_imports
    from ..notebooks import notebook_path
    from ..runs.records import REPORT_FILE

    params = notebook_params(args)
    skip_unused_optional_imports()
    record = execute_run(
        prepare_run(notebook_path("explain"), params, name=args.name),
        args.runs_dir,
        timeout=args.timeout,
        notify=args.notify,
        progress=not args.no_progress,
    )
    if record.state != "succeeded":
        summary = (record.error or {}).get("summary", "failed")
        print(f"workbench explain: the explanation failed: {summary} ({display_path(record.path)})", file=sys.stderr)
        return 1
    report = record.path / REPORT_FILE
    print(f"run directory: {display_path(record.path)}")
    print(f"report: {display_path(report)}")
    if args.output is not None:
        atomic_write_bytes(args.output, report.read_bytes())
        print(f"wrote {display_path(args.output)}")
    return 0
