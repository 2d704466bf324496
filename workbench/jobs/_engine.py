"""The papermill engine behind ``workbench run``: papermill's nbclient engine plus what a job needs.

- the executed notebook is saved atomically while it runs (at most once a second, so a crash of
  the runner itself loses at most that much) and completely at the end by the runner;
- right before the first cell the kernel learns its run directory and seeds its generators;
- a whole-run deadline: each cell may use what is left of it, then the kernel is stopped;
- the kernel's exit status is kept, so a dead kernel can be reported as such;
- the runner hears when the cells are done, so it can render the report while the kernel exits
  (and before a kernel let exit quickly is prepared for it);
- the kernel's language (the notebook's ``language_info``) comes from its start-up reply, not from
  a second round trip after the last cell;
- a kernel that was let exit quickly (``warm``) is asked to shut down and left to exit on its own,
  reaped in the background (``_kernels.reap``): the next run need not wait for its process to end;
- the kernel process's own output (not the cells') goes to ``kernel.log`` instead of the terminal;
- sweeps and tune workers may start the next run's kernel while the current one runs (see
  ``_kernels``), importing the notebook's modules ahead, and let a kernel exit quickly (``warm``).

Importing this module imports papermill; the runner does so only when it executes a notebook.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

import nbformat
from jupyter_core.utils import run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_hook
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, NotebookExecutionManager, papermill_engines
from papermill.log import logger
from papermill.utils import remove_args

from .._io import atomic_write_text
from ._kernels import adopt_spare, launch_spare, reap, remember_imports
from .warm import LOADED_MODULES_EXPR, QUIET_EXIT_CODE

ENGINE_NAME = "workbench"
SAVE_EVERY_S = 1.0


@dataclass
class Execution:
    """What the runner and the engine share during one notebook execution."""

    save_path: Path | None
    env: dict[str, str]
    startup_code: str
    kernel_log: Path | None = None
    timeout: float | None = None
    prelaunch: bool = False
    preload: tuple[str, ...] = ()
    quiet_exit: bool = False
    exiting_quietly: bool = False
    on_cells_done: Callable[[Any], None] | None = None
    deadline: float | None = None
    manager: Any = None
    current_cell: int | None = None
    kernel_process: Any = None
    timed_out: bool = False

    def start_clock(self) -> None:
        self.deadline = time.monotonic() + self.timeout if self.timeout else None

    def cell_timeout(self, cell: Any) -> int | None:
        """Seconds left before the run's deadline (nbclient asks before each cell)."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            self.timed_out = True
            raise CellTimeoutError(f"the run's time limit of {self.timeout:g}s was used up before this cell")
        return max(1, math.ceil(left))

    @property
    def kernel_exit_code(self) -> int | None:
        proc = self.kernel_process
        if proc is None:
            return None
        try:
            return proc.wait(timeout=2)
        except Exception:  # noqa: BLE001 - unknown is an honest answer
            return None


class _Manager(NotebookExecutionManager):
    """papermill's execution bookkeeping, saving through an atomic write to our own path."""

    def __init__(self, nb: Any, execution: Execution, **kwargs: Any) -> None:
        super().__init__(nb, output_path=None, **kwargs)
        self.execution = execution
        self._last_write = 0.0

    def save(self, **kwargs: Any) -> None:
        if kwargs.get("nb") is not None:
            self.nb = kwargs["nb"]
        now = time.monotonic()
        if self.execution.save_path is not None and now - self._last_write >= SAVE_EVERY_S:
            atomic_write_text(self.execution.save_path, nbformat.writes(self.nb))
            self._last_write = now
        self.last_save_time = self.now()

    def cell_start(self, cell: Any, cell_index: int | None = None, **kwargs: Any) -> None:
        self.execution.current_cell = cell_index
        super().cell_start(cell, cell_index, **kwargs)


