"""A directory of out-of-fold results keyed by fingerprint, written atomically.

Layout: ``<cache_dir>/<key>/entry.json`` (what the entry is) and ``<cache_dir>/<key>/cv/`` (a
:meth:`CVResult.save` directory). Each entry is written into a scratch directory and renamed into
place in one step, so a process killed mid-write leaves only a hidden ``.<key>.*.tmp`` scratch
directory, which is never read (:meth:`OOFCache.clean` removes such leftovers).
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .._io import atomic_directory
from .._version import __version__
from ..models import CVResult

_ENTRY = "entry.json"


@dataclass
class CacheEntry:
    """A cached result: its key, its description (``entry.json``) and the result itself."""

    key: str
    path: Path
    info: dict[str, Any]
    result: CVResult

    def load_models(self) -> CVResult:
        """The same result with its fold models read from disk (for predictions on new data)."""
        return CVResult.load(self.path / "cv")


class OOFCache:
    """Out-of-fold :class:`~workbench.models.CVResult` entries under ``path``, one per fingerprint.

    Examples
    --------
    >>> import tempfile
    >>> cache = OOFCache(tempfile.mkdtemp())
    >>> cache.entries().columns.tolist()  # one row per cached model
    ['key', 'name', 'level', 'estimator', 'metric', 'score', 'created']
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise ValueError(f"cache_dir {self.path} exists and is not a directory; choose a directory path")

    def __repr__(self) -> str:
        return f"OOFCache({str(self.path)!r})"

    def _dir(self, key: str) -> Path:
        if not key or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"cache keys are lowercase hex digests, got {key!r}")
        return self.path / key

    def __contains__(self, key: str) -> bool:
        return (self._dir(key) / _ENTRY).is_file()

    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key`` without its fold models, or ``None`` when absent or unreadable."""
        folder = self._dir(key)
        info_file = folder / _ENTRY
        if not info_file.is_file():
            return None
        try:
            info = json.loads(info_file.read_text())
            result = CVResult.load(folder / "cv", models=False)
        except Exception as exc:  # a damaged entry is a miss, never a crash or a wrong answer
            warnings.warn(
                f"ignoring unreadable stacking cache entry {folder} ({exc}); it will be recomputed",
                RuntimeWarning,
                stacklevel=2,
            )
            return None
        return CacheEntry(key=key, path=folder, info=info, result=result)

    def put(self, key: str, result: CVResult, info: dict[str, Any] | None = None) -> Path:
        """Store ``result`` (with its fold models) under ``key`` atomically, replacing any old entry."""
        folder = self._dir(key)
        meta = {
            "key": key,
            "workbench_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "estimator": result.estimator,
            "metric": result.metric,
            "score": result.score,
            **(info or {}),
        }
        with atomic_directory(folder) as tmp:
            result.save(tmp / "cv")
            (tmp / _ENTRY).write_text(json.dumps(meta, indent=2, default=str) + "\n")
        return folder

    def keys(self) -> list[str]:
        """Keys of the complete entries, sorted."""
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if not p.name.startswith(".") and (p / _ENTRY).is_file())

    def entries(self) -> pd.DataFrame:
        """One row per complete entry: key, name, level, estimator, metric, score, created."""
        rows = []
        for key in self.keys():
            try:
                rows.append(json.loads((self.path / key / _ENTRY).read_text()))
            except (OSError, ValueError):
                continue
        columns = ["key", "name", "level", "estimator", "metric", "score", "created"]
        table = pd.DataFrame(rows)
        return table.reindex(columns=[*columns, *[c for c in table.columns if c not in columns]])

    def clean(self) -> list[Path]:
        """Remove scratch directories left by interrupted writes; run it while no stack is writing here."""
        if not self.path.is_dir():
            return []
        removed = []
        for p in self.path.iterdir():
            if p.name.startswith(".") and p.is_dir() and (p.name.endswith(".tmp") or p.name.endswith(".old")):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p)
        return removed


class BackgroundWriter:
    """Stores entries on one background thread, so writing a model overlaps training the next one.

    Each entry is still written atomically; :meth:`close` waits for every pending write and turns
    a failed one into a warning (the model was trained, it is just not cached). Used as a context
    manager, pending writes also finish when the block is left by an error or Ctrl-C.
    """

    def __init__(self, cache: OOFCache) -> None:
        self.cache = cache
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-stack-cache")
        self._pending: list[tuple[str, Future[Path]]] = []

    def put(self, label: str, key: str, result: CVResult, info: dict[str, Any] | None = None) -> None:
        """Queue ``result`` for storage under ``key``; ``label`` names it in a failure warning."""
        self._pending.append((label, self._pool.submit(self.cache.put, key, result, info)))

    def close(self) -> None:
        """Wait for all queued writes; warn about each that failed."""
        self._pool.shutdown(wait=True)
        for label, future in self._pending:
            exc = future.exception()
            if exc is not None:
                warnings.warn(
                    f"{label} was trained but could not be cached ({exc!r}); it will be trained again next run",
                    RuntimeWarning,
                    stacklevel=3,
                )
        self._pending.clear()

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["BackgroundWriter", "CacheEntry", "OOFCache"]
