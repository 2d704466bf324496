"""A kernel fork server: one process that has imported a kernel's modules once and forks a fresh
kernel from itself for each run of a worker (tune trials, sweep points).

The server is started with exactly the environment and working directory the run's kernel would
get (the hash seed is fixed when an interpreter starts, so it is part of that environment). It imports
ipykernel's application module (nothing of it runs: no event loop, no sockets, no threads) and the
modules a run of the notebook imports, then waits for requests. Each request forks one child, which
starts its own session, sends its output to the given log, takes the request's environment and
working directory, and runs the kernel application with the request's arguments, as
``python -m ipykernel_launcher ARGS`` would. The child has run no code of any run: the server never
runs a notebook's code, only imports.

The server reaps its children at once and reports their exit status; when the worker's end of the
request pipe closes (the worker exited or was killed), it kills its children and exits.

Protocol (one JSON object per line): requests ``{"argv", "env", "cwd", "log", "then_import"}``
(``then_import``: modules to import once the child is forked, for the next one); answers
``{"pid"}`` or ``{"error"}`` in request order, and ``{"exit": pid, "status": code}`` whenever a
child ends (``code`` as ``Popen.returncode``).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import sys
from typing import Any

# Modules that look at the running shell when imported (a progress bar or plot backend would pick
# the console flavour): they are left to the kernel, which imports them once its shell exists.
SHELL_AWARE = frozenset({"tqdm", "ipywidgets", "matplotlib_inline", "plotly", "bokeh", "altair", "IPython.display"})
_SHELL_AWARE_LOADED = ("tqdm.auto", "tqdm.autonotebook", "matplotlib_inline.backend_inline", "ipywidgets")


def importable_here(modules: list[str]) -> list[str]:
    """``modules`` less those the server leaves to the kernel (see ``SHELL_AWARE``)."""
    return [m for m in modules if m.split(".")[0] not in SHELL_AWARE and m not in SHELL_AWARE]


def _send(message: dict[str, Any]) -> None:
    os.write(1, (json.dumps(message) + "\n").encode())


def _import(modules: list[str]) -> None:
    from .warm import preload

    preload(importable_here(modules))


def _serve() -> dict[str, Any] | None:
    """Answer requests until the pipe closes (None) or this process is a forked child (its request)."""
    children: dict[int, int] = {}  # pidfd -> pid
    pending = b""
    while True:
        ready, _, _ = select.select([0, *children], [], [])
        for fd in ready:
            if fd != 0:
                pid = children.pop(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                _send({"exit": pid, "status": os.waitstatus_to_exitcode(status)})
                continue
            data = os.read(0, 1 << 16)
            if not data:
                _kill_all(children)
                return None
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                request = json.loads(line)
                if _fork(request, children):
                    request["close"] = list(children)
                    return request
                _import(request.get("then_import", []))


def _fork(request: dict[str, Any], children: dict[int, int]) -> bool:
    """Fork a child for ``request``; True in the child."""
    import threading

    if any(name in sys.modules for name in _SHELL_AWARE_LOADED):
        _send({"error": "a module that looks at the shell was imported ahead"})
        return False
    if threading.active_count() > 1:  # a fork keeps only this thread: what the others held is lost
        _send({"error": "an import started a thread"})
        return False
    try:
        pid = os.fork()
    except OSError as exc:
        _send({"error": f"fork: {exc}"})
        return False
    if pid == 0:
        return True
    children[os.pidfd_open(pid)] = pid
    _send({"pid": pid})
    return False


def _kill_all(children: dict[int, int]) -> None:
    for pid in children.values():
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)  # the kernel and what it started (its own session)
    for fd, pid in children.items():
        with contextlib.suppress(OSError):
            os.waitpid(pid, 0)
        os.close(fd)


def _become_kernel(request: dict[str, Any]) -> None:
    """In the forked child: take the request's session, output, environment and folder, then run the kernel."""
    import importlib.util
    from pathlib import Path

    os.setsid()
    for fd in request["close"]:
        os.close(fd)
    log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.close(null)
    env = dict(request["env"])
    env["JPY_PARENT_PID"] = str(os.getppid())  # as jupyter_client's launcher sets it: the kernel watches it
    os.environ.clear()
    os.environ.update(env)
    os.chdir(request["cwd"])
    spec = importlib.util.find_spec("ipykernel_launcher")
    sys.argv = [spec.origin if spec and spec.origin else "ipykernel_launcher", *request["argv"]]
    if sys.path and (sys.path[0] == "" or Path(sys.path[0]) == Path.cwd()):
        del sys.path[0]  # as ipykernel_launcher does; the shell puts the folder back
    from ipykernel import kernelapp

    kernelapp.launch_new_instance()


def main() -> None:
    """The server process: import, then serve; a forked child runs its kernel and exits normally."""
    import ipykernel.kernelapp  # noqa: F401 - imported only: nothing of it runs here

    first = json.loads(sys.argv[1]) if len(sys.argv) > 1 else []
    _import(first)
    threads = len(os.listdir("/proc/self/task")) if os.path.isdir("/proc/self/task") else None
    _send({"ready": True, "threads": threads})
    request = _serve()
    if request is not None:
        _become_kernel(request)