class _Client(PapermillNotebookClient):
    def __init__(self, nb_man: Any, execution: Execution, **kwargs: Any) -> None:
        super().__init__(nb_man, **kwargs)
        self.execution = execution
        self._startup_info: dict | None = None

    def create_kernel_manager(self) -> Any:
        if not self.kernel_name:
            self.kernel_name = self.nb.metadata.get("kernelspec", {}).get("name") or ""
        log = self.execution.kernel_log
        km = adopt_spare(self.kernel_name, os.getcwd(), self.execution.env, log)
        if km is None:
            return super().create_kernel_manager()
        self.km = km
        self.execution.kernel_process = getattr(km.provisioner, "process", None)
        return km

    def start_new_kernel(self, **kwargs: Any) -> None:
        super().start_new_kernel(**kwargs)
        self.execution.kernel_process = getattr(getattr(self.km, "provisioner", None), "process", None)

    def start_new_kernel_client(self) -> Any:
        kc = run_sync(self._start_client)()
        # Tell the kernel its run and seed it right before the first cell (start-up itself draws
        # from `random` unevenly, and a spare kernel was started before its run existed).
        reply = self.wait_for_reply(kc.execute(self.execution.startup_code, silent=True, store_history=False))
        if reply and reply.get("content", {}).get("status") != "ok":
            logger.warning("workbench: preparing the kernel failed: %s", reply["content"].get("evalue", ""))
        ex = self.execution
        if ex.prelaunch and ex.kernel_log is not None:  # the next run's kernel starts while this one runs
            launch_spare(self.kernel_name, os.getcwd(), ex.env, ex.kernel_log.parent.parent, preload=ex.preload)
        return kc

    async def _start_client(self) -> Any:
        """nbclient's client start, but ready as soon as IOPub has answered (not after 0.2 s of silence)."""
        assert self.km is not None
        try:
            self.kc = self.km.client()
            await ensure_async(self.kc.start_channels())
            self._startup_info = await _wait_until_ready(self.kc, self.km, self.startup_timeout)
        except Exception as exc:
            logger.error("Error occurred while starting new kernel client: %s", exc)
            await self._async_cleanup_kernel()
            raise
        self.kc.allow_stdin = False
        await run_hook(self.on_notebook_start, notebook=self.nb)
        return self.kc

    def execute(self, **kwargs: Any) -> Any:
        """papermill's ``execute``, with the kernel's language from its start-up reply (no second
        ``kernel_info`` round trip), and the report started before the kernel's quick exit."""
        self.reset_execution_trackers()
        with self.setup_kernel(**kwargs):
            self.log.info(f"Executing notebook with kernel: {self.kernel_name}")
            self.papermill_execute_cells()
            self.nb.metadata["language_info"] = self._language_info()
            self.set_widgets_metadata()
            if self.execution.on_cells_done is not None:  # the notebook is final: the runner may render it
                self.execution.on_cells_done(self.nb)
            if self.execution.quiet_exit:
                self._quiet_exit()
        return self.nb

    def _language_info(self) -> Any:
        """The kernel's ``language_info``, as it answered when it became ready (asked again if it did not say)."""
        info = (self._startup_info or {}).get("language_info")
        if info is None:
            info = self.wait_for_reply(self.kc.kernel_info())["content"]["language_info"]
        return info

    async def _async_cleanup_kernel(self) -> None:
        # nbclient's graceful shutdown notices the kernel's exit 0.1 s late at worst; here within 10 ms.
        km = self.km
        if self.shutdown_kernel != "immediate" and km is not None and self.execution.exiting_quietly:
            await _leave_to_exit(km)  # nbclient's cleanup below then finds no process to stop
        if self.shutdown_kernel != "immediate" and km is not None:
            with contextlib.suppress(Exception):  # nbclient's own shutdown below handles every problem
                if await ensure_async(km.is_alive()):
                    await ensure_async(km.request_shutdown())
                    deadline = time.monotonic() + km.shutdown_wait_time / 2
                    while time.monotonic() < deadline and await ensure_async(km.is_alive()):
                        await asyncio.sleep(0.01)
        await super()._async_cleanup_kernel()

    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    def papermill_execute_cells(self) -> None:
        try:
            super().papermill_execute_cells()
        except (CellTimeoutError, DeadKernelError) as exc:
            self.execution.timed_out = isinstance(exc, CellTimeoutError)
            self.shutdown_kernel = "immediate"  # a busy or dead kernel gets no graceful shutdown
            raise

    def _quiet_exit(self) -> None:
        """Let the kernel, done with its cells, flush its files and exit without collecting its heap."""
        ex = self.execution
        asked = {"modules": LOADED_MODULES_EXPR} if ex.prelaunch or ex.preload else {}
        try:
            reply = self.wait_for_reply(
                self.kc.execute(QUIET_EXIT_CODE, silent=True, store_history=False, user_expressions=asked)
            )
        except Exception as exc:  # noqa: BLE001 - the kernel then just exits the slow way
            logger.debug("workbench: the kernel's quick exit was not prepared: %s", exc)
            return
        ex.exiting_quietly = (reply or {}).get("content", {}).get("status") == "ok"
        modules = ((reply or {}).get("content", {}).get("user_expressions") or {}).get("modules", {})
        if modules.get("status") == "ok":
            with contextlib.suppress(ValueError, SyntaxError, TypeError):
                names = ast.literal_eval(modules["data"]["text/plain"])
                remember_imports(self.kernel_name, os.getcwd(), ex.env, tuple(map(str, names)))


