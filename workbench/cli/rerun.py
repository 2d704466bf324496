"""``workbench rerun``: execute a run again and check that every recorded metric is identical."""

from __future__ import annotations

import argparse
import sys

from ._jobargs import add_notify, add_progress, add_runs_dir, display_path, format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rerun",
        help="re-execute a run and check its metrics are reproduced",
        description="Execute a run again with the same notebook code, parameters, seed and inputs, then "
        "report whether every recorded metric is identical. Exit status 1 when not.",
    )
    p.add_argument("run", help="run directory, folder name, run id or run name (its latest run)")
    add_runs_dir(p)
    p.add_argument("--timeout", type=float, metavar="S", help="stop the rerun after S seconds")
    add_notify(p)
    p.add_argument("--allow-changed-inputs", action="store_true", help="rerun even when input files changed")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..jobs.runner import rerun
    from ..jobs.startup import skip_unused_optional_imports

    skip_unused_optional_imports()

    result = rerun(
        args.run,
        args.runs_dir,
        timeout=args.timeout,
        notify=args.notify,
        allow_changed_inputs=args.allow_changed_inputs,
        progress=not args.no_progress,
    )
    new = result.rerun
    print(f"rerun of {result.original.path.name}: {display_path(new.path)}")
    if new.state != "succeeded":
        print(f"workbench rerun: the rerun failed: {(new.error or {}).get('summary', 'failed')}", file=sys.stderr)
        return 1
    if result.identical:
        print(f"identical: all {len(new.metrics)} recorded metrics match")
        return 0
    table = pd.DataFrame([{"metric": k, "original": a, "rerun": b} for k, (a, b) in result.differences.items()])
    print(
        f"NOT identical: {len(result.differences)} of {len(set(result.original.metrics) | set(new.metrics))} metrics differ"
    )
    print(format_table(table))
    return 1
