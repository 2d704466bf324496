"""Where a study lives, and keeping it healthy when workers die.

A study's home is ``<runs root>/<owner folder>/study-<name>/``: its journal file (the embedded
Optuna storage, :data:`JOURNAL_FILE`, unless ``--storage`` names a database), its
``status.json`` and ``report.html`` (so the study is listed with the runs). Workers write a
heartbeat into each running trial; a running trial whose heartbeat is older than the grace
period belongs to a dead worker and is marked failed, so it never blocks the study.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...models.trial import trial_id
from ...runs.layout import current_owner, owner_dir

JOURNAL_FILE = "study.journal"
STUDY_PREFIX = "study-"
HEARTBEAT_ATTR = "workbench:heartbeat"
SURPLUS_ATTR = "workbench:surplus"
_STUDY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_study_name(name: str) -> str:
    """``name`` when it is 1-64 letters, digits, ``_.-`` (starting with a letter or digit), else ``ValueError``."""
    if not isinstance(name, str) or not _STUDY_NAME.match(name):
        raise ValueError(
            f"study name {name!r} must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def study_dir(runs_root: Path, name: str, owner: str | None = None) -> Path:
    """``<runs_root>/<owner folder>/study-<name>/`` (not created)."""
    return owner_dir(runs_root, owner or current_owner()) / f"{STUDY_PREFIX}{check_study_name(name)}"


def default_storage(runs_root: Path, name: str) -> str:
    """The journal file of study ``name`` in the caller's own folder of ``runs_root``."""
    return str((study_dir(Path(runs_root), name) / JOURNAL_FILE).resolve())


@contextlib.contextmanager
def heartbeat(storage: Any, tid: int, interval: float) -> Iterator[None]:
    """Record a heartbeat on trial ``tid`` every ``interval`` seconds while the block runs."""
    stop = threading.Event()

    def beat() -> None:
        while True:
            with contextlib.suppress(Exception):  # a finished trial or a storage hiccup: the next beat retries
                storage.set_trial_system_attr(tid, HEARTBEAT_ATTR, time.time())
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="workbench-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def fail_stale(study: Any, storage: Any, grace_period: float) -> list[int]:
    """Mark failed the running trials whose last heartbeat (or start) is older than ``grace_period`` s.

    Returns the numbers of the trials failed here (another worker may fail some first).
    """
    import optuna
    from optuna.trial import TrialState

    now = time.time()
    failed = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        last = trial.system_attrs.get(HEARTBEAT_ATTR)
        if not isinstance(last, int | float):
            last = trial.datetime_start.timestamp() if trial.datetime_start else now
        if now - last <= grace_period:
            continue
        tid = trial_id(storage, study.study_name, trial.number)
        try:
            storage.set_trial_system_attr(tid, "workbench:fail_reason", "its worker stopped sending heartbeats")
            if storage.set_trial_state_values(tid, state=TrialState.FAIL):
                failed.append(trial.number)
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            pass  # finished meanwhile, or failed by another worker
    return failed


def counts(study: Any) -> dict[str, int]:
    """Trials by state (``complete``, ``pruned``, ``running``, ``fail``, ...), surplus trials left out."""
    out: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        if trial.system_attrs.get(SURPLUS_ATTR):
            continue
        out[trial.state.name.lower()] = out.get(trial.state.name.lower(), 0) + 1
    return out


def is_surplus(study: Any, number: int, target: int) -> bool:
    """True when trials numbered below ``number`` (not failed) already reach ``target``: two workers
    asked for the last trial at once, and this one is one too many."""
    from optuna.trial import TrialState

    before = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.number < number and t.state != TrialState.FAIL and not t.system_attrs.get(SURPLUS_ATTR)
    ]
    return len(before) >= target
