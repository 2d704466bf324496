"""``workbench sweep``: run a notebook over a grid of parameters in parallel worker processes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._jobargs import add_notify, add_params, add_progress, add_runs_dir, format_table, read_parameter_files

# Library parameters whose flag is spelled differently (the rest match their flag: random → --random).
PARAMETER_FLAGS = {"random_state": "--seed", "text_grid": "--parameter", "grid": "--parameters-file"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a notebook over a parameter grid, in parallel",
        description="Run the notebook once per combination of the given values (or --random K of them) "
        "in --workers processes; print the runs, best first. Exit status 1 when any failed.",
    )
    p.add_argument("notebook", type=Path, help="the .ipynb to run")
    add_params(p, sweep=True)
    p.add_argument("--random", type=int, metavar="K", help="run K points drawn from the grid instead of all")
    p.add_argument("--seed", type=int, default=0, help="seed for --random (default: 0)")
    p.add_argument("--workers", type=int, default=1, help="parallel worker processes (default: 1)")
    p.add_argument("--name", help="sweep name, also each run's name (default: <notebook>-sweep)")
    add_runs_dir(p)
    p.add_argument("--resume", action="store_true", help="skip grid points that already succeeded in this sweep")
    p.add_argument("--timeout", type=float, metavar="S", help="time limit of each run in seconds")
    p.add_argument("--sort", metavar="METRIC", help="rank by this metric (prefix '-' when lower is better)")
    add_notify(p)
    p.add_argument("--hide-input", action="store_true", help="leave code out of each report.html")
    add_progress(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..jobs.params import split_grid_values
    from ..jobs.startup import skip_unused_optional_imports

    skip_unused_optional_imports()
    from ..jobs.sweep import run_sweep

    grid = {k: v.items() for k, v in read_parameter_files(args.parameters_file).items()}
    text_grid = {name: split_grid_values(values) for name, values in args.parameter}
    table = run_sweep(
        args.notebook,
        grid,
        text_grid=text_grid,
        random=args.random,
        seed=args.seed,
        workers=args.workers,
        name=args.name,
        runs_dir=args.runs_dir,
        resume=args.resume,
        timeout=args.timeout,
        notify=args.notify,
        hide_input=args.hide_input,
        sort=args.sort,
        progress=not args.no_progress,
    )
    failed = int((table["state"] != "succeeded").sum())
    resumed = int(table["resumed"].sum()) if "resumed" in table else 0
    sort = table.attrs.get("sort")
    print(
        f"sweep {table.attrs.get('name')}: {len(table) - failed} of {len(table)} runs succeeded"
        + (f" ({resumed} from an earlier sweep)" if resumed else "")
        + (f", best first by {sort}" if sort else "")
    )
    print(format_table(table.drop(columns=[c for c in ("error", "resumed") if c in table and not table[c].any()])))
    if failed:
        for row in table[table["state"] != "succeeded"].to_dict("records"):
            print(f"workbench sweep: {row.get('run')} failed: {row.get('error')}", file=sys.stderr)
        return 1
    return 0