async def _leave_to_exit(km: Any) -> None:
    """Ask ``km``'s kernel (its files flushed, its heap frozen) to shut down and reap it in the background.

    The kernel manager forgets the process, so its cleanup removes the connection file and closes
    its sockets without waiting; a kernel that has not exited within the manager's shutdown wait
    is killed by the reaper.
    """
    provisioner = getattr(km, "provisioner", None)
    proc = getattr(provisioner, "process", None)
    if proc is None:
        return
    try:
        if not await ensure_async(km.is_alive()):
            return
        await ensure_async(km.request_shutdown())
    except Exception as exc:  # noqa: BLE001 - the usual shutdown follows
        logger.debug("workbench: could not ask the kernel to shut down: %s", exc)
        return
    reap(proc, km.shutdown_wait_time)
    provisioner.process = None


async def _wait_until_ready(kc: Any, km: Any, timeout: float) -> dict:
    """Ask for kernel info until the reply came and IOPub carried the request's end (it is connected);
    the reply's content.

    What jupyter_client's ``wait_for_ready`` checks, without then waiting for 0.2 s of silence on IOPub:
    the messages before this request's ``idle`` are read and dropped here, and no others are due.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg_id = kc.kernel_info()
        try:
            reply = await _message(kc.shell_channel, msg_id, 1.0)
            await _message(kc.iopub_channel, msg_id, 0.2, idle=True)
        except Empty:
            if not await ensure_async(km.is_alive()):
                raise RuntimeError("Kernel died before replying to kernel_info") from None
            continue
        kc._handle_kernel_info_reply(reply)
        return reply["content"]
    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


async def _message(channel: Any, msg_id: str, silence: float, idle: bool = False) -> dict:
    """The first message on ``channel`` answering ``msg_id`` (with ``idle``: its ``idle`` status);
    ``Empty`` after ``silence`` seconds without a message."""
    while True:
        msg = await ensure_async(channel.get_msg(timeout=silence))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if not idle or (msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"):
            return msg


class WorkbenchEngine(NBClientEngine):
    """Registered with papermill as ``engine_name="workbench"``; needs ``execution=Execution(...)``."""

    @classmethod
    def execute_notebook(
        cls,
        nb: Any,
        kernel_name: str,
        output_path: Any = None,
        progress_bar: Any = True,
        log_output: bool = False,
        autosave_cell_every: int = 30,
        execution: Execution | None = None,
        **kwargs: Any,
    ) -> Any:
        if execution is None:
            raise ValueError("the workbench engine needs execution=Execution(...)")
        nb_man = _Manager(
            nb, execution, progress_bar=progress_bar, log_output=log_output, autosave_cell_every=autosave_cell_every
        )
        execution.manager = nb_man
        nb_man.notebook_start()
        try:
            cls.execute_managed_notebook(nb_man, kernel_name, log_output=log_output, execution=execution, **kwargs)
        finally:
            nb_man.cleanup_pbar()
            nb_man.notebook_complete()
        return nb_man.nb

    @classmethod
    def execute_managed_notebook(
        cls,
        nb_man: Any,
        kernel_name: str,
        log_output: bool = False,
        stdout_file: Any = None,
        stderr_file: Any = None,
        start_timeout: int = 60,
        execution: Execution | None = None,
        **kwargs: Any,
    ) -> Any:
        assert execution is not None
        kwargs = remove_args(
            ["input_path", "timeout", "startup_timeout", "execution_timeout", "timeout_func"], **kwargs
        )
        client = _Client(
            nb_man,
            execution,
            timeout_func=execution.cell_timeout,
            startup_timeout=start_timeout,
            kernel_name=kernel_name,
            log=logger,
            log_output=log_output,
            stdout_file=stdout_file,
            stderr_file=stderr_file,
            **kwargs,
        )
        execution.start_clock()
        if execution.kernel_log is None:
            return client.execute(env=execution.env)
        with open(execution.kernel_log, "ab") as log:  # the kernel process's own stdout/stderr
            return client.execute(env=execution.env, stdout=log, stderr=log)


_SAID_BY_THE_RUNNER = ("Passed unknown parameter", "Kernel died while waiting", "Timeout waiting for execute reply")


def _said_by_the_runner(record: logging.LogRecord) -> bool:
    # papermill's own parameter inspection cannot read annotations like `Path | None` and warns
    # (the runner has validated every name already); dead kernels and timeouts get the runner's
    # one-line summary instead of nbclient's log lines.
    return not record.getMessage().startswith(_SAID_BY_THE_RUNNER)


papermill_engines.register(ENGINE_NAME, WorkbenchEngine)
logger.addFilter(_said_by_the_runner)
