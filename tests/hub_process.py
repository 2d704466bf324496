"""Start-up and shut-down of the hub processes that end-to-end tests run."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest


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
