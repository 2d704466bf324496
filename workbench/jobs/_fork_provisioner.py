"""Kernels forked from a fork server (:mod:`._forkserver`), plugged into jupyter_client.

:class:`ForkingKernelManager` is an ``AsyncKernelManager`` whose provisioner asks this process's
fork server for the kernel instead of starting a new interpreter. The rest of the engine sees a
kernel manager like any other: the provisioner's process handle answers ``poll``/``wait``/``kill``/
``terminate``/``send_signal``/``pid`` for the forked kernel, whose exit status the server reports.

Only a plain ipykernel on this interpreter (``[python, -m, ipykernel_launcher, ...]``) is forked, and
only into a log file; anything else, or a server that failed, gets a new process as usual (a debug
line says why). One server per process, for one (interpreter, folder, environment); another one
replaces it. It exits with this process.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from pathlib import Path
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner

_log = logging.getLogger(__name__)
_PARENT_PID = "JPY_PARENT_PID"  # set per kernel by jupyter_client: not part of the server's key


class _ForkServer:
    """This process's end of one fork server."""

    def __init__(self, key: str, env: dict[str, str], cwd: str, log_path: Path, modules: list[str]) -> None:
        self.key = key
        self.log_path = log_path
        self.cond = threading.Condition()
        self.status: dict[int, int] = {}
        self.pending: deque[_ForkedProcess] = deque()
        self.dead = False
        self.threads: int | None = None
        code = "import workbench.jobs._forkserver as f; f.main()"
        with open(log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, json.dumps(modules)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                env=env,
                cwd=cwd,
                start_new_session=True,  # a Ctrl-C is not its business: it ends with this process
            )
        threading.Thread(target=self._read, name="workbench-fork-server", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            msg = json.loads(line)
            with self.cond:
                if "exit" in msg:
                    self.status[msg["exit"]] = msg["status"]
                elif "ready" in msg:
                    self.threads = msg["threads"]
                    _log.debug("kernel fork server %s ready, %s threads", self.proc.pid, self.threads)
                elif self.pending:
                    if msg.get("error"):
                        _broken.add(self.key)  # later kernels like these start as new processes
                    self.pending.popleft()._answered(msg.get("pid"), msg.get("error"))
                self.cond.notify_all()
        with self.cond:
            self.dead = True
            while self.pending:
                self.pending.popleft()._answered(None, "the fork server exited")
            self.cond.notify_all()

    def fork(self, argv: list[str], env: dict[str, str], cwd: str, log: str, then_import: list[str]) -> _ForkedProcess:
        """Ask for a kernel; returns at once (the handle learns its pid when the server answers)."""
        proc = _ForkedProcess(self)
        request = {"argv": argv, "env": env, "cwd": cwd, "log": log, "then_import": then_import}
        with self.cond:
            if self.dead:
                raise OSError("the fork server exited")
            self.pending.append(proc)
            assert self.proc.stdin is not None
            self.proc.stdin.write((json.dumps(request) + "\n").encode())
            self.proc.stdin.flush()
        return proc

    def close(self) -> None:
        """Close the request pipe: the server kills its kernels and exits."""
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin.close()  # type: ignore[union-attr]
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        with contextlib.suppress(OSError):
            self.log_path.unlink()


class _ForkedProcess:
    """A ``Popen``-like handle on a kernel that is the fork server's child."""

    stdin = stdout = stderr = None

    def __init__(self, server: _ForkServer) -> None:
        self._server = server
        self._pid: int | None = None
        self._error: str | None = None
        self._answer = threading.Event()
        self.returncode: int | None = None

    def _answered(self, pid: int | None, error: str | None) -> None:
        self._pid, self._error = pid, error
        if error:
            _log.debug("the fork server could not start a kernel: %s", error)
        self._answer.set()

    @property
    def pid(self) -> int | None:
        self._answer.wait(timeout=60)
        return self._pid

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        if not self._answer.is_set():
            return None
        if self._pid is None:
            self.returncode = 1  # never started
            return self.returncode
        with self._server.cond:
            code = self._server.status.pop(self._pid, None)
            dead = self._server.dead
        if code is None and dead and not _exists(self._pid):
            code = -signal.SIGKILL  # its server was gone: it killed its kernels on the way out
        self.returncode = code
        return code

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired("forked kernel", timeout or 0)
            with self._server.cond:
                self._server.cond.wait(timeout=0.1 if left is None else min(0.1, left))
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, signum: int) -> None:
        pid = self.pid
        if pid is not None and self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_server: _ForkServer | None = None
