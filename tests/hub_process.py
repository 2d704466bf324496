"""Start-up and shut-down of the hub processes that end-to-end tests and ``benchmarks/bench_hub.py`` run."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from workbench.hub.auth import admin_password_file
from workbench.hub.client import HubSession
from workbench.hub.config import free_port
from workbench.runs import RUNS_ENV

AS_ROOT = os.geteuid() == 0


def wait_until_up(
    proc: subprocess.Popen, log: Path, ready: Callable[[], bool], what: str = "hub", timeout: float = 90.0
) -> None:
    """Poll ``ready`` until it is true; fail with the log's tail if ``proc`` exits or ``timeout`` passes.

    ``ready`` may raise ``OSError`` (``requests`` and ``urllib`` errors included) while nothing listens yet.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            if ready():
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start:\n{log.read_text(errors='replace')[-3000:]}")
        time.sleep(0.3)


def stop_process(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Ask ``proc`` to stop (SIGTERM); kill its whole process group if it has not exited after ``timeout`` s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def hub_command(state: Path, port: int, admin: str, users: Path, options: Sequence[str] = ()) -> list[str]:
    """``workbench hub`` on ``port``; as root every user gets a system account, else ``--shared-account``."""
    cmd = [sys.executable, "-m", "workbench", "hub", "--state-dir", str(state), "--port", str(port)]
    cmd += ["--admin", admin, "--users-dir", str(users), *options]
    return cmd if AS_ROOT else [*cmd, "--shared-account"]


@dataclasses.dataclass
class LocalHub:
    """A running ``workbench hub`` and its admin, logged in with the password the hub created."""

    url: str
    proc: subprocess.Popen
    log: Path
    state: Path
    admin: HubSession


@contextmanager
def local_hub(
    base: Path,
    admin: str,
    options: Sequence[str] = (),
    ready: tuple[str, int] = ("/hub/api/", 200),
    timeout: float = 90.0,
) -> Iterator[LocalHub]:
    """``workbench hub`` on a free port with its state, runs and users below ``base``; stopped on exit.

    ``ready`` is the path that answers with the status once the hub (and the services the test needs)
    is up; the log is ``base/hub.log``.
    """
    url = f"http://127.0.0.1:{(port := free_port())}"
    state, log = base / "state", base / "hub.log"
    cmd = hub_command(state, port, admin, base / "users", options)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            cmd,
            env={**os.environ, RUNS_ENV: str(base / "runs")},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=base,
        )
    try:
        path, status = ready
        wait_until_up(proc, log, lambda: requests.get(url + path, timeout=2).status_code == status, timeout=timeout)
        session = HubSession(url)
        session.login(admin, admin_password_file(state, admin).read_text().strip())  # created at first start
        yield LocalHub(url=url, proc=proc, log=log, state=state, admin=session)
    finally:
        stop_process(proc)
