"""``workbench pipeline``: run a pipeline file (notebooks as a DAG), resume one, list and show pipeline runs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import CommandError
from ._jobargs import add_progress, add_runs_dir, display_path, format_table
from ._pipeline_argo import add_argo_options, run_argo, stop_argo


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline",
        help="run notebooks as a DAG from a pipeline file; resume, list and show pipeline runs",
        description="Pipelines: steps are notebooks, run as recorded runs in dependency order; unchanged "
        "steps reuse their last successful run.",
    )
    actions = p.add_subparsers(dest="pipeline_command", metavar="ACTION")
    run = actions.add_parser(
        "run",
        help="run a pipeline file",
        description="Validate FILE, then run its steps, independent ones side by side. Exit status 1 when a step failed.",
    )
    run.add_argument("file", type=Path, help="the pipeline YAML file")
    run.add_argument(
        "-p",
        "--parameter",
        nargs="+",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a pipeline parameter (NAME=VALUE or NAME VALUE), coerced to the type of its default; "
        "STEP.PARAM=VALUE sets a notebook parameter of step STEP (all its foreach expansions), "
        "EXPANSION.PARAM=VALUE or 'STEP[KEY].PARAM=VALUE' one expansion's only, e.g. -p train-lgbm.learning_rate=0.1 "
        "(re-runs train-lgbm and the steps that read it); typed like the notebook's parameter; repeatable",
    )
    run.add_argument("--workers", type=int, default=1, help="steps run at the same time (default: 1)")
    run.add_argument("--force", nargs="+", action="extend", default=[], metavar="STEP", help="run STEP even if cached")
    add_runs_dir(run)
    add_progress(run)
    run.add_argument(
        "--backend", choices=("local", "argo"), default="local", help="where the steps run (default: local)"
    )
    run.add_argument(
        "--dry-run", action="store_true", help="with --backend argo: print the Argo objects instead of submitting them"
    )
    add_argo_options(run)
    run.set_defaults(func=run_command)

    stop = actions.add_parser("stop", help="stop and delete your pipeline on Argo (a Workflow, schedule or webhook)")
    stop.add_argument("name", help="the name `pipeline run --backend argo` printed")
    stop.add_argument("--backend", choices=("argo",), default="argo", help="where it runs (only argo)")
    stop.set_defaults(func=lambda args: stop_argo(args.name))

    resume = actions.add_parser("resume", help="finish a failed or killed pipeline run (only unfinished steps run)")
    resume.add_argument("run", help="pipeline run folder, folder name or id")
    resume.add_argument("--workers", type=int, default=1, help="steps run at the same time (default: 1)")
    add_runs_dir(resume)
    add_progress(resume)
    resume.set_defaults(func=resume_command)

    listing = actions.add_parser("list", help="pipeline runs, newest last")
    add_runs_dir(listing)
    listing.set_defaults(func=list_command)

    show = actions.add_parser("show", help="one pipeline run: its steps, their runs, states and metrics")
    show.add_argument("run", help="pipeline run folder, folder name or id")
    add_runs_dir(show)
    show.set_defaults(func=show_command)
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def overrides(values: list[list[str]]) -> dict[str, str]:
    """``-p`` values as ``{name: text}``: each is ``NAME=VALUE`` or ``NAME VALUE``.

    >>> overrides([["seed=1"], ["n_splits", "3"], ["train[lgbm].learning_rate=0.1"]])
    {'seed': '1', 'n_splits': '3', 'train[lgbm].learning_rate': '0.1'}
    """
    out: dict[str, str] = {}
    for value in values:
        if len(value) == 2:
            out[value[0]] = value[1]
        elif len(value) == 1 and "=" in value[0]:
            name, text = value[0].split("=", 1)
            out[name] = text
        else:
            raise CommandError(f"-p {' '.join(value)}: write -p NAME=VALUE", code=2)
    return out


def _finished(run: Any) -> int:
    print(run.summary())
    print(f"report: {display_path(run.path / 'report.html')}")
    return 0 if run.state == "succeeded" else 1


def run_command(args: argparse.Namespace) -> int:
    from ..jobs.pipeline import load_pipeline, run_pipeline
    from ..jobs.startup import skip_unused_optional_imports

    skip_unused_optional_imports()
    if args.backend == "argo":
        return run_argo(args, args.file, overrides(args.parameter))
    if args.dry_run:
        raise CommandError("--dry-run prints the Argo objects: add --backend argo", code=2)
    pipeline = load_pipeline(args.file, overrides(args.parameter))
    result = run_pipeline(
        pipeline, runs_dir=args.runs_dir, workers=args.workers, force=args.force, progress=not args.no_progress
    )
    return _finished(result)


def resume_command(args: argparse.Namespace) -> int:
    from ..jobs.pipeline import resume_pipeline
    from ..jobs.startup import skip_unused_optional_imports

    skip_unused_optional_imports()
    result = resume_pipeline(args.run, runs_dir=args.runs_dir, workers=args.workers, progress=not args.no_progress)
    return _finished(result)


def list_command(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..jobs.pipeline import scan_pipeline_runs

    runs, bad = scan_pipeline_runs(args.runs_dir)
    rows = [
        {
            "run": r.path.name,
            "name": r.name,
            "state": r.shown_state,
            "owner": r.owner,
            "trigger": f"{r.trigger.get('kind')}:{r.trigger.get('by')}",
            "start": r.start,
            "duration_s": r.duration_s,
            "steps": ", ".join(f"{n} {s}" for s, n in r.counts().items()),
        }
        for r in runs
    ]
    print(format_table(pd.DataFrame(rows)) if rows else "(no pipeline runs)")
    for path, reason in bad:
        print(f"skipped {path.name}: {reason}", file=sys.stderr)
    return 0


def show_command(args: argparse.Namespace) -> int:
    from ..jobs.pipeline import find_pipeline_run

    run = find_pipeline_run(args.run, args.runs_dir)
    print(run.summary())
    print(f"trigger: {run.trigger.get('kind')} by {run.trigger.get('by')}; started {run.start}")
    if run.parameters:
        print("parameters: " + ", ".join(f"{k}={v!r}" for k, v in run.parameters.items()))
    print(format_table(run.to_frame()))
    print(f"report: {display_path(run.path / 'report.html')}")
    return 0
