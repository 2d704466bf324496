"""Processes that die with the hub: the proxy and the hub services never outlive it.

Each is started through the launcher (``python -m workbench.hub.launch``, built by :func:`launcher`), which

1. asks the kernel to send it ``SIGTERM`` when its parent dies (``PR_SET_PDEATHSIG``; it survives
   the ``exec`` below, so it covers a hub killed by ``SIGKILL`` or the OOM killer), and exits at once
   if the hub is already gone;
2. records itself in the state directory (``<state>/processes/<name>.json``: pid, start time,
   command, and the hub's pid and start time);
3. replaces itself with the real command (same pid).

On the next start, :func:`reclaim` stops whatever a dead hub left behind (checking that a recorded
pid is still the recorded process, by its start time, before signalling it), and refuses to start
a second hub on a state directory whose hub is still alive. :func:`stop_started_by` stops the
processes of this hub, for a start-up interrupted by a signal.

Single-user servers are not started through it: whether they outlive the hub is JupyterHub's
``cleanup_servers`` setting.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

PROCESSES_DIR = "processes"


class HubStillRunning(RuntimeError):
    """Another hub is running on this state directory."""


def process_start(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot, from ``/proc``); ``None`` if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # the command name (field 2) may hold spaces and parentheses: fields after the last ')' are fixed
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is as good as gone
        return None
    return int(fields[19])


def is_alive(pid: int, start: int | None) -> bool:
    """Whether ``pid`` is still the process that started at ``start`` (not a reused pid)."""
    return start is not None and process_start(pid) == start


def launcher(
    command: list[str], *, name: str, records: str | os.PathLike[str] | None = None, parent: int | None = None
) -> list[str]:
    """``command`` wrapped in the launcher, tied to ``parent`` (default: this process, the hub).

    Parameters
    ----------
    command
        The real command; the launcher ``exec``\\ s it, so its pid is the launcher's.
    name
        A name for its record, e.g. ``proxy`` or ``culler``.
    records
        The directory for records (``<state>/processes``); ``None`` records nothing.
    parent
        The pid whose death stops the process.

    Returns
    -------
    list[str]
        The command line to start instead of ``command``.
    """
    parent = os.getpid() if parent is None else parent
    wrapped = [sys.executable, "-m", "workbench.hub.launch", "--parent", str(parent), "--name", name]
    if records is not None:
        wrapped += ["--records", str(records)]
    return [*wrapped, "--", *command]


def _records(directory: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(path.read_text())
            found.append((path, {k: int(record[k]) for k in ("pid", "start", "parent", "parent_start")}))
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing can be verified from it
    return found


def _stop(pid: int, start: int, timeout: float) -> None:
    """``SIGTERM``, then ``SIGKILL`` after ``timeout`` seconds; only while ``pid`` is still that process."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 2.0)):
        if not is_alive(pid, start):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and is_alive(pid, start):
            time.sleep(0.05)


def reclaim(directory: str | os.PathLike[str], timeout: float = 5.0) -> list[int]:
    """Stop the processes a dead hub left behind; returns their pids.

    Raises
    ------
    HubStillRunning
        When a recorded process belongs to a hub that is still alive (it is left alone).
    """
    stopped = []
    for path, record in _records(Path(directory)):
        if record["parent"] != os.getpid() and is_alive(record["parent"], record["parent_start"]):
            if is_alive(record["pid"], record["start"]):
                raise HubStillRunning(
                    f"a hub (pid {record['parent']}) is still running on this state directory; "
                    f"stop it first (kill {record['parent']})"
                )
        elif is_alive(record["pid"], record["start"]):
            _stop(record["pid"], record["start"], timeout)
            stopped.append(record["pid"])
        if not is_alive(record["pid"], record["start"]):
            path.unlink(missing_ok=True)
    return stopped


def stop_started_by(directory: str | os.PathLike[str], parent: int | None = None, timeout: float = 5.0) -> list[int]:
    """Stop the recorded processes of hub ``parent`` (default: this process); returns their pids."""
    parent = os.getpid() if parent is None else parent
    stopped = []
    for path, record in _records(Path(directory)):
        if record["parent"] != parent:
            continue
        if is_alive(record["pid"], record["start"]):
            _stop(record["pid"], record["start"], timeout)
            stopped.append(record["pid"])
        path.unlink(missing_ok=True)
    return stopped


def forget_stale_pid_file(path: str | os.PathLike[str], expect: str) -> None:
    """Remove a pid file unless it names a live process whose command line mentions ``expect``.

    JupyterHub signals the pid in ``ConfigurableHTTPProxy.pid_file`` on start; after a crash that pid
    may belong to an unrelated process by now.
    """
    path = Path(path)
    try:
        pid = int(path.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, ValueError):
        path.unlink(missing_ok=True)
        return
    if expect not in cmdline:
        path.unlink(missing_ok=True)
