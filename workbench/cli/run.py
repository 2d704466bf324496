"""``workbench run``: execute a notebook as a job with validated parameters."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import CommandError
from ._jobargs import (
    add_notify,
    add_params,
    add_progress,
    add_runs_dir,
    display_path,
    read_parameter_files,
    text_parameters,
)

if TYPE_CHECKING:
    from ..jobs.runner import PreparedRun


# Library parameters whose flag is spelled differently (the rest match their flag: gpus → --gpus).
PARAMETER_FLAGS = {"random_state": "--seed", "secrets": "--secret", "text_params": "--parameter"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "run",
        help="run a notebook as a job with validated parameters",
        description="Validate the parameters against the notebook's 'parameters' cell, execute it in a "
        "fresh kernel and record the run (executed notebook, params, env, inputs, metrics, "
        "artifacts, report.html, status) in its own run directory.",
    )
    p.add_argument("notebook", type=Path, help="the .ipynb to run")
    add_params(p)
    p.add_argument("--name", help="run name (default: the notebook's name)")
    add_runs_dir(p)
    p.add_argument("--timeout", type=float, metavar="S", help="stop the run after S seconds (kernel included)")
    add_notify(p)
    p.add_argument("--hide-input", action="store_true", help="leave code out of report.html")
    p.add_argument(
        "--run-dir-file",
        type=Path,
        metavar="FILE",
        help="write the run directory's absolute path to FILE once the run succeeded (pipeline steps on Argo)",
    )
    add_progress(p)
    k8s = p.add_argument_group("Kubernetes backend")
    k8s.add_argument("--backend", choices=("local", "k8s"), default="local", help="where to run (default: local)")
    k8s.add_argument(
        "--image", help="container image for --backend k8s --dry-run (submitted Jobs run the profile's image)"
    )
    k8s.add_argument("--gpus", type=int, default=0, help="number of GPUs for --backend k8s (default: 0)")
    k8s.add_argument("--profile", help="hub profile whose node selector and tolerations the Job uses")
    k8s.add_argument(
        "--namespace",
        default="default",
        help="Kubernetes namespace for --dry-run (submitted Jobs go to the job gateway's namespace)",
    )
    k8s.add_argument(
        "--secret",
        action="append",
        default=[],
        help="Kubernetes Secret whose keys become environment variables; repeatable; only Secrets the profile allows",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate only; with --backend k8s print the Job manifest instead of submitting it",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..jobs.runner import execute_run, prepare_run
    from ..jobs.startup import skip_unused_optional_imports

    skip_unused_optional_imports()

    prepared = prepare_run(
        args.notebook, read_parameter_files(args.parameters_file), text_parameters(args.parameter), name=args.name
    )
    if args.backend == "k8s":
        return _run_k8s(args, prepared)
    if args.dry_run:
        import yaml

        print(f"parameters of {args.notebook} are valid:")
        print(yaml.safe_dump(prepared.params, sort_keys=False).rstrip() or "{}")
        return 0
    record = execute_run(
        prepared,
        args.runs_dir,
        timeout=args.timeout,
        notify=args.notify,
        hide_input=args.hide_input,
        progress=not args.no_progress,
    )
    where = display_path(record.path)
    if record.state != "succeeded":
        summary = (record.error or {}).get("summary", "failed")
        print(f"workbench run: {record.name} failed: {summary} (run directory {where})", file=sys.stderr)
        return 1
    metrics = ", ".join(
        f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
        for k, v in record.metrics.items()
        if isinstance(v, int | float | str) and not isinstance(v, bool)
    )
    print(f"run {record.name} succeeded in {record.duration_s:.1f}s" + (f": {metrics}" if metrics else ""))
    if args.run_dir_file is not None:
        from .._io import atomic_write_text

        atomic_write_text(args.run_dir_file, str(Path(record.path).resolve()))
    print(f"run directory: {where}")
    print(f"report: {display_path(record.path / 'report.html')}")
    return 0


def _run_k8s(args: argparse.Namespace, prepared: PreparedRun) -> int:
    if args.image and not args.dry_run:
        raise CommandError(
            "--image applies to --dry-run only: the job gateway runs the profile's curated image "
            "(pick it with --profile)",
            code=2,
        )
    try:
        from ..jobs.k8s import run_k8s
    except ImportError as exc:
        raise CommandError(f"the Kubernetes backend is not available in this installation ({exc})", code=2) from exc
    return run_k8s(
        notebook=str(args.notebook),
        params=prepared.params,
        name=prepared.name,
        image=args.image,
        gpus=args.gpus,
        profile=args.profile,
        namespace=args.namespace,
        timeout=int(args.timeout) if args.timeout else None,
        dry_run=args.dry_run,
        notify=args.notify,
        secret=args.secret,
    )
