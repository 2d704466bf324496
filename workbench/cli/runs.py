"""``workbench runs``: the run registry as a table."""

from __future__ import annotations

import argparse

from ._jobargs import add_runs_dir, format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runs",
        help="list runs with their parameters and metrics",
        description="List the run directories under --runs-dir: state, duration, parameters and metrics.",
    )
    add_runs_dir(p)
    p.add_argument("--sort", metavar="METRIC", help="best first by this metric (prefix '-' when lower is better)")
    p.add_argument("--state", choices=("running", "succeeded", "failed", "degraded"), help="only runs in this state")
    p.add_argument("--name", help="only runs with this name")
    p.add_argument("--last", type=int, metavar="N", help="only the N most recent runs")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from ..runs.layout import default_runs_root
    from ..runs.registry import list_runs, scan_runs

    table = list_runs(args.runs_dir, status=args.state)  # oldest first
    if args.name:
        table = table[table["name"] == args.name]
    if args.last:
        table = table.tail(args.last)
    if args.sort:  # rank the selected runs
        ranked = list_runs(args.runs_dir, status=args.state, sort=args.sort)
        table = ranked[ranked["run"].isin(table["run"])]
    table = table.drop(columns=[c for c in ("owner", "notebook") if c in table])
    print(f"{len(table)} runs in {args.runs_dir or default_runs_root()}")
    print(format_table(table.reset_index(drop=True)))
    for bad in scan_runs(args.runs_dir or default_runs_root())[1]:
        print(f"workbench runs: skipped {bad.path}: {bad.reason}", file=sys.stderr)
    return 0
