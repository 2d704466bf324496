"""One run directory: its files, writing them for the team to read, and reading them without trust.

Layout of ``<runs root>/<owner folder>/<YYYYmmdd-HHMMSS>-<name>-r<6 hex>/``::

    <notebook>.ipynb   executed notebook (outputs up to the error on failure)
    status.json        state (running | succeeded | failed | degraded | pruned), run_id, name, notebook,
                       notebook_sha256 (of the executed notebook kept here), owner (informational),
                       start, end (ISO 8601 UTC), duration_s, error {cell, ename, evalue, kind},
                       sweep (name of the sweep the run belongs to), study and trial (the
                       tuning study and trial number of a trial run), rerun_of, host, pid
    params.json        validated parameter values
    metrics.json       values recorded with workbench.record(name, value)
    env.json           Python, platform, package versions, git commit, CPU/GPU
    inputs.json        path, size and SHA-256 of each declared input file
    artifacts/         files written through workbench.artifact_path(name)
    report.html        self-contained HTML report of the executed notebook
    kernel.log         the kernel process's own log (start-up warnings, crash messages)

Every file is written atomically and readable by the team (:data:`FILE_MODE`, folders
:data:`DIR_MODE`); only the owner can write. A run is finished only when ``status.json`` says so;
``degraded`` means the notebook ran to the end but its report could not be written; ``pruned``
that a tuning trial was stopped early by its pruner (``error`` says at which step).

Records are read through :mod:`workbench.runs.safe_open` (no symlink followed, regular files only,
size capped) and every field's type is checked: a record that fails raises
:class:`InvalidRunError` naming the file and the field.
"""

from __future__ import annotations

import hashlib
import os
import platform
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._io import atomic_write_bytes, atomic_write_json
from .layout import STATES, current_owner, owner_dir, owner_from_dirname
from .safe_open import open_dir, read_at

STATUS_FILE = "status.json"
PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.json"
ENV_FILE = "env.json"
INPUTS_FILE = "inputs.json"
REPORT_FILE = "report.html"
KERNEL_LOG_FILE = "kernel.log"
ARTIFACTS_DIR = "artifacts"

CV_ARTIFACT = "cv"
"""The saved :class:`~workbench.models.CVResult` of a training run, below ``artifacts/``."""
OOF_ARTIFACT = "oof.csv"
"""Out-of-fold predictions with ids and target, below ``artifacts/``."""
TEST_PRED_ARTIFACT = "test_pred.csv"
"""Test predictions with ids, below ``artifacts/``."""
TRAINING_DATA_ARTIFACT = "training_data.parquet"
"""The training features and target, saved beside the CVResult."""

FILE_MODE = 0o644
"""Permission bits of every file a run writes: the owner writes, the team reads."""
DIR_MODE = 0o755
"""Permission bits of owner folders and run directories."""

MAX_NAME_CHARS = 64
"""Longest run name kept in a folder name (the full name stays in ``status.json``)."""
RUN_ID_PREFIX = "r"
"""Run ids start with a letter so that no id reads as a number (``r005115``, never ``5115``)."""

_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class InvalidRunError(ValueError):
    """A run directory whose records are missing, unsafe (symlinked, too large) or malformed."""


