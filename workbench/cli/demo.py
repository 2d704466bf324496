"""``workbench demo``: the reference pipeline on the bundled Telco data, run through the job runner.

``notebooks/train.ipynb`` trains LightGBM with cross-validation, ``notebooks/explain.ipynb``
explains that run (permutation importance, PDP/ICE, SHAP), then ``notebooks/submission.ipynb``
builds and checks ``submission.csv`` from its test predictions. Each is a recorded run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from . import CommandError
from ._jobargs import add_notify, add_progress, add_runs_dir, display_path

NOTEBOOKS_ENV = "WORKBENCH_NOTEBOOKS"


# Library parameters whose flag is spelled differently (the rest match their flag).
PARAMETER_FLAGS = {"random_state": "--seed"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train, explain and submit on the bundled Telco data, as recorded runs",
        description="Run notebooks/train.ipynb (LightGBM, stratified K-fold CV on the bundled Telco "
        "competition split), notebooks/explain.ipynb and notebooks/submission.ipynb "
        "through the job runner; print the CV AUC, the reports and the submission.",
    )
    add_runs_dir(p)
    p.add_argument("--seed", default=0, type=int, help="seed for folds and model (default: 0)")
    p.add_argument("--n-splits", default=5, type=int, help="number of CV folds (default: 5)")
    p.add_argument(
        "--notebooks",
        type=Path,
        default=None,
        help=f"folder holding train.ipynb, explain.ipynb and submission.ipynb (default: ${NOTEBOOKS_ENV}, else the "
        "notebooks/ folder of the source checkout)",
    )
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
    from ..jobs.runner import execute_run, prepare_run
    from ..jobs.startup import skip_unused_optional_imports

    skip_unused_optional_imports()

    folder = notebooks_dir(args.notebooks)
    options = {"notify": args.notify, "progress": not args.no_progress}
    train = execute_run(
        prepare_run(folder / "train.ipynb", {"seed": args.seed, "n_splits": args.n_splits}, name="train"),
        args.runs_dir,
        **options,
    )
    if train.state != "succeeded":
        print(
            f"workbench demo: training failed: {train.error.get('summary')} ({display_path(train.path)})",
            file=sys.stderr,
        )
        return 1
    print(f"CV AUC {train.metrics['cv_auc']:.4f} ({args.n_splits}-fold LightGBM, run {train.path.name})")
    print(f"training report: {display_path(train.path / 'report.html')}")
    explain = execute_run(
        prepare_run(folder / "explain.ipynb", {"cv_dir": str(train.path), "seed": args.seed}, name="explain"),
        args.runs_dir,
        **options,
    )
    if explain.state != "succeeded":
        print(
            f"workbench demo: the explanation failed: {explain.error.get('summary')} ({display_path(explain.path)})",
            file=sys.stderr,
        )
        return 1
    print(f"explanation report: {display_path(explain.path / 'report.html')}")
    sub = execute_run(
        prepare_run(folder / "submission.ipynb", {"train_run": str(train.path)}, name="submission"),
        args.runs_dir,
        **options,
    )
    if sub.state != "succeeded":
        print(
            f"workbench demo: the submission failed: {sub.error.get('summary')} ({display_path(sub.path)})",
            file=sys.stderr,
        )
        return 1
    print(
        f"submission: {display_path(sub.path / 'artifacts' / 'submission.csv')} "
        f"(leaderboard AUC {sub.metrics.get('leaderboard_auc', float('nan')):.4f})"
    )
    print(f"submission report: {display_path(sub.path / 'report.html')}")
    return 0
