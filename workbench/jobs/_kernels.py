"""Spare kernels: a fresh kernel started ahead of the run that will use it.

A sweep worker starts one while it imports papermill, and another for its next run while the
current kernel shuts down. A spare has run no code; a run adopts it only if it was launched
exactly as the run would launch its own (kernel, working directory, environment), otherwise it
is shut down and the run starts a kernel as usual. One spare per process, at most.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
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


_spare: _Spare | None = None


def _key(kernel_name: str, cwd: str, env: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps([kernel_name, os.path.realpath(cwd), sorted(env.items())]).encode()).hexdigest()


def discard_spare() -> None:
    """Shut the spare kernel down (it ran nothing) and remove its log."""
    global _spare
    spare, _spare = _spare, None
    if spare is None:
        return
    from jupyter_core.utils import run_sync

    with contextlib.suppress(Exception):
        run_sync(spare.km.shutdown_kernel)(now=True)
    with contextlib.suppress(OSError):
        spare.log_path.unlink()


atexit.register(discard_spare)


def launch_spare(kernel_name: str, cwd: str | os.PathLike[str], env: dict[str, str], log_dir: Path) -> None:
    """Start a kernel in the background (returns once its process is launched, not booted)."""
    global _spare
    from jupyter_client import AsyncKernelManager
    from jupyter_core.utils import run_sync

    discard_spare()
    log_path = Path(log_dir) / f".spare-kernel-{os.getpid()}.log"
    km = AsyncKernelManager(kernel_name=kernel_name)
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
    _spare = _Spare(_key(kernel_name, str(cwd), env), km, log_path)


def adopt_spare(
    kernel_name: str, cwd: str | os.PathLike[str], env: dict[str, str], log_target: Path | None
) -> Any | None:
    """The spare's kernel manager if it was launched exactly like this; its log moves to ``log_target``."""
    global _spare
    from jupyter_core.utils import run_sync

    spare = _spare
    if spare is None:
        return None
    if spare.key != _key(kernel_name, str(cwd), env) or not run_sync(spare.km.is_alive)():
        discard_spare()
        return None
    _spare = None
    if log_target is not None:
        try:
            os.replace(spare.log_path, log_target)
        except OSError:  # another file system: say where the kernel keeps writing
            log_target.write_text(f"kernel output of this run: {spare.log_path}\n")
    return spare.km
