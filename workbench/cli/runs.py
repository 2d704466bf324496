"""``workbench runs``: the run registry as a table that fits the terminal.

By default: id, name, state, age, duration, then as many metrics as the terminal's width holds
(for runs of one notebook, its parameters too: those that differ between the runs come first). ``--wide`` shows every
column, ``--columns`` the ones named.
"""

from __future__ import annotations

import argparse
import math
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runs.layout import STATES
from ._jobargs import add_runs_dir, cell_text, format_table

if TYPE_CHECKING:
    import pandas as pd

BASE = ("id", "name", "state", "age", "duration")
CELL_CHARS = 30  # longest cell in the fitted view; --wide and --columns show more
GAP = "  "


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runs",
        help="list runs: state, age, duration and key metrics",
        description="List the runs under --runs-dir, oldest first: id, name, state, age, duration and as many "
        "metrics as the terminal's width holds; runs of one notebook (--notebook, or --name) also show its "
        "parameters. --wide shows every column, --columns the ones named.",
    )
    add_runs_dir(p)
    p.add_argument("--sort", metavar="METRIC", help="best first by this metric (prefix '-' when lower is better)")
    p.add_argument("--state", choices=STATES, help="only runs in this state")
    p.add_argument("--study", metavar="STUDY", help="only the trial runs of this tuning study (with a trial column)")
    p.add_argument("--name", help="only runs with this name")
    p.add_argument("--notebook", metavar="NOTEBOOK", help="only runs of this notebook (its path or file name)")
    p.add_argument("--last", type=int, metavar="N", help="only the N most recent runs")
    view = p.add_mutually_exclusive_group()
    view.add_argument(
        "--wide", action="store_true", help="every column: folder, owner, start, notebook, parameters, metrics"
    )
    view.add_argument(
        "--columns",
        metavar="A,B",
        help="only these columns, in this order: id, run, name, state, age, duration, owner, start, notebook, "
        "or a parameter or metric name",
    )
    p.set_defaults(func=run)