_broken: set[str] = set()  # keys whose server failed: those get new processes


def close_server() -> None:
    """Stop this process's fork server (it kills the kernels it forked that still run)."""
    global _server
    server, _server = _server, None
    if server is not None:
        server.close()


atexit.register(close_server)


def _server_for(cmd: list[str], kwargs: dict[str, Any], modules: list[str]) -> _ForkServer | None:
    """The fork server for a kernel launched as ``cmd`` with ``kwargs``, started if needed; None
    when such a kernel is not forked."""
    global _server
    why = _not_forkable(cmd, kwargs)
    if why:
        _log.debug("kernel started as a new process: %s", why)
        return None
    env = {k: v for k, v in kwargs["env"].items() if k != _PARENT_PID}
    cwd = os.path.realpath(kwargs.get("cwd") or os.getcwd())
    key = json.dumps([os.path.realpath(sys.executable), cwd, sorted(env.items())])
    if key in _broken:
        return None
    if _server is not None and (_server.key != key or _server.dead):
        close_server()
    if _server is None:
        log_path = Path(kwargs["stdout"].name).with_name(f".fork-server-{os.getpid()}-{uuid.uuid4().hex[:8]}.log")
        try:
            _server = _ForkServer(key, env, cwd, log_path, modules)
        except OSError as exc:
            _log.debug("kernel started as a new process: no fork server (%s)", exc)
            _broken.add(key)
            return None
    return _server


def _not_forkable(cmd: list[str], kwargs: dict[str, Any]) -> str | None:
    """Why a kernel launched as ``cmd`` with ``kwargs`` is not forked (None: it is)."""
    if not hasattr(os, "pidfd_open") or not hasattr(os, "fork"):
        return "this system cannot fork kernels"
    if len(cmd) < 3 or cmd[1:3] != ["-m", "ipykernel_launcher"]:
        return f"not a plain ipykernel: {cmd[:3]}"
    if os.path.realpath(cmd[0]) != os.path.realpath(sys.executable):
        return f"another interpreter: {cmd[0]}"
    if not isinstance(kwargs.get("env"), dict):
        return "no environment given"
    for stream in ("stdout", "stderr"):
        if not isinstance(getattr(kwargs.get(stream), "name", None), str):
            return f"its {stream} is not a log file"
    if kwargs["stdout"].name != kwargs["stderr"].name:
        return "its output and errors go to different files"
    return None


class ForkProvisioner(LocalProvisioner):  # type: ignore[misc]
    """``LocalProvisioner`` whose kernel is forked from this process's fork server when it can be."""

    _forked_pid: int | None = None

    @property  # type: ignore[override]
    def pid(self) -> int | None:
        if isinstance(self.process, _ForkedProcess):
            return self.process.pid
        return self._forked_pid

    @pid.setter
    def pid(self, value: int | None) -> None:
        self._forked_pid = value

    pgid = pid  # a forked kernel leads its own session

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> Any:
        modules = list(getattr(self.parent, "fork_preload", ()))
        server = _server_for(cmd, kwargs, modules)
        if server is None:
            return await super().launch_kernel(cmd, **kwargs)
        cwd = os.path.realpath(kwargs.get("cwd") or os.getcwd())
        try:
            self.process = server.fork(cmd[3:], dict(kwargs["env"]), cwd, kwargs["stdout"].name, modules)
        except OSError as exc:
            _log.debug("kernel started as a new process: %s", exc)
            _broken.add(server.key)
            return await super().launch_kernel(cmd, **kwargs)
        self.cwd = cwd
        return self.connection_info


class ForkingKernelManager(AsyncKernelManager):  # type: ignore[misc]
    """``AsyncKernelManager`` whose kernels come from a fork server (see :class:`ForkProvisioner`).

    ``fork_preload`` are modules the server imports before forking (those that look at the shell
    are left to the kernel).
    """

    fork_preload: tuple[str, ...] = ()

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.provisioner is None and not self.kernel_spec.metadata.get("kernel_provisioner"):
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = ForkProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)
