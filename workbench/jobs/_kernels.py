"""Spare kernels: a fresh kernel started ahead of the run that will use it.

A sweep worker starts one while it imports papermill, and another for its next run while the
current run's kernel works. A spare has run no code of a run; a run adopts it only if it was launched
exactly as the run would launch its own (kernel, working directory, environment), otherwise it
is shut down and the run starts a kernel as usual. One spare per process, at most.

A spare may be given modules to import as soon as it is up (see :mod:`workbench.jobs.warm`): the
request waits in the kernel's queue, ahead of the run's own requests, so the run's first cell
starts once they are imported.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HISTORY_IN_MEMORY = "--HistoryManager.hist_file=:memory:"  # what nbclient passes its kernels too
_log = logging.getLogger(__name__)


@dataclass
class _Spare:
    key: str
    km: Any
    log_path: Path
    client: Any = None  # the one that asked for the imports ahead


_spare: _Spare | None = None
_imported: dict[str, tuple[str, ...]] = {}  # what the last run launched like this imported


def remember_imports(
    kernel_name: str, cwd: str | os.PathLike[str], env: dict[str, str], modules: tuple[str, ...]
) -> None:
    """Note the modules a run imported: spares launched like it import them ahead too."""
    _imported[_key(kernel_name, str(cwd), env)] = modules


def _key(kernel_name: str, cwd: str, env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps([kernel_name, os.path.realpath(cwd), sorted(env.items())]).encode()).hexdigest()


def discard_spare() -> None:
    """Shut the spare kernel down (it ran nothing) and remove its log."""
    global _spare
    spare, _spare = _spare, None
    if spare is None:
        return
    from jupyter_core.utils import run_sync

    _close_client(spare)
    with contextlib.suppress(Exception):
        run_sync(spare.km.shutdown_kernel)(now=True)
    with contextlib.suppress(OSError):
        spare.log_path.unlink()


atexit.register(discard_spare)

_exiting: list[tuple[Any, threading.Thread]] = []  # kernels asked to shut down, not yet reaped


def reap(proc: Any, wait: float) -> None:
    """Wait for ``proc`` (a kernel asked to shut down) in the background; kill it after ``wait`` seconds."""

    def wait_then_kill() -> None:
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                proc.kill()
            with contextlib.suppress(Exception):
                proc.wait(timeout=wait)
        except Exception as exc:  # noqa: BLE001 - nothing is left to do for it
            _log.debug("reaping a kernel: %s", exc)

    _exiting[:] = [(p, t) for p, t in _exiting if t.is_alive()]
    thread = threading.Thread(target=wait_then_kill, name="workbench-kernel-reaper", daemon=True)
    thread.start()
    _exiting.append((proc, thread))


def reap_all() -> None:
    """Wait for the kernels still exiting, and kill those that do not (at exit too)."""
    exiting, _exiting[:] = list(_exiting), []
    for proc, thread in exiting:
        thread.join(timeout=5)
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                proc.kill()


atexit.register(reap_all)


def _close_client(spare: _Spare) -> None:
    if spare.client is not None:
        with contextlib.suppress(Exception):
            spare.client.stop_channels()
        spare.client = None


def _ask_imports(km: Any, modules: tuple[str, ...]) -> Any:
    """Queue a silent request importing ``modules`` in ``km``'s kernel; the client that sent it."""
    from jupyter_client.blocking import BlockingKernelClient

    from .warm import preload_code

    client = BlockingKernelClient()
    client.load_connection_info(km.get_connection_info())
    client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
    client.execute(preload_code(modules), silent=True, store_history=False, allow_stdin=False)
    return client


def launch_spare(
    kernel_name: str,
    cwd: str | os.PathLike[str],
    env: dict[str, str],
    log_dir: Path,
    preload: tuple[str, ...] = (),
) -> None:
    """Start a kernel in the background (returns once its process is launched, not booted).

    ``preload`` are modules the kernel imports once it is up (nothing else runs in it). The kernel
    is forked from this process's fork server when it can be (see ``_fork_provisioner``): the
    server has imported them already.
    """
    global _spare
    from jupyter_core.utils import run_sync

    from ._fork_provisioner import ForkingKernelManager

    key = _key(kernel_name, str(cwd), env)
    if preload:
        preload = tuple(dict.fromkeys([*preload, *_imported.get(key, ())]))
    if _spare is not None and _spare.key == key and _spare.client is None and run_sync(_spare.km.is_alive)():
        _preload(_spare, preload)  # the one started already will do
        return
    discard_spare()
    log_path = Path(log_dir) / f".spare-kernel-{os.getpid()}.log"
    km = ForkingKernelManager(kernel_name=kernel_name)
    km.fork_preload = preload
    try:
        with open(log_path, "ab") as log:
            run_sync(km.start_kernel)(
                extra_arguments=[HISTORY_IN_MEMORY], env=env, cwd=str(cwd), stdout=log, stderr=log
            )
    except Exception as exc:  # noqa: BLE001 - the run just starts its own kernel
        _log.debug("could not start a spare kernel: %s", exc)
        with contextlib.suppress(OSError):
            log_path.unlink()
        return
    _spare = _Spare(key, km, log_path)
    _preload(_spare, preload)


def _preload(spare: _Spare, modules: tuple[str, ...]) -> None:
    if modules:
        try:
            spare.client = _ask_imports(spare.km, modules)
        except Exception as exc:  # noqa: BLE001 - the run imports them itself
            _log.debug("could not ask the spare kernel to import ahead: %s", exc)


def _imports_done(spare: _Spare, wait: float) -> bool:
    """Wait up to ``wait`` seconds for the spare's imports ahead (True when there were none)."""
    import queue

    from jupyter_core.utils import run_sync

    if spare.client is None:
        return True
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            spare.client.get_shell_msg(timeout=0.5)
        except queue.Empty:
            if not run_sync(spare.km.is_alive)():  # died importing: the run starts its own kernel
                return False
        except Exception:  # noqa: BLE001 - a broken channel: the run starts its own kernel
            return False
        else:
            return True
    return False


def adopt_spare(
    kernel_name: str,
    cwd: str | os.PathLike[str],
    env: dict[str, str],
    log_target: Path | None,
    wait: float = 60,
) -> Any | None:
    """The spare's kernel manager if it was launched exactly like this; its log moves to ``log_target``.

    A spare asked to import modules ahead is adopted once it has (``wait`` seconds at most).
    """
    global _spare
    from jupyter_core.utils import run_sync

    spare = _spare
    if spare is None:
        return None
    if spare.key != _key(kernel_name, str(cwd), env) or not run_sync(spare.km.is_alive)():
        discard_spare()
        return None
    if not _imports_done(spare, wait):
        discard_spare()
        return None
    _spare = None
    _close_client(spare)
    if log_target is not None:
        try:
            os.replace(spare.log_path, log_target)
        except OSError:  # another file system: say where the kernel keeps writing
            log_target.write_text(f"kernel output of this run: {spare.log_path}\n")
    return spare.km
