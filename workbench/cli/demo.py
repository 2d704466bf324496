"""``workbench demo``: the reference pipeline ``notebooks/pipeline.yaml`` on the bundled Telco data.

``notebooks/train.ipynb`` trains LightGBM, logistic regression and extra trees with
cross-validation (side by side), ``notebooks/stack.ipynb`` stacks them, ``notebooks/explain.ipynb``
explains the LightGBM run (permutation importance, PDP/ICE, SHAP) and ``notebooks/submission.ipynb``
builds and checks ``submission.csv`` from the stack's test predictions. Each step is a recorded
run; steps whose notebook, parameters and inputs are unchanged reuse their last run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from . import CommandError
from ._jobargs import add_notify, add_progress, add_runs_dir, display_path

NOTEBOOKS_ENV = "WORKBENCH_NOTEBOOKS"
PIPELINE_FILE = "pipeline.yaml"


# Library parameters whose flag is spelled differently (the rest match their flag).
PARAMETER_FLAGS = {"random_state": "--seed"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train, stack, explain and submit on the bundled Telco data: the reference pipeline",
        description="Run the reference pipeline notebooks/pipeline.yaml: notebooks/train.ipynb for LightGBM, "
        "logistic regression and extra trees (stratified K-fold CV on the bundled Telco competition split), "
        "notebooks/stack.ipynb, notebooks/explain.ipynb and notebooks/submission.ipynb, each a recorded run; "
        "print the CV AUCs, the reports and the submission. Unchanged steps reuse their last run.",
    )
    add_runs_dir(p)
    p.add_argument("--seed", default=0, type=int, help="seed for folds and model (default: 0)")
    p.add_argument("--n-splits", default=5, type=int, help="number of CV folds (default: 5)")
    p.add_argument(
        "--notebooks",
        type=Path,
        default=None,
        help=f"folder holding pipeline.yaml and its notebooks (default: ${NOTEBOOKS_ENV}, else the "
        "notebooks/ folder of the source checkout)",
    )
    p.add_argument("--workers", type=int, default=2, help="pipeline steps run at the same time (default: 2)")
    add_notify(p)
    add_progress(p)
    p.set_defaults(func=run)


def notebooks_dir(override: Path | None = None) -> Path:
    """The reference notebooks: ``override``, ``$WORKBENCH_NOTEBOOKS`` or those shipped in the package."""
    from ..notebooks import notebook_path

    folder = override or (Path(os.environ[NOTEBOOKS_ENV]) if os.environ.get(NOTEBOOKS_ENV) else None)
    folder = folder or notebook_path("train").parent
    if not (folder / "train.ipynb").is_file():
        raise CommandError(f"no reference notebooks in {folder}; pass --notebooks DIR or set {NOTEBOOKS_ENV}", code=2)
    return folder


def run(args: argparse.Namespace) -> int:
    from ..jobs.pipeline import load_pipeline, run_pipeline
    from ..jobs.startup import skip_unused_optional_imports

    skip_unused_optional_imports()

    folder = notebooks_dir(args.notebooks)
    if not (folder / PIPELINE_FILE).is_file():
        raise CommandError(
            f"no {PIPELINE_FILE} in {folder}; pass --notebooks DIR holding the reference pipeline", code=2
        )
    pipeline = load_pipeline(folder / PIPELINE_FILE, {"seed": str(args.seed), "n_splits": str(args.n_splits)})
    result = run_pipeline(pipeline, runs_dir=args.runs_dir, workers=args.workers, progress=not args.no_progress)
    print(result.summary())
    _notify(args.notify, result)
    if result.state != "succeeded":
        for step in result.steps.values():
            if step.state == "failed":
                print(f"workbench demo: step {step.name} failed: {step.error}", file=sys.stderr)
        print(f"pipeline report: {display_path(result.path / 'report.html')}", file=sys.stderr)
        return 1
    train, stack, explain, sub = (_run_dir(result, s) for s in ("train-lgbm", "stack", "explain", "submission"))
    steps = result.steps
    print(f"CV AUC {steps['train-lgbm'].metrics['cv_auc']:.4f} ({args.n_splits}-fold LightGBM, run {train.name})")
    print(
        f"stacked CV AUC {steps['stack'].metrics['cv_auc']:.4f} (LightGBM, logistic regression and extra trees, run {stack.name})"
    )
    print(f"training report: {display_path(train / 'report.html')}")
    print(f"explanation report: {display_path(explain / 'report.html')}")
    print(
        f"submission: {display_path(sub / 'artifacts' / 'submission.csv')} "
        f"(leaderboard AUC {steps['submission'].metrics.get('leaderboard_auc', float('nan')):.4f})"
    )
    print(f"submission report: {display_path(sub / 'report.html')}")
    print(f"pipeline report: {display_path(result.path / 'report.html')}")
    return 0


def _run_dir(result: Any, step: str) -> Path:
    return Path(result.steps[step].run)


def _notify(url: str | None, result: Any) -> None:
    from ..jobs.notify import notify_url, post_message

    url = notify_url(url)
    if url:
        post_message(url, {"text": f"workbench demo: {result.summary()}"})