def utcnow() -> str:
    """The current time as ISO 8601 UTC with milliseconds (``2025-01-01T12:00:00.000Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def folder_name(name: str) -> str:
    """``name`` as the middle of a run folder name: safe characters only, at most :data:`MAX_NAME_CHARS`."""
    safe = _NAME.sub("-", name).strip("-.")[:MAX_NAME_CHARS].rstrip("-.")
    return safe or "run"


def _make_dir(path: Path) -> None:
    path.mkdir(mode=DIR_MODE)
    os.chmod(path, DIR_MODE)  # mkdir's mode is reduced by the umask


def new_run_dir(runs_root: str | os.PathLike[str], name: str, owner: str | None = None) -> tuple[Path, str]:
    """Create ``<runs_root>/<owner folder>/<timestamp>-<name>-r<6 hex>/`` (never reusing one).

    Parameters
    ----------
    runs_root
        The runs root; created when missing.
    name
        The run name; shortened and made file-system safe for the folder name.
    owner
        Whose folder the run goes in (default: :func:`~workbench.runs.current_owner`).

    Returns
    -------
    tuple of Path and str
        The new run directory (mode 0755) and its run id.
    """
    folder = owner_dir(runs_root, owner or current_owner())
    Path(runs_root).mkdir(parents=True, exist_ok=True)
    if not folder.is_dir():
        try:
            _make_dir(folder)
        except FileExistsError:
            pass
    while True:
        run_id = RUN_ID_PREFIX + secrets.token_hex(3)
        path = folder / f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{folder_name(name)}-{run_id}"
        try:
            _make_dir(path)
        except FileExistsError:
            continue
        return path, run_id


def make_run_subdir(path: str | os.PathLike[str]) -> Path:
    """Create a folder inside a run (e.g. ``artifacts/``) readable by the team."""
    path = Path(path)
    _make_dir(path)
    return path


def write_record(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write a JSON record of a run atomically, readable by the team (:data:`FILE_MODE`)."""
    return atomic_write_json(path, obj, mode=FILE_MODE)


