"""``workbench compare``: parameter and metric differences between two runs."""

from __future__ import annotations

import argparse

from ._jobargs import add_runs_dir, format_table


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="show parameter and metric differences between two runs",
        description="Compare two runs: the parameters and metrics that differ, with b - a for numbers.",
    )
    p.add_argument("run_a", help="first run (directory, folder name, run id or run name)")
    p.add_argument("run_b", help="second run")
    add_runs_dir(p)
    p.add_argument("--all", action="store_true", help="also list parameters and metrics that are equal")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..runs.registry import compare_runs, find_run

    a, b = find_run(args.run_a, args.runs_dir), find_run(args.run_b, args.runs_dir)
    table = compare_runs(a, b, everything=args.all)
    print(f"a = {a.path.name} ({a.state})\nb = {b.path.name} ({b.state})")
    print(format_table(table) if not table.empty else "no differences in parameters or metrics")
    return 0
