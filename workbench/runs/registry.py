"""The runs of a runs root: listing them across owner folders, finding one, comparing two.

A runs root holds one folder per owner and the runs below it (``<root>/<owner>/<run>``). The
owner of a run is the folder it lives in. A run whose records are unsafe or malformed never
breaks a listing: :func:`scan_runs` returns it apart, with the reason, and :func:`iter_runs`
leaves it out.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .layout import STATES, current_owner, default_runs_root, owner_dirname, owner_from_dirname
from .pipelines import is_pipeline_folder
from .records import STATUS_FILE, InvalidRunError, RunRecord
from .safe_open import list_dir

if TYPE_CHECKING:
    import pandas as pd

_COLUMNS = ["run", "name", "state", "owner", "start", "duration_s", "notebook"]


@dataclass(frozen=True)
class InvalidRun:
    """A folder in a runs root that could not be read as a run, and why."""

    path: Path
    owner: str
    reason: str


def _order(rec: RunRecord) -> tuple:
    # Folder names carry the start second; status.json the millisecond, which orders runs of one second.
    return (rec.path.name.split("-", 2)[:2], rec.start or "", rec.path.name)


def scan_runs(runs_root: str | os.PathLike[str]) -> tuple[list[RunRecord], list[InvalidRun]]:
    """Every run below ``runs_root`` (oldest first) and, apart, every folder that is not a valid run.

    Parameters
    ----------
    runs_root
        The runs root, holding one folder per owner.

    Returns
    -------
    tuple of list of RunRecord and list of InvalidRun
        The readable runs; the unreadable ones with the reason (a symlinked or oversized record,
        malformed JSON, a field of the wrong type, a run folder that is a symlink). Run folders
        without ``status.json`` yet (a run being created) are in neither.
    """
    root = Path(runs_root)
    if not root.is_dir():
        return [], []
    good: list[RunRecord] = []
    bad: list[InvalidRun] = []
    for folder, is_dir in list_dir(root):
        if not is_dir or folder.startswith("."):
            continue  # the root may hold other files; only plain folders are owners
        owner = owner_from_dirname(folder)
        if owner is None:
            bad.append(InvalidRun(root / folder, "", f"{folder!r} is not an owner folder name"))
            continue
        try:
            entries = list_dir(root, [folder])
        except OSError as exc:
            bad.append(InvalidRun(root / folder, owner, f"cannot list the owner folder: {exc.strerror or exc}"))
            continue
        for run, run_is_dir in entries:
            if run.startswith(".") or is_pipeline_folder(run):
                continue  # a scratch folder of an atomic write, or a pipeline run (see .pipelines)
            if not run_is_dir:
                bad.append(InvalidRun(root / folder / run, owner, "not a plain directory (a symlink or a file)"))
                continue
            try:
                good.append(RunRecord.read_at(root, folder, run))
            except FileNotFoundError:
                continue
            except InvalidRunError as exc:
                bad.append(InvalidRun(root / folder / run, owner, str(exc)))
    return sorted(good, key=_order), bad


def iter_runs(runs_root: str | os.PathLike[str]) -> list[RunRecord]:
    """Every valid run below ``runs_root``, oldest first (invalid ones are left out; see :func:`scan_runs`)."""
    return scan_runs(runs_root)[0]


def list_runs(
    runs_dir: str | os.PathLike[str] | None = None,
    status: str | None = None,
    sort: str | None = None,
    invalid: bool = False,
) -> pd.DataFrame:
    """Runs as a table: one row per run, parameters as ``param.X`` and metrics as ``metric.X`` columns.

    Parameters
    ----------
    runs_dir
        The runs root (default: :func:`~workbench.runs.default_runs_root`).
    status
        Only runs in this state.
    sort
        A metric to rank by, best first (descending; prefix ``-`` for ascending).
    invalid
        Also list folders that are not valid runs, with state ``invalid`` and the ``reason``.

    Returns
    -------
    pandas.DataFrame
        Columns ``run`` (folder name), ``name``, ``state``, ``owner`` (the folder the run lives
        in), ``start``, ``duration_s``, ``notebook``, then parameters and metrics.

    Examples
    --------
    >>> import tempfile
    >>> from workbench.runs import METRICS_FILE, RunRecord, new_run_dir, write_record
    >>> runs, ids = tempfile.mkdtemp(), []
    >>> for auc in (0.84, 0.85):  # two finished runs, as `workbench run` leaves them
    ...     path, run_id = new_run_dir(runs, "train", owner="ana")
    ...     _ = write_record(path / METRICS_FILE, {"cv_auc": auc})
    ...     RunRecord(path=path, run_id=run_id, name="train", notebook="train.ipynb", state="succeeded").write_status()
    ...     ids.append(run_id)
    >>> table = list_runs(runs, status="succeeded", sort="cv_auc")
    >>> print(table[["name", "state", "metric.cv_auc"]].to_string(index=False))
     name     state  metric.cv_auc
    train succeeded           0.85
    train succeeded           0.84
    """
    import pandas as pd

    runs_dir = default_runs_root() if runs_dir is None else runs_dir
    if status is not None and status not in STATES:
        raise ValueError(f"unknown status {status!r}; choose one of {STATES}")
    good, bad = scan_runs(runs_dir)
    rows = []
    for rec in good:
        if status is not None and rec.state != status:
            continue
        row = {
            "run": rec.path.name,
            "name": rec.name,
            "state": rec.state,
            "owner": rec.owner,
            "start": rec.start,
            "duration_s": rec.duration_s,
            "notebook": rec.notebook,
        }
        if rec.study is not None:  # a tuning trial
            row.update({"study": rec.study, "trial": rec.trial})
        row.update({f"param.{k}": v for k, v in rec.params.items()})
        row.update({f"metric.{k}": v for k, v in rec.metrics.items() if not isinstance(v, dict | list)})
        rows.append(row)
    if invalid and status is None:
        rows += [{"run": b.path.name, "state": "invalid", "owner": b.owner, "reason": b.reason} for b in bad]
    table = pd.DataFrame(rows, columns=None if rows else _COLUMNS)
    if sort:
        ascending = sort.startswith("-")
        column = f"metric.{sort.lstrip('-')}"
        if column not in table:
            known = sorted(c.removeprefix("metric.") for c in table.columns if c.startswith("metric."))
            raise ValueError(f"no metric {sort.lstrip('-')!r} in these runs; recorded metrics: {known}")
        table = table.sort_values(column, ascending=ascending, na_position="last", kind="stable")
    return table.reset_index(drop=True)


def _own_first(records: list[RunRecord]) -> list[list[RunRecord]]:
    me = current_owner()
    return [[r for r in records if r.owner == me], records]


def _has_status(path: Path) -> bool:
    try:
        return path.is_dir() and (path / STATUS_FILE).exists()
    except OSError:  # e.g. a name too long to be a path
        return False


def find_run(ref: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None) -> RunRecord:
    """The run ``ref`` names.

    Parameters
    ----------
    ref
        A run directory path; ``<owner folder>/<run folder>`` below ``runs_dir``; a run folder
        name, a run id or a unique prefix of a folder name (searched in every owner's folder;
        more than one match is an error); or a run name: the latest run of that name in the
        caller's own folder (:func:`~workbench.runs.current_owner`), else the latest of anyone's.
    runs_dir
        The runs root (default: :func:`~workbench.runs.default_runs_root`).

    Returns
    -------
    RunRecord
        The run; ``FileNotFoundError`` when none matches, ``ValueError`` when several do,
        :class:`~workbench.runs.InvalidRunError` when the named run's records are invalid.

    Examples
    --------
    >>> import tempfile
    >>> from workbench.runs import METRICS_FILE, RunRecord, new_run_dir, write_record
    >>> runs, ids = tempfile.mkdtemp(), []
    >>> for auc in (0.84, 0.85):  # two finished runs, as `workbench run` leaves them
    ...     path, run_id = new_run_dir(runs, "train", owner="ana")
    ...     _ = write_record(path / METRICS_FILE, {"cv_auc": auc})
    ...     RunRecord(path=path, run_id=run_id, name="train", notebook="train.ipynb", state="succeeded").write_status()
    ...     ids.append(run_id)
    >>> run = find_run(ids[0], runs)
    >>> run.run_id == ids[0], run.state, run.metrics
    (True, 'succeeded', {'cv_auc': 0.84})
    """
    runs = Path(runs_dir) if runs_dir is not None else default_runs_root()
    text = str(ref)
    parts = text.split("/")
    if _has_status(Path(ref)):
        return RunRecord.read(ref)
    if len(parts) == 2 and all(parts) and _has_status(runs / text):
        return RunRecord.read_at(runs, parts[0], parts[1])
    records = iter_runs(runs)
    for matches in (
        [r for r in records if r.path.name == text],
        [r for r in records if r.run_id == text],
        [r for r in records if r.path.name.startswith(text)],
    ):
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(f"{owner_dirname(r.owner)}/{r.path.name}" for r in matches[:5])
            raise ValueError(f"{text!r} matches {len(matches)} runs in {runs} ({names}); give <owner>/<run folder>")
    for group in _own_first(records):
        named = [r for r in group if r.name == text]
        if named:
            return named[-1]
    raise FileNotFoundError(f"no run {text!r} in {runs}; `workbench runs --runs-dir {runs}` lists the runs there")


def compare_runs(a: RunRecord, b: RunRecord, everything: bool = False) -> pd.DataFrame:
    """Parameters and metrics of two runs side by side: only those that differ unless ``everything``.

    Parameters
    ----------
    a, b
        The two runs.
    everything
        Also list the parameters and metrics that are equal.

    Returns
    -------
    pandas.DataFrame
        Columns ``kind`` (param | metric), ``name``, the two run folder names and ``delta``
        (b - a, numbers only).

    Examples
    --------
    >>> import tempfile
    >>> from workbench.runs import METRICS_FILE, RunRecord, new_run_dir, write_record
    >>> runs, ids = tempfile.mkdtemp(), []
    >>> for auc in (0.84, 0.85):  # two finished runs, as `workbench run` leaves them
    ...     path, run_id = new_run_dir(runs, "train", owner="ana")
    ...     _ = write_record(path / METRICS_FILE, {"cv_auc": auc})
    ...     RunRecord(path=path, run_id=run_id, name="train", notebook="train.ipynb", state="succeeded").write_status()
    ...     ids.append(run_id)
    >>> table = compare_runs(find_run(ids[0], runs), find_run(ids[1], runs))
    >>> table[["kind", "name", "delta"]].round(3)
         kind    name  delta
    0  metric  cv_auc   0.01
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