def write_run_file(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write a file of a run atomically, readable by the team (:data:`FILE_MODE`)."""
    return atomic_write_bytes(path, data, mode=FILE_MODE)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


_OPT_STR = (str, type(None))
_NUMBER = (int, float)
_STATUS_TYPES: dict[str, tuple[type, ...]] = {
    "run_id": (str,),
    "name": (str,),
    "notebook": (str,),
    "notebook_sha256": _OPT_STR,
    "owner": _OPT_STR,
    "start": _OPT_STR,
    "end": _OPT_STR,
    "duration_s": (*_NUMBER, type(None)),
    "error": (dict, type(None)),
    "sweep": _OPT_STR,
    "study": _OPT_STR,
    "trial": (int, type(None)),
    "rerun_of": _OPT_STR,
    "host": _OPT_STR,
    "pid": (int, type(None)),
}


def check_status(status: Any) -> dict[str, Any]:
    """``status`` if it is a valid ``status.json`` object, else :class:`InvalidRunError` naming the field.

    Unknown keys are allowed (later versions may add some); known ones must have their type.
    """
    if not isinstance(status, dict):
        raise InvalidRunError(f"{STATUS_FILE} holds a JSON {type(status).__name__}, expected an object")
    if status.get("state") not in STATES:
        raise InvalidRunError(f"{STATUS_FILE}: state is {status.get('state')!r}, expected one of {', '.join(STATES)}")
    for key, types in _STATUS_TYPES.items():
        value = status.get(key)
        if key in status and (not isinstance(value, types) or isinstance(value, bool)):
            expected = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            raise InvalidRunError(
                f"{STATUS_FILE}: {key} is a {type(value).__name__} ({value!r:.40}), expected {expected}"
            )
    return status


def read_record(dir_fd: int, name: str, expect: type = dict, missing: Any = None) -> Any:
    """Parse JSON file ``name`` of the run directory open at ``dir_fd``, of type ``expect``.

    ``missing`` is returned when the file does not exist (``None``: it must exist, else
    :class:`FileNotFoundError`). Symlinks,
    non-regular files, files over :data:`~workbench.runs.MAX_RECORD_BYTES`, invalid JSON and a
    wrong type raise :class:`InvalidRunError`.
    """
    import json

    try:
        data = read_at(dir_fd, name)
    except FileNotFoundError:
        if missing is None:
            raise
        return missing
    except OSError as exc:
        raise InvalidRunError(f"{name}: {exc.strerror or exc}") from None
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidRunError(f"{name} is not valid JSON ({exc})") from None
    if not isinstance(value, expect):
        raise InvalidRunError(
            f"{name} holds a JSON {type(value).__name__}, expected a{'n object' if expect is dict else ' ' + expect.__name__}"
        )
    return value


def process_gone(state: str, pid: int | None, host: str) -> bool:
    """Whether a record marked running was run by a process on this machine that is now gone."""
    if state != "running" or not pid or host != platform.node():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


@dataclass
class RunRecord:
    """What a run directory says about its run; ``owner`` is the folder it lives in."""

    path: Path
    run_id: str
    name: str
    notebook: str
    state: str
    owner: str = ""
    start: str | None = None
    end: str | None = None
    duration_s: float | None = None
    error: dict[str, Any] | None = None
    sweep: str | None = None
    rerun_of: str | None = None
    host: str = ""
    pid: int | None = None
    notebook_sha256: str | None = None
    study: str | None = None
    trial: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def orphaned(self) -> bool:
        """A run still marked running whose process on this machine is gone (killed or crashed)."""
        return process_gone(self.state, self.pid, self.host)

    @property
    def report(self) -> Path | None:
        """``report.html`` of the run when it is a regular file (a symlink is no report)."""
        path = self.path / REPORT_FILE
        return path if path.is_file() and not path.is_symlink() else None

    def write_status(self) -> None:
        """Write ``status.json`` atomically from this record (team-readable)."""
        status = {k: v for k, v in asdict(self).items() if k not in ("path", "params", "metrics")}
        for key in ("study", "trial"):  # only trial runs carry them
            if status[key] is None:
                del status[key]
        write_record(self.path / STATUS_FILE, status)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RunRecord:
        """Read the run directory ``path`` (its owner is the folder holding it).

        Raises
        ------
        FileNotFoundError
            ``path`` holds no ``status.json``.
        InvalidRunError
            A record is unsafe or malformed.
        """
        path = Path(path)
        full = Path(os.path.abspath(path))
        return cls.read_at(full.parent.parent, full.parent.name, full.name, path)

    @classmethod
    def read_at(
        cls, root: str | os.PathLike[str], owner_folder: str, run: str, path: str | os.PathLike[str] | None = None
    ) -> RunRecord:
        """Read run ``<root>/<owner_folder>/<run>``, opening nothing below ``root`` through a symlink.

        ``path`` is what the record's ``path`` says (default: ``<root>/<owner_folder>/<run>``).
        """
        path = Path(path) if path is not None else Path(root) / owner_folder / run
        try:
            with open_dir(root, [owner_folder, run]) as fd:
                try:
                    status = check_status(read_record(fd, STATUS_FILE))
                except FileNotFoundError:
                    raise FileNotFoundError(f"{path} is not a run directory (no {STATUS_FILE})") from None
                params = read_record(fd, PARAMS_FILE, dict, {})
                metrics = read_record(fd, METRICS_FILE, dict, {})
        except FileNotFoundError:
            raise
        except OSError as exc:
            raise InvalidRunError(f"{path}: {exc.strerror or exc}") from None
        return cls(
            path=path,
            run_id=status.get("run_id", ""),
            name=status.get("name", run),
            notebook=status.get("notebook", ""),
            state=status["state"],
            owner=owner_from_dirname(owner_folder) or "",
            start=status.get("start"),
            end=status.get("end"),
            duration_s=status.get("duration_s"),
            error=status.get("error"),
            sweep=status.get("sweep"),
            rerun_of=status.get("rerun_of"),
            host=status.get("host") or "",
            pid=status.get("pid"),
            notebook_sha256=status.get("notebook_sha256"),
            study=status.get("study"),
            trial=status.get("trial"),
            params=params,
            metrics=metrics,
        )

    def read_extra(self, name: str, expect: type = dict, missing: Any = None) -> Any:
        """Another JSON record of this run (``env.json``, ``inputs.json``), read as safely as the status."""
        full = Path(os.path.abspath(self.path))
        try:
            with open_dir(full.parent.parent, [full.parent.name, full.name]) as fd:
                return read_record(fd, name, expect, missing)
        except (InvalidRunError, FileNotFoundError):
            raise
        except OSError as exc:
            raise InvalidRunError(f"{self.path}: {exc.strerror or exc}") from None
