"""Input files of a run: the ``Path`` parameters and the notebook's ``workbench.inputs`` metadata.

They are checked before a kernel starts (a missing file stops the run with a clear message) and
recorded with size and SHA-256 in ``inputs.json``, so a rerun can tell whether its inputs changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .params import NotebookSpec

_CHUNK = 1 << 20


def declared_inputs(spec: NotebookSpec, values: Mapping[str, Any]) -> list[tuple[str, Path]]:
    """``(origin, absolute path)`` of every input: ``Path`` parameters, then metadata entries."""
    out: list[tuple[str, Path]] = []
    for name, param in spec.parameters.items():
        value = values.get(name)
        if param.type.is_path and value is not None:
            out.append((f"parameter {name}", Path(value)))
    for entry in spec.inputs:
        path = Path(entry).expanduser()
        out.append(
            ("notebook metadata workbench.inputs", path if path.is_absolute() else (spec.workdir / path).resolve())
        )
    return out


def check_inputs(inputs: list[tuple[str, Path]]) -> None:
    """Raise ``ValueError`` listing every declared input that does not exist."""
    missing = [(origin, path) for origin, path in inputs if not path.exists()]
    if not missing:
        return
    lines = []
    for origin, path in missing:
        fix = (
            f"pass an existing file with -p {origin.split()[-1]} PATH"
            if origin.startswith("parameter ")
            else "create it or fix the path in the notebook metadata"
        )
        lines.append(f"{path} ({origin}): {fix}")
    raise ValueError(f"input file{'s' if len(lines) > 1 else ''} not found: " + "; ".join(lines))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_inputs(inputs: list[tuple[str, Path]]) -> list[dict[str, Any]]:
    """Path, size and SHA-256 of each input file; a folder contributes every file under it."""
    rows: list[dict[str, Any]] = []
    for origin, path in inputs:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            rows.append({"path": str(file), "size": file.stat().st_size, "sha256": sha256_file(file), "origin": origin})
    return rows


def changed_inputs(recorded: list[dict[str, Any]]) -> list[str]:
    """Which recorded inputs are now missing or hold other bytes (one line each)."""
    changes = []
    for row in recorded:
        path = Path(row["path"])
        if not path.is_file():
            changes.append(f"{path} is missing")
        elif path.stat().st_size != row["size"] or sha256_file(path) != row["sha256"]:
            changes.append(f"{path} changed (sha256 {row['sha256'][:12]}… → {sha256_file(path)[:12]}…)")
    return changes
