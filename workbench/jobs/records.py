"""The run directory: one folder per notebook run, and reading runs back.

Layout of ``RUNS_DIR/<YYYYmmdd-HHMMSS>-<name>-<6 hex>/``::

    <notebook>.ipynb   executed notebook (outputs up to the error on failure)
    status.json        state (running | succeeded | failed), run_id, name, notebook, owner,
                       start, end (ISO 8601 UTC), duration_s, error {cell, ename, evalue, kind},
                       sweep (name of the sweep the run belongs to), rerun_of, host, pid
    params.json        validated parameter values
    metrics.json       values recorded with workbench.record(name, value)
    env.json           Python, platform, package versions, git commit, CPU/GPU
    inputs.json        path, size and SHA-256 of each declared input file
    artifacts/         files written through workbench.artifact_path(name)
    report.html        self-contained HTML report of the executed notebook
    kernel.log         the kernel process's own log (start-up warnings, crash messages)

Every file is written atomically; a run is finished only when ``status.json`` says so.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._io import atomic_write_json

if TYPE_CHECKING:
    import pandas as pd

STATES = ("running", "succeeded", "failed")
STATUS_FILE = "status.json"
PARAMS_FILE = "params.json"
METRICS_FILE = "metrics.json"
ENV_FILE = "env.json"
INPUTS_FILE = "inputs.json"
REPORT_FILE = "report.html"
KERNEL_LOG_FILE = "kernel.log"
ARTIFACTS_DIR = "artifacts"
_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


def default_runs_dir() -> Path:
    """``$WORKBENCH_RUNS_DIR`` (the team's shared runs volume) when set, else ``runs``."""
    return Path(os.environ.get("WORKBENCH_RUNS_DIR") or "runs")


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def current_owner() -> str:
    """The hub user when inside JupyterHub, else the login name."""
    return os.environ.get("JUPYTERHUB_USER") or getpass.getuser()


def new_run_dir(runs_dir: str | os.PathLike[str], name: str) -> tuple[Path, str]:
    """Create ``runs_dir/<timestamp>-<name>-<id>/`` (never reusing one); return it and the id."""
    safe = _NAME.sub("-", name).strip("-.") or "run"
    runs = Path(runs_dir)
    runs.mkdir(parents=True, exist_ok=True)
    while True:
        run_id = secrets.token_hex(3)
        path = runs / f"{datetime.now(UTC).strftime('%Y%m%d-%H%M%S')}-{safe}-{run_id}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path, run_id


@dataclass
class RunRecord:
    """What a run directory says about its run."""

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
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def orphaned(self) -> bool:
        """A run still marked running whose process on this machine is gone (killed or crashed)."""
        if self.state != "running" or not self.pid or self.host != platform.node():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    @property
    def report(self) -> Path | None:
        path = self.path / REPORT_FILE
        return path if path.is_file() else None

    def write_status(self) -> None:
        """Write ``status.json`` atomically from this record."""
        status = {k: v for k, v in asdict(self).items() if k not in ("path", "params", "metrics")}
        atomic_write_json(self.path / STATUS_FILE, status)

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> RunRecord:
        """Read a run directory; raises ``FileNotFoundError`` when it holds no ``status.json``."""
        path = Path(path)
        status_file = path / STATUS_FILE
        if not status_file.is_file():
            raise FileNotFoundError(f"{path} is not a run directory (no {STATUS_FILE})")
        status = json.loads(status_file.read_text())
        return cls(
            path=path,
            run_id=status.get("run_id", ""),
            name=status.get("name", path.name),
            notebook=status.get("notebook", ""),
            state=status.get("state", "failed"),
            owner=status.get("owner", ""),
            start=status.get("start"),
            end=status.get("end"),
            duration_s=status.get("duration_s"),
            error=status.get("error"),
            sweep=status.get("sweep"),
            rerun_of=status.get("rerun_of"),
            host=status.get("host", ""),
            pid=status.get("pid"),
            params=_read_json(path / PARAMS_FILE),
            metrics=_read_json(path / METRICS_FILE),
        )


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def iter_runs(runs_dir: str | os.PathLike[str]) -> list[RunRecord]:
    """Every readable run under ``runs_dir``, oldest first (directories without status are skipped)."""
    runs = Path(runs_dir)
    if not runs.is_dir():
        return []
    records = []
    for child in sorted(runs.iterdir()):
        if child.is_dir() and not child.name.startswith(".") and (child / STATUS_FILE).is_file():
            records.append(RunRecord.read(child))
    # Folder names carry the start second; status.json the millisecond, which orders runs of one second.
    return sorted(records, key=lambda r: (r.path.name.split("-", 2)[:2], r.start or "", r.path.name))


def list_runs(runs_dir: str | os.PathLike[str] | None = None, status: str | None = None, sort: str | None = None) -> pd.DataFrame:
    """Runs as a table: one row per run, parameters as ``param.X`` and metrics as ``metric.X`` columns.

    ``runs_dir`` defaults to :func:`default_runs_dir`. ``sort`` names a metric (best first:
    descending; prefix ``-`` for ascending).

    >>> list_runs("runs", status="succeeded", sort="cv_auc").head()
    """
    import pandas as pd

    runs_dir = default_runs_dir() if runs_dir is None else runs_dir
    if status is not None and status not in STATES:
        raise ValueError(f"unknown status {status!r}; choose one of {STATES}")
    rows = []
    for rec in iter_runs(runs_dir):
        if status is not None and rec.state != status:
            continue
        row = {"run": rec.path.name, "name": rec.name, "state": rec.state, "owner": rec.owner,
               "start": rec.start, "duration_s": rec.duration_s, "notebook": rec.notebook}  # fmt: skip
        row.update({f"param.{k}": v for k, v in rec.params.items()})
        row.update({f"metric.{k}": v for k, v in rec.metrics.items() if not isinstance(v, dict | list)})
        rows.append(row)
    table = pd.DataFrame(rows, columns=None if rows else ["run", "name", "state", "owner", "start", "duration_s", "notebook"])
    if sort:
        ascending = sort.startswith("-")
        column = f"metric.{sort.lstrip('-')}"
        if column not in table:
            known = sorted(c.removeprefix("metric.") for c in table.columns if c.startswith("metric."))
            raise ValueError(f"no metric {sort.lstrip('-')!r} in these runs; recorded metrics: {known}")
        table = table.sort_values(column, ascending=ascending, na_position="last", kind="stable")
    return table.reset_index(drop=True)


def find_run(ref: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None) -> RunRecord:
    """The run ``ref`` names: a run directory path, a folder name in ``runs_dir``, a run id, a
    unique prefix of a folder name, or a run name (its latest run).

    >>> find_run("1a2b3c").path
    """
    path = Path(ref)
    if (path / STATUS_FILE).is_file():
        return RunRecord.read(path)
    runs = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    text = str(ref)
    if (runs / text / STATUS_FILE).is_file():
        return RunRecord.read(runs / text)
    records = iter_runs(runs)
    for matches in (
        [r for r in records if r.run_id == text],
        [r for r in records if r.path.name.startswith(text)],
        [r for r in records if r.name == text][-1:],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(r.path.name for r in matches[:5])
            raise ValueError(f"{text!r} matches {len(matches)} runs in {runs} ({names}); give the full folder name")
    raise FileNotFoundError(f"no run {text!r} in {runs}; `workbench runs --runs-dir {runs}` lists the runs there")


def compare_runs(a: RunRecord, b: RunRecord, everything: bool = False) -> pd.DataFrame:
    """Parameters and metrics of two runs side by side: only those that differ unless ``everything``.

    Columns ``kind`` (param | metric), ``name``, the two run folder names and ``delta`` (b - a,
    numbers only).

    >>> compare_runs(find_run("1a2b3c"), find_run("4d5e6f"))
    """
    import pandas as pd

    rows = []
    for kind, left, right in (("param", a.params, b.params), ("metric", a.metrics, b.metrics)):
        for key in dict.fromkeys([*left, *right]):
            va, vb = left.get(key), right.get(key)
            same = key in left and key in right and json.dumps(va, sort_keys=True) == json.dumps(vb, sort_keys=True)
            if same and not everything:
                continue
            numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (va, vb))
            rows.append({"kind": kind, "name": key, "a": va, "b": vb, "delta": vb - va if numeric else None})
    table = pd.DataFrame(rows, columns=["kind", "name", "a", "b", "delta"])
    return table.rename(columns={"a": a.path.name, "b": b.path.name}) if a.path.name != b.path.name else table
