"""Pipeline run folders: beside the runs in an owner's folder, told apart by their name.

A pipeline run lives at ``<runs root>/<owner folder>/<YYYYmmdd-HHMMSS>-<name>-p<6 hex>/`` and holds
``pipeline.json`` (the DAG, each step's state and run, who started it) and ``report.html``. The
``p`` before the id (runs have ``r``) lets the run registry skip these folders without reading
them; they are read here, through :mod:`~workbench.runs.safe_open` like every run record.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .layout import current_owner, owner_dir, owner_from_dirname
from .records import DIR_MODE, folder_name
from .safe_open import MAX_RECORD_BYTES, list_dir, read_json

PIPELINE_FILE = "pipeline.json"
"""The record of a pipeline run: definition, DAG, step states and runs, trigger."""
PIPELINE_ID_PREFIX = "p"
"""Pipeline run ids start with ``p`` (run ids with ``r``)."""

_FOLDER = re.compile(r"^\d{8}-\d{6}-.+-p[0-9a-f]{6}$")


def is_pipeline_folder(name: str) -> bool:
    """True for the folder name of a pipeline run.

    >>> is_pipeline_folder("20250101-120000-telco-stack-p1a2b3c"), is_pipeline_folder("20250101-120000-train-r1a2b3c")
    (True, False)
    """
    return bool(_FOLDER.match(name))


def new_pipeline_dir(runs_root: str | os.PathLike[str], name: str, owner: str | None = None) -> tuple[Path, str]:
    """Create a fresh pipeline run folder in ``owner``'s folder; return it and its id."""
    folder = owner_dir(runs_root, owner or current_owner())
    folder.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    while True:
        run_id = PIPELINE_ID_PREFIX + secrets.token_hex(3)
        path = folder / f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{folder_name(name)}-{run_id}"
        try:
            path.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue
        os.chmod(path, DIR_MODE)
        return path, run_id


def read_pipeline_record(root: str | os.PathLike[str], owner_folder: str, folder: str) -> dict[str, Any]:
    """``pipeline.json`` of ``<root>/<owner_folder>/<folder>``, no symlink followed, at most 1 MiB.

    Raises
    ------
    FileNotFoundError
        No ``pipeline.json`` (a pipeline run being created).
    ValueError
        The record is a symlink, too large, not a regular file, or not a JSON object.
    """
    try:
        return read_json(root, [owner_folder, folder, PIPELINE_FILE], dict, MAX_RECORD_BYTES)
    except FileNotFoundError:
        raise
    except OSError as exc:  # UnsafePathError and friends
        raise ValueError(f"{folder}/{PIPELINE_FILE}: {exc.strerror or exc}") from None


def scan_pipelines(
    runs_root: str | os.PathLike[str],
) -> tuple[list[tuple[Path, str, dict[str, Any]]], list[tuple[Path, str]]]:
    """Every pipeline run below ``runs_root`` as ``(path, owner, record)``, oldest first; apart, the unreadable ones with why."""
    root = Path(runs_root)
    good: list[tuple[Path, str, dict[str, Any]]] = []
    bad: list[tuple[Path, str]] = []
    if not root.is_dir():
        return good, bad
    for owner_folder, is_dir in list_dir(root):
        owner = owner_from_dirname(owner_folder) if is_dir and not owner_folder.startswith(".") else None
        if owner is None:
            continue
        try:
            entries = list_dir(root, [owner_folder])
        except OSError:
            continue
        for name, entry_is_dir in entries:
            if not is_pipeline_folder(name):
                continue
            path = root / owner_folder / name
            if not entry_is_dir:
                bad.append((path, "not a plain directory (a symlink or a file)"))
                continue
            try:
                good.append((path, owner, read_pipeline_record(root, owner_folder, name)))
            except FileNotFoundError:
                continue
            except ValueError as exc:
                bad.append((path, str(exc)))
    return sorted(good, key=lambda item: item[0].name), bad