def _age(start: Any, now: datetime) -> str:
    if not isinstance(start, str):
        return ""
    try:
        seconds = (now - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    except ValueError:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or math.isnan(seconds):
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}m{secs:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def with_derived_columns(table: pd.DataFrame, now: datetime | None = None) -> pd.DataFrame:
    """``table`` (from :func:`~workbench.runs.registry.list_runs`) with ``id``, ``age`` and ``duration``."""
    now = now or datetime.now(UTC)
    table = table.copy()
    table.insert(0, "id", table["run"].map(lambda folder: str(folder).rsplit("-", 1)[-1]))
    table.insert(table.columns.get_loc("state") + 1, "age", table["start"].map(lambda s: _age(s, now)))
    table.insert(table.columns.get_loc("age") + 1, "duration", table["duration_s"].map(_duration))
    return table


def _short(column: str) -> str:
    return column.removeprefix("param.").removeprefix("metric.")


def resolve_columns(table: pd.DataFrame, names: str) -> list[str]:
    """The table columns named in ``names`` (comma-separated; ``lr`` finds ``param.lr`` or ``metric.lr``)."""
    out = []
    for name in (n.strip() for n in names.split(",") if n.strip()):
        found = [c for c in (name, f"metric.{name}", f"param.{name}") if c in table.columns]
        if not found:
            choices = "\n".join(f"  {c}" for c in table.columns if c != "duration_s")
            raise ValueError(f"--columns: no column {name!r} in these runs; choose from:\n{choices}")
        out.append(found[0])
    return out


def candidate_columns(table: pd.DataFrame, sort: str | None, one_notebook: bool) -> list[str]:
    """Columns of the fitted view, most important first: the base; for runs of one notebook the parameters
    that differ between them; the metrics (the sort metric first); then that notebook's other parameters."""
    metrics = [c for c in table.columns if c.startswith("metric.") and table[c].notna().any()]
    if sort and f"metric.{sort.lstrip('-')}" in metrics:
        metrics.remove(f"metric.{sort.lstrip('-')}")
        metrics.insert(0, f"metric.{sort.lstrip('-')}")
    params = [c for c in table.columns if c.startswith("param.")] if one_notebook else []
    varying = [c for c in params if table[c].astype(str).nunique() > 1]
    trial = ["study", "trial"] if "trial" in table.columns and table["trial"].notna().any() else []
    return [*BASE, *trial, *varying, *metrics, *[c for c in params if c not in varying]]


def _cells(values: pd.Series, limit: int) -> list[str]:
    out = []
    for value in values:
        text = str(cell_text(value))
        out.append(text if len(text) <= limit else text[: limit - 1] + "…")
    return out


def fit_columns(table: pd.DataFrame, columns: list[str], width: int) -> tuple[list[str], dict[str, list[str]]]:
    """The columns of ``columns`` that fit in ``width`` characters, in order (one too wide is skipped)."""
    chosen: list[str] = []
    cells: dict[str, list[str]] = {}
    used = -len(GAP)
    for column in columns:
        texts = _cells(table[column], CELL_CHARS)
        need = max([len(_short(column)), *map(len, texts)]) + len(GAP)
        if used + need <= width or column in BASE[:3]:
            chosen.append(column)
            cells[column] = texts
            used += need
    return chosen, cells


def render(table: pd.DataFrame, columns: list[str], cells: dict[str, list[str]]) -> str:
    """Aligned text: numbers right-aligned, text left-aligned; headers without their param./metric. prefix."""
    import pandas as pd

    shorts = [_short(c) for c in columns]
    headers = [s if shorts.count(s) == 1 else c for s, c in zip(shorts, columns)]
    widths = [max([len(h), *map(len, cells[c])]) for h, c in zip(headers, columns)]
    numeric = [pd.api.types.is_numeric_dtype(table[c]) and not pd.api.types.is_bool_dtype(table[c]) for c in columns]

    def line(texts: list[str]) -> str:
        return GAP.join(t.rjust(w) if n else t.ljust(w) for t, w, n in zip(texts, widths, numeric)).rstrip()

    rows = [line(headers)]
    rows += [line([cells[c][i] for c in columns]) for i in range(len(table))]
    return "\n".join(rows)


# what the default view is built from, kept even where no run has a value
_ALWAYS = ("run", "name", "state", "start", "duration_s")


def select_runs(args: argparse.Namespace) -> pd.DataFrame:
    """The runs the filters keep, oldest first (or best first with ``--sort``)."""
    from ..runs.registry import list_runs

    table = list_runs(args.runs_dir, status=args.state)
    if args.name:
        table = table[table["name"] == args.name]
    if args.notebook:
        wanted = Path(args.notebook)
        table = table[
            table["notebook"].map(
                lambda nb: Path(nb).name in (wanted.name, f"{wanted.name}.ipynb") or Path(nb) == wanted.resolve()
            )
        ]
    if args.study:
        table = table[table["study"] == args.study] if "study" in table else table.iloc[:0]
    if args.last:
        table = table.tail(args.last)
    if args.sort:  # rank the selected runs
        ranked = list_runs(args.runs_dir, status=args.state, sort=args.sort)
        table = ranked[ranked["run"].isin(table["run"])]
    table = table.reset_index(drop=True)
    return table[[c for c in table.columns if not table[c].isna().all() or c in _ALWAYS]]


def run(args: argparse.Namespace) -> int:
    import sys

    from ..runs.layout import default_runs_root
    from ..runs.registry import scan_runs

    table = select_runs(args)
    print(f"{len(table)} runs in {args.runs_dir or default_runs_root()}")
    if table.empty:
        print("(no runs)")
    elif args.wide:
        print(format_table(with_derived_columns(table).drop(columns=["age", "duration"]), max_width=200))
    else:
        table = with_derived_columns(table)
        hidden = 0
        if args.columns:
            columns = resolve_columns(table, args.columns)
            cells = {c: _cells(table[c], 200) for c in columns}
        else:
            candidates = candidate_columns(table, args.sort, one_notebook=table["notebook"].nunique() == 1)
            columns, cells = fit_columns(table, candidates, shutil.get_terminal_size().columns)
            hidden = len(candidates) - len(columns)
        print(render(table, columns, cells))
        if hidden:
            print(f"({hidden} more columns: --wide, or --columns id,name,COLUMN,...)")
    for bad in scan_runs(args.runs_dir or default_runs_root())[1]:
        print(f"workbench runs: skipped {bad.path}: {bad.reason}", file=sys.stderr)
    return 0
