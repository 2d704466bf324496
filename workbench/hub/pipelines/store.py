"""Users' schedules on disk: one JSON file per schedule, one folder per user, in the service's private state.

``<root>/<owner folder>/<name>.json`` (owner folders from :func:`~workbench.runs.layout.owner_dirname`,
so two users never share one); the root and every folder are 0700 and owned by the service, files
0600 and written atomically. Names are checked before they touch a path, request bodies are
checked field by field (:func:`parse_schedule`), and each user holds at most
:data:`~workbench.hub.pipelines.MAX_SCHEDULES` schedules.
"""

from __future__ import annotations

import json
import os
import re
import stat
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ..._io import atomic_write_json
from ...runs.layout import owner_dirname
from . import MAX_SCHEDULES
from .calendar import check_cron

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MAX_BODY_BYTES = 64 * 1024
MAX_FILE_BYTES = 256 * 1024
FIELDS = {"cron", "notebook", "pipeline", "parameters", "profile", "enabled", "description"}


class ScheduleError(ValueError):
    """A schedule request that cannot be stored; ``status`` is the HTTP answer it deserves."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def check_name(name: str) -> str:
    """``name`` if it is a valid schedule name, else :class:`ScheduleError`.

    Examples
    --------
    >>> check_name("nightly-train")
    'nightly-train'
    >>> check_name("../x")
    Traceback (most recent call last):
    ...
    workbench.hub.pipelines.store.ScheduleError: schedule name '../x' is not allowed: use 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit
    """
    if not isinstance(name, str) or not NAME.fullmatch(name) or name.endswith(".json"):
        raise ScheduleError(
            f"schedule name {name!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def home_relative(path: Any, field: str) -> str:
    """``path`` as a clean relative POSIX path (no ``..``, not absolute), else :class:`ScheduleError`."""
    if not isinstance(path, str) or not path.strip() or "\x00" in path:
        raise ScheduleError(f"{field} must be a path relative to your home, e.g. 'work/train.ipynb'")
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or path.startswith("~"):
        raise ScheduleError(
            f"{field} {path!r} is outside your home: give a path relative to your home without '..' "
            "(e.g. 'work/train.ipynb')"
        )
    return str(pure)


def parse_schedule(body: Any) -> dict[str, Any]:
    """The schedule fields of a request body, each checked; :class:`ScheduleError` names the first bad one.

    Examples
    --------
    >>> parse_schedule({"cron": "0 6 * * *", "notebook": "work/train.ipynb"})["parameters"]
    {}
    >>> parse_schedule({"cron": "0 6 * * *", "notebook": "/etc/passwd"})
    Traceback (most recent call last):
    ...
    workbench.hub.pipelines.store.ScheduleError: notebook '/etc/passwd' is outside your home: give a path relative to your home without '..' (e.g. 'work/train.ipynb')
    """
    if not isinstance(body, dict):
        raise ScheduleError('the body must be a JSON object, e.g. {"cron": "0 6 * * *", "notebook": "train.ipynb"}')
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        raise ScheduleError(f"unknown field(s) {', '.join(unknown)}; a schedule has {', '.join(sorted(FIELDS))}")
    try:
        cron = check_cron(body.get("cron"))
    except ValueError as exc:
        raise ScheduleError(str(exc)) from None
    targets = [k for k in ("notebook", "pipeline") if body.get(k) is not None]
    if len(targets) != 1:
        raise ScheduleError("give exactly one of notebook (a .ipynb) or pipeline (a pipeline file) of your home")
    target = targets[0]
    path = home_relative(body[target], target)
    if target == "notebook" and not path.endswith(".ipynb"):
        raise ScheduleError(f"notebook {path!r} is not a notebook (.ipynb)")
    params = body.get("parameters") or {}
    if not isinstance(params, dict) or not all(isinstance(k, str) and k for k in params):
        raise ScheduleError('parameters must be an object of names to values, e.g. {"n_estimators": 300}')
    profile = body.get("profile")
    if profile is not None and not (isinstance(profile, str) and NAME.fullmatch(profile)):
        raise ScheduleError(f"profile {profile!r} is not a profile name")
    enabled = body.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ScheduleError("enabled must be true or false")
    description = body.get("description") or ""
    if not isinstance(description, str) or len(description) > 1000:
        raise ScheduleError("description must be a text of at most 1000 characters")
    return {
        "cron": cron,
        target: path,
        "parameters": params,
        "profile": profile,
        "enabled": enabled,
        "description": description,
    }


class ScheduleStore:
    """The schedules of every user below ``root`` (private to the service).

    Examples
    --------
    >>> import tempfile
    >>> store = ScheduleStore(tempfile.mkdtemp())
    >>> saved, created = store.put("ana", "nightly", {"cron": "0 6 * * *", "notebook": "train.ipynb"})
    >>> created, [s["name"] for s in store.list("ana")]
    (True, ['nightly'])
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)

    def _dir(self, user: str) -> Path:
        return self.root / owner_dirname(user)

    def _file(self, user: str, name: str) -> Path:
        return self._dir(user) / f"{check_name(name)}.json"

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, OSError):
            return None
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
            data = fh.read(MAX_FILE_BYTES + 1)
        try:
            record = json.loads(data) if len(data) <= MAX_FILE_BYTES else None
        except ValueError:
            return None
        return record if isinstance(record, dict) else None

    def get(self, user: str, name: str) -> dict[str, Any] | None:
        """User ``user``'s schedule ``name``; ``None`` when there is none."""
        record = self._read(self._file(user, name))
        return record if record and record.get("user") == user and record.get("name") == name else None

    def list(self, user: str | None = None) -> list[dict[str, Any]]:
        """The schedules of ``user`` (everyone's when ``None``), by user and name."""
        folders = [self._dir(user)] if user is not None else sorted(p for p in self.root.iterdir() if p.is_dir())
        found = []
        for folder in folders:
            if not folder.is_dir() or folder.is_symlink():
                continue
            for path in sorted(folder.glob("*.json")):
                record = self._read(path)
                if record and owner_dirname(str(record.get("user") or "?")) == folder.name:
                    found.append(record)
        return found

    def put(self, user: str, name: str, body: Any) -> tuple[dict[str, Any], bool]:
        """Check ``body`` and store it as ``user``'s schedule ``name``; ``(record, created)``."""
        path = self._file(user, name)
        fields = parse_schedule(body)
        old = self.get(user, name)
        if old is None and len(self.list(user)) >= MAX_SCHEDULES:
            raise ScheduleError(f"you already hold {MAX_SCHEDULES} schedules; delete one first", status=409)
        now = datetime.now(UTC).isoformat(timespec="seconds")
        record = {"user": user, "name": name, **fields, "created": (old or {}).get("created", now), "updated": now}
        if len(json.dumps(record)) > MAX_FILE_BYTES:
            raise ScheduleError(f"the schedule is larger than {MAX_FILE_BYTES // 1024} KiB")
        path.parent.mkdir(mode=0o700, exist_ok=True)
        atomic_write_json(path, record, mode=0o600)
        return record, old is None

    def delete(self, user: str, name: str) -> bool:
        """Remove ``user``'s schedule ``name``; whether there was one."""
        path = self._file(user, name)
        if self.get(user, name) is None:
            return False
        path.unlink(missing_ok=True)
        return True
