"""The process of one notebook job created in JupyterLab: a ``workbench run`` that reports to the job list.

``python -m workbench.lab.job --db-url URL --job-id ID --notebook PATH --staging DIR [--param K=V ...]``

Started detached by :class:`~workbench.lab.scheduler.WorkbenchScheduler` (its own session, so
stopping or culling the notebook server does not stop it). It validates and runs the notebook with
:func:`workbench.jobs.runner.execute_run` into the user's runs folder, copies the executed notebook
and the report into the job's staging folder (the job's outputs in the UI), records the run's
directory beside them (:data:`RUN_FILE`) and sets the job's status. ``SIGTERM`` stops it as Ctrl-C
stops ``workbench run``: the run is recorded as interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

RUN_FILE = "workbench-run.json"
"""In a job's staging folder: the run directory and the process running it."""


def _now_ms() -> int:
    return int(time.time() * 1000)


def update_job(db_url: str, job_id: str, **values: Any) -> None:
    """Set columns of job ``job_id`` in jupyter-scheduler's database."""
    from jupyter_scheduler.orm import Job, create_session

    with create_session(db_url)() as session:
        session.query(Job).filter(Job.job_id == job_id).update(values)
        session.commit()


def write_run_file(staging: Path, **values: Any) -> None:
    """Merge ``values`` into the job's :data:`RUN_FILE` (written atomically)."""
    from .._io import atomic_write_json

    atomic_write_json(staging / RUN_FILE, {**read_run_file(staging), **values})


def read_run_file(staging: str | os.PathLike[str]) -> dict[str, Any]:
    """The job's :data:`RUN_FILE` (empty when there is none yet)."""
    try:
        value = json.loads((Path(staging) / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


STOP_GRACE_S = 10.0
"""After ``SIGTERM``, how long the run may take to record itself as interrupted before the process exits."""


def _stopper(db_url: str, job_id: str) -> Any:
    """The ``SIGTERM`` handler: interrupt the run like Ctrl-C; exit after :data:`STOP_GRACE_S` regardless.

    The interrupt can land where Python only prints it (a garbage-collector callback); the timer
    makes the stop certain. The kernel follows: it exits when its parent process is gone.
    """
    stopping = threading.Event()

    def force() -> None:
        update_job(db_url, job_id, status="STOPPED", status_message="stopped", end_time=_now_ms())
        os._exit(143)

    def handler(signum: int, frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        timer = threading.Timer(STOP_GRACE_S, force)
        timer.daemon = True
        timer.start()
        raise KeyboardInterrupt(f"stopped (signal {signum})")

    return handler


def _limit_memory(limit: int | None) -> None:
    """Limit the address space to the profile's memory; never above what this process may have.

    A local job inherits its server's limit (the server's profile), which an unprivileged process
    cannot raise: a job on a larger profile than its server gets the server's.
    """
    if not limit:
        return
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY and hard < limit:
        print(f"memory limit: the server's {hard} bytes (the profile allows {limit})", file=sys.stderr)
        limit = hard
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _copy_outputs(run_dir: Path, notebook: Path, outputs: dict[str, str]) -> None:
    """Copy the executed notebook and the report to the staging paths jupyter-scheduler serves."""
    sources = {"ipynb": run_dir / notebook.name, "html": run_dir / "report.html"}
    for fmt, target in outputs.items():
        source = sources.get(fmt)
        if source is not None and source.is_file() and not source.is_symlink():
            shutil.copyfile(source, target)


def run_job(args: argparse.Namespace) -> int:
    """Run the job; returns the exit status (0: the run succeeded)."""
    from ..jobs.runner import execute_run, prepare_run

    staging = Path(args.staging)
    update_job(args.db_url, args.job_id, status="IN_PROGRESS", start_time=_now_ms())
    params = dict(p.split("=", 1) for p in args.param)
    try:
        prepared = prepare_run(args.notebook, text_params=params, name=args.name)
        record = execute_run(prepared, progress=False)
    except KeyboardInterrupt as exc:
        update_job(args.db_url, args.job_id, status="STOPPED", status_message=str(exc), end_time=_now_ms())
        return 130
    except Exception as exc:  # reported in the job list; the traceback goes to the job's log
        update_job(args.db_url, args.job_id, status="FAILED", status_message=str(exc)[:1000], end_time=_now_ms())
        raise
    write_run_file(staging, run=str(record.path), run_id=record.run_id, state=record.state)
    _copy_outputs(record.path, Path(args.notebook), json.loads(args.outputs))
    if record.state in ("succeeded", "degraded"):
        update_job(
            args.db_url, args.job_id, status="COMPLETED", status_message=f"run {record.run_id}", end_time=_now_ms()
        )
        return 0
    summary = (record.error or {}).get("summary", "failed")
    update_job(
        args.db_url,
        args.job_id,
        status="FAILED",
        status_message=f"run {record.run_id}: {summary}"[:1000],
        end_time=_now_ms(),
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, set the profile's limits, run the job."""
    p = argparse.ArgumentParser(prog="python -m workbench.lab.job", description=__doc__.split("\n\n")[0])
    p.add_argument("--db-url", required=True, help="jupyter-scheduler's database")
    p.add_argument("--job-id", required=True)
    p.add_argument("--notebook", required=True, help="the notebook to run (absolute path)")
    p.add_argument("--staging", required=True, help="the job's staging folder")
    p.add_argument("--outputs", default="{}", help="JSON {format: staging path} of the outputs to fill")
    p.add_argument("--name", help="run name (default: the notebook's name)")
    p.add_argument("--param", action="append", default=[], metavar="K=V", help="a parameter, as text")
    p.add_argument("--memory-limit", type=int, help="address-space limit in bytes (CPU profiles)")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, _stopper(args.db_url, args.job_id))
    _limit_memory(args.memory_limit)
    os.chdir(Path(args.notebook).parent)
    return run_job(args)


if __name__ == "__main__":
    sys.exit(main())
