"""Arguments and output shared by the commands: the same flag means the same thing on every command."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runs.layout import RUNS_ENV

if TYPE_CHECKING:
    from ..jobs.params import NotebookSpec

RUNS_DIR_HELP = f"runs root; runs go to its <owner>/ folder (default: ${RUNS_ENV}, else ./runs)"


def add_runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", type=Path, default=None, help=RUNS_DIR_HELP)


def add_params(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    value_help = (
        "comma-separated values to sweep (YAML for lists: [1, 2])" if sweep else "a value, coerced to the declared type"
    )
    p.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help=f"set a notebook parameter: {value_help}; repeatable",
    )
    p.add_argument(
        "-f",
        "--parameters-file",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help="YAML file of name: value" + (" (a list of values sweeps them)" if sweep else "") + "; repeatable",
    )


def add_notify(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--notify",
        metavar="URL",
        default=None,
        help="Slack-compatible webhook to post to when done (default: $WORKBENCH_NOTIFY_URL)",
    )


def add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_output(p: argparse.ArgumentParser, what: str, default: str = "print") -> None:
    p.add_argument("-o", "--output", type=Path, default=None, help=f"{what} (default: {default})")


def read_parameter_files(files: list[Path]) -> dict[str, Any]:
    """Merge YAML parameter files (later files win); each must be a mapping. Values stay as written
    (see :class:`workbench.jobs.params.YamlValue`) until the notebook's types are known."""
    from ..jobs.params import load_parameters_file

    merged: dict[str, Any] = {}
    for file in files:
        merged.update(load_parameters_file(file))
    return merged


def text_parameters(pairs: list[list[str]]) -> dict[str, str]:
    return {name: value for name, value in pairs}


def cell_text(value: Any) -> Any:
    """A table cell: floats to six significant digits, missing values empty."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.6g}"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return value


def format_table(table: Any, max_width: int = 60) -> str:
    """A DataFrame as aligned text: short floats, empty cells for missing values, long text cut."""
    if table.empty:
        return "(no runs)"
    shown = table.copy()
    shown.columns = [str(c) for c in shown.columns]
    for col in shown.columns:
        shown[col] = (
            shown[col]
            .map(cell_text)
            .map(lambda v: v if not isinstance(v, str) or len(v) <= max_width else v[: max_width - 1] + "…")
        )
    return shown.to_string(index=False)


def display_path(path: Path) -> str:
    """``path`` relative to the current directory when it is below it, else absolute."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(Path(path).resolve())


def parameters_text(spec: NotebookSpec) -> str:
    """A notebook's parameters as aligned text: name, type, default and the comment that documents it."""
    if not spec.has_parameters_cell:
        return "(no cell tagged 'parameters': the notebook takes no parameters)"
    if not spec.parameters:
        return "(the parameters cell assigns nothing)"
    rows = [("NAME", "TYPE", "DEFAULT", "DESCRIPTION")]
    for p in spec.parameters.values():
        default = repr(p.default) if p.has_default else (f"= {p.source}" if p.source else "(required)")
        rows.append((p.name, str(p.type), default, p.help))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        ("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3]).rstrip() for row in rows
    )
