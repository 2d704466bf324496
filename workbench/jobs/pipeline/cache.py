"""Caching by content: a step's key hashes what decides its result, so an unchanged step reuses its run.

The key covers the notebook's bytes, the resolved parameters (defaults included), the upstream runs
it reads and the SHA-256 of every input file outside the runs root. Upstream runs count by their
folder: a re-executed upstream step gives a new folder, so everything downstream runs again.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from ...runs.layout import current_owner, owner_dirname
from ...runs.records import InvalidRunError, RunRecord
from ..inputs import sha256_file
from ..runner import PreparedRun
from .record import DONE, scan_pipeline_runs


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _input_digest(path: Path) -> str:
    if path.is_dir():
        digest = hashlib.sha256()
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(f"{file.relative_to(path)}\0{sha256_file(file)}\n".encode())
        return digest.hexdigest()
    return sha256_file(path) if path.is_file() else "missing"


def cache_key(prepared: PreparedRun, upstream: list[str], runs_root: Path) -> str:
    """The content key of a prepared step run.

    Parameters
    ----------
    prepared : PreparedRun
        The step's validated run (notebook, parameters, inputs).
    upstream : list of str
        The run directories of the steps it depends on.
    runs_root : Path
        The runs root; inputs inside it are upstream runs, identified by their folder.

    Returns
    -------
    str
        A SHA-256 hex digest.
    """
    root = runs_root.resolve()
    inputs = [
        [origin, str(path), None if _inside(path, root) else _input_digest(path)] for origin, path in prepared.inputs
    ]
    payload: dict[str, Any] = {
        "notebook": sha256_file(prepared.spec.path),
        "params": prepared.params,
        "upstream": sorted(upstream),
        "inputs": inputs,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def find_cached(key: str, runs_root: Path, step: str | None = None) -> RunRecord | None:
    """The latest intact successful run with content ``key`` among the caller's pipeline steps.

    Runs of a step called ``step`` come first, so that two steps with the same content keep
    their own runs (and what depends on them stays cached).
    """
    mine = owner_dirname(current_owner())
    runs, _ = scan_pipeline_runs(runs_root)
    candidates = [
        s
        for run in reversed(runs)
        if run.path.parent.name == mine
        for s in run.steps.values()
        if s.cache_key == key and s.state in DONE and s.run
    ]
    candidates.sort(key=lambda s: s.name != step)  # stable: newest first within each kind
    for candidate in candidates:
        found = _intact(Path(candidate.run), runs_root)
        if found is not None:
            return found
    return None


def _intact(path: Path, runs_root: Path) -> RunRecord | None:
    """The run at ``path`` when it lies in the runs root, succeeded and still holds its notebook's hash."""
    if not _inside(path, runs_root.resolve()) or not path.is_dir():
        return None
    try:
        record = RunRecord.read(path)
    except (FileNotFoundError, InvalidRunError, OSError):
        return None
    notebook = record.path / Path(record.notebook).name
    if record.state != "succeeded" or not record.notebook_sha256 or not notebook.is_file() or notebook.is_symlink():
        return None
    if os.path.getsize(notebook) == 0 or sha256_file(notebook) != record.notebook_sha256:
        return None
    return record
