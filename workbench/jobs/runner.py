"""Run a notebook as a job: validate, execute it in a fresh kernel with papermill, record the run.

Parameters, input files and the runs directory are checked before any kernel starts; nothing is
written for a run that is rejected. A run directory (see :mod:`workbench.runs.records`) is then
filled file by file, each written atomically and readable by the team, and ``status.json`` says
``succeeded``, ``degraded`` (no report) or ``failed`` only once everything else is in place.
"""

from __future__ import annotations

import copy
import json
import os
import platform
import signal
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._checks import is_whole_number
from ..runs.layout import current_owner, default_runs_root
from ..runs.records import (
    ARTIFACTS_DIR,
    ENV_FILE,
    INPUTS_FILE,
    KERNEL_LOG_FILE,
    PARAMS_FILE,
    REPORT_FILE,
    RunRecord,
    make_run_subdir,
    new_run_dir,
    sha256_file,
    utcnow,
    write_record,
    write_run_file,
)
from ..runs.registry import find_run
from .context import RUN_DIR_ENV, SEED_ENV
from .inputs import changed_inputs, check_inputs, declared_inputs, describe_inputs
from .params import INJECTED_TAG, NotebookSpec, inspect_notebook, read_notebook, validate_params

PRUNED_ENAME = "TrialPruned"
"""The exception a notebook raises when its tuning trial is pruned (``optuna.TrialPruned``)."""

KERNEL_SIGNALS = {
    signal.SIGKILL: "killed (SIGKILL; often the out-of-memory killer)",
    signal.SIGSEGV: "crashed (SIGSEGV)",
    signal.SIGABRT: "aborted (SIGABRT)",
    signal.SIGTERM: "terminated (SIGTERM)",
}


@dataclass(frozen=True)
class PreparedRun:
    """A validated run, ready to execute: nothing has been written yet."""

    spec: NotebookSpec
    nb: Any
    params: dict[str, Any]
    inputs: list[tuple[str, Path]]
    name: str
    seed: int


def prepare_run(
    notebook: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    text_params: Mapping[str, str] | None = None,
    name: str | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> PreparedRun:
    """Validate parameters and inputs of ``notebook`` (no kernel, no files written).

    ``params`` are typed values, ``text_params`` command-line strings (coerced to the declared
    types). Raises ``ValueError`` for unknown names, values of the wrong type and missing inputs.
    """
    path = Path(notebook)
    nb = read_notebook(path)
    if not nb.metadata.get("kernelspec", {}).get("name"):
        raise ValueError(f"{path} names no kernel (metadata.kernelspec); open it in Jupyter, pick a kernel and save it")
    spec = inspect_notebook(path, nb, workdir=workdir)
    values = validate_params(spec, params, text_params)
    inputs = declared_inputs(spec, values)
    check_inputs(inputs)
    return PreparedRun(spec=spec, nb=nb, params=values, inputs=inputs, name=name or path.stem, seed=run_seed(values))


def run_seed(values: Mapping[str, Any]) -> int:
    """The run's seed: the notebook's ``seed`` parameter when it is a whole number, else 0."""
    seed = values.get("seed")
    return int(seed) if is_whole_number(seed, low=None) else 0


def kernel_environment(seed: int) -> dict[str, str]:
    """The job kernel's process environment: ours plus the hash seed and inline plots.

    The run directory and the seed for ``random``/NumPy reach the kernel right before the first
    cell (:func:`startup_code`), so a kernel can be started before its run exists.
    """
    env = {k: v for k, v in os.environ.items() if k not in (RUN_DIR_ENV, SEED_ENV)}
    env.update(
        {
            "PYTHONHASHSEED": str(seed % 2**32),
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        }
    )
    return env


def startup_code(run_dir: Path, seed: int, env: Mapping[str, str] | None = None) -> str:
    """What the kernel runs (silently) before the first cell: see ``context._job_started``.

    ``env`` are variables set in the kernel's environment first (a tuning trial's storage and number).
    """
    code = f"__import__('workbench.jobs.context', fromlist=['_'])._job_started({str(run_dir)!r}, {int(seed)})"
    if env:
        code = f"__import__('os').environ.update({dict(env)!r}); {code}"
    return code


def _source_cell_number(nb: Any, index: int | None) -> int | None:
    """1-based number of cell ``index`` in the notebook as written (the injected-parameters cell not counted)."""
    if index is None:
        return None
    skipped = sum(1 for c in nb.cells[:index] if INJECTED_TAG in c.metadata.get("tags", []))
    return index - skipped + 1


def _kernel_death(code: int | None) -> str:
    if code is None:
        return "the kernel died"
    if code < 0:
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"the kernel died (signal {-code})"
        return f"the kernel was {KERNEL_SIGNALS.get(sig, f'stopped by {sig.name}')}"
    return f"the kernel exited with status {code}"


def _note_on_cell(nb: Any, index: int | None, text: str) -> None:
    """Append a visible stderr note to the cell where the run stopped (timeout or dead kernel)."""
    import nbformat

    if index is not None and 0 <= index < len(nb.cells) and nb.cells[index].cell_type == "code":
        nb.cells[index].outputs.append(nbformat.v4.new_output("stream", name="stderr", text=f"workbench: {text}\n"))


def _failure(exc: BaseException, execution: Any, nb: Any, timeout: float | None) -> dict[str, Any]:
    """``status.json``'s ``error`` entry for what stopped the run."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        cell = _source_cell_number(nb, exc.cell_index)
        return {
            "kind": "exception",
            "cell": cell,
            "execution_count": exc.exec_count,
            "ename": exc.ename,
            "evalue": exc.evalue,
            "summary": _one_line(f"cell {cell} raised {exc.ename}: {exc.evalue}"),
        }
    index = execution.current_cell if execution is not None else None
    cell = _source_cell_number(nb, index)
    if isinstance(exc, CellTimeoutError) or (execution is not None and execution.timed_out):
        summary = f"timed out after {timeout:g}s in cell {cell}; the kernel was stopped"
        _note_on_cell(nb, index, summary)
        return {
            "kind": "timeout",
            "cell": cell,
            "ename": "Timeout",
            "evalue": f"time limit {timeout:g}s",
            "summary": summary,
        }
    if isinstance(exc, DeadKernelError):
        code = execution.kernel_exit_code if execution is not None else None
        summary = f"{_kernel_death(code)} while running cell {cell}"
        _note_on_cell(nb, index, summary)
        return {
            "kind": "kernel_died",
            "cell": cell,
            "ename": "DeadKernelError",
            "evalue": summary,
            "exit_code": code,
            "summary": summary,
        }
    if isinstance(exc, KeyboardInterrupt):
        return {
            "kind": "interrupted",
            "cell": cell,
            "ename": "KeyboardInterrupt",
            "evalue": "",
            "summary": f"interrupted in cell {cell}",
        }
    message = str(exc).strip()
    return {
        "kind": "runner",
        "cell": cell,
        "ename": type(exc).__name__,
        "evalue": message,
        "summary": _one_line(f"could not execute the notebook: {type(exc).__name__}: {message}"),
    }


def _one_line(text: str, limit: int = 300) -> str:
    """The first line of ``text`` (without a dangling ``": "``), cut to ``limit`` characters."""
    line = text.strip().splitlines()[0].rstrip(": ") if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _after_run(record: RunRecord, notify: str | None) -> None:
    """MLflow logging and the webhook: best effort, never failing the run."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        try:
            from .mlflow_sync import log_run
        except ImportError:
            pass
        else:
            try:
                log_run(record.path)
            except Exception as exc:  # noqa: BLE001 - logging to MLflow must never fail the run
                warnings.warn(
                    f"logging run {record.path.name} to MLflow failed: {type(exc).__name__}: {exc}", stacklevel=3
                )
    from .notify import notify_url, post_message, run_message

    url = notify_url(notify)
    if url:
        post_message(url, run_message(record))


def execute_run(
    prepared: PreparedRun,
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    timeout: float | None = None,
    notify: str | None = None,
    hide_input: bool = False,
    progress: bool = True,
    sweep: str | None = None,
    rerun_of: str | None = None,
    start_timeout: int = 60,
    prelaunch: bool = False,
    study: str | None = None,
    trial: int | None = None,
    kernel_env: Mapping[str, str] | None = None,
    quiet_exit: bool = False,
) -> RunRecord:
    """Execute a :class:`PreparedRun` into a new run directory and return its record.

    ``hide_input`` leaves code out of ``report.html``; notebook metadata ``workbench.hide_input``
    turns it on for notebooks written as reports (``explain.ipynb``).

    ``prelaunch`` starts a fresh kernel for a following run of the same notebook while this one
    runs (sweep and tune workers use it), and has it import the notebook's modules ahead
    (:mod:`workbench.jobs.warm`). ``quiet_exit`` lets the kernel exit without collecting its heap
    once its cells are done (its open files are flushed first), and returns without waiting for
    the kernel's process to end (it is reaped in the background). ``study`` and ``trial`` tag the
    run as a tuning trial; ``kernel_env`` is set in the kernel before the first cell (the trial's storage). A trial the
    pruner stopped (``optuna.TrialPruned`` out of a cell) ends in state ``pruned``.
    """
    spec = prepared.spec
    hide_input = hide_input or bool(spec.metadata.get("hide_input", False))
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout}")
    runs_dir = (Path(runs_dir) if runs_dir is not None else default_runs_root()).resolve()  # the kernel runs elsewhere
    record = _new_record(prepared, runs_dir, sweep, rerun_of)
    record.study, record.trial = study, trial
    started = time.perf_counter()
    record.write_status()
    write_record(record.path / PARAMS_FILE, prepared.params)
    make_run_subdir(record.path / ARTIFACTS_DIR)
    execution = _execution(prepared, record.path, timeout, prelaunch, kernel_env)
    execution.quiet_exit = quiet_exit
    outcome = _execute(prepared, record.path, execution, hide_input, progress, start_timeout, timeout)
    _finish_record(record, outcome, started)
    record = RunRecord.read(record.path)
    if outcome.interrupted is not None:
        raise outcome.interrupted
    _after_run(record, notify)
    return record


@dataclass
class _Outcome:
    """How the run ended: its error record (None: it succeeded), a report problem, a Ctrl-C to re-raise."""

    executed_path: Path
    report_path: Path
    error: dict[str, Any] | None = None
    report_error: str | None = None
    interrupted: BaseException | None = None


def _new_record(prepared: PreparedRun, runs_dir: Path, sweep: str | None, rerun_of: str | None) -> RunRecord:
    """The record of a new run in a fresh run directory, state ``running``."""
    run_dir, run_id = new_run_dir(runs_dir, prepared.name)
    return RunRecord(
        path=run_dir,
        run_id=run_id,
        name=prepared.name,
        notebook=str(prepared.spec.path),
        state="running",
        owner=current_owner(),
        start=utcnow(),
        sweep=sweep,
        rerun_of=rerun_of,
        host=platform.node(),
        pid=os.getpid(),
    )


def _execution(
    prepared: PreparedRun, run_dir: Path, timeout: float | None, prelaunch: bool, kernel_env: Mapping[str, str] | None
) -> Any:
    """The engine's settings for this run: where the notebook is saved, the kernel's environment, timeout."""
    from . import _engine
    from .warm import notebook_imports

    return _engine.Execution(
        save_path=run_dir / prepared.spec.path.name,
        env=kernel_environment(prepared.seed),
        startup_code=startup_code(run_dir, prepared.seed, kernel_env),
        kernel_log=run_dir / KERNEL_LOG_FILE,
        timeout=timeout,
        prelaunch=prelaunch,
        preload=notebook_imports(prepared.nb) if prelaunch else (),
    )


def _execute(
    prepared: PreparedRun,
    run_dir: Path,
    execution: Any,
    hide_input: bool,
    progress: bool,
    start_timeout: int,
    timeout: float | None,
) -> _Outcome:
    """Run the notebook, save it and render its report; every failure ends up in the outcome."""
    import nbformat

    from .report import prepare_report, render_report

    spec = prepared.spec
    outcome = _Outcome(executed_path=run_dir / spec.path.name, report_path=run_dir / REPORT_FILE)
    report = (outcome.report_path, f"{prepared.name} ({run_dir.name})", hide_input, spec.workdir)
    # Bookkeeping runs beside the kernel: env.json and input hashes while it starts, the report
    # exporter while it works, the report while it shuts down.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="workbench-run") as side:
        records_job = side.submit(_write_env_and_inputs, run_dir, spec, prepared)
        side.submit(prepare_report, hide_input)  # while the kernel works, not after
        report_job: list[Future] = []
        execution.on_cells_done = lambda nb: report_job.append(side.submit(render_report, copy.deepcopy(nb), *report))
        try:
            _papermill(prepared, execution, progress, start_timeout)
        except KeyboardInterrupt as exc:
            outcome.interrupted = exc
            outcome.error = _failure(exc, execution, _executed_nb(execution, prepared.nb), timeout)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded in status.json
            outcome.error = _failure(exc, execution, _executed_nb(execution, prepared.nb), timeout)

        nb = _executed_nb(execution, prepared.nb)
        write_run_file(outcome.executed_path, nbformat.writes(nb).encode("utf-8"))
        records_error = _records_error(records_job)  # waited for before the report, as it writes run files
        outcome.error = outcome.error or records_error
        _final_report(outcome, nb, report_job, report, run_dir.name)
    return outcome


def _papermill(prepared: PreparedRun, execution: Any, progress: bool, start_timeout: int) -> None:
    import nbformat
    import papermill

    from . import _engine

    papermill.execute_notebook(
        nbformat.from_dict(prepared.nb),
        None,
        parameters=prepared.params,
        engine_name=_engine.ENGINE_NAME,
        progress_bar={"desc": prepared.name, "leave": False} if progress else False,
        cwd=str(prepared.spec.workdir),
        start_timeout=start_timeout,
        execution=execution,
    )


def _records_error(records_job: Future) -> dict[str, Any] | None:
    """The error record when env.json or the input hashes could not be written, else None."""
    try:
        records_job.result()
    except Exception as exc:  # noqa: BLE001 - e.g. an input file removed while the run started
        return {
            "kind": "runner",
            "cell": None,
            "ename": type(exc).__name__,
            "evalue": str(exc),
            "summary": f"could not record the run's inputs or environment: {exc}",
        }
    return None


def _final_report(outcome: _Outcome, nb: Any, report_job: list[Future], report: tuple, run_name: str) -> None:
    """The report of the final notebook: the one rendered while the kernel shut down, or a fresh one."""
    from .report import render_report

    error = outcome.error
    try:
        if report_job and (error is None or error["kind"] == "exception"):
            report_job[0].result()  # the notebook it shows is the final one
        else:  # notes were added to the notebook after the cells stopped
            render_report(nb, *report)
    except Exception as exc:  # noqa: BLE001 - a report problem must not hide the run's outcome
        outcome.report_error = f"could not render {REPORT_FILE} for {run_name}: {type(exc).__name__}: {exc}"
        warnings.warn(outcome.report_error, stacklevel=4)  # the caller of execute_run


def _finish_record(record: RunRecord, outcome: _Outcome, started: float) -> None:
    """The run's final state, error, notebook hash, end and duration, written to status.json."""
    error, report_error = outcome.error, outcome.report_error
    if error is None and not outcome.report_path.is_file():
        error = {
            "kind": "report",
            "cell": None,
            "ename": "ReportError",
            "evalue": report_error or f"no {REPORT_FILE}",
            "summary": _one_line(report_error or f"the notebook ran but {REPORT_FILE} was not written"),
        }
        record.state = "degraded"
    elif error and error.get("ename") == PRUNED_ENAME:
        record.state = "pruned"
        error["kind"] = "pruned"
        error["summary"] = _one_line(f"{error['evalue']} in cell {error['cell']}")
    else:
        record.state = "failed" if error else "succeeded"
    record.notebook_sha256 = sha256_file(outcome.executed_path)
    record.error = error
    record.end = utcnow()
    record.duration_s = round(time.perf_counter() - started, 3)
    record.write_status()


def _write_env_and_inputs(run_dir: Path, spec: NotebookSpec, prepared: PreparedRun) -> None:
    from .environment import describe_environment

    write_record(run_dir / INPUTS_FILE, describe_inputs(prepared.inputs))
    write_record(run_dir / ENV_FILE, describe_environment(spec.path.parent, seed=prepared.seed))


def _executed_nb(execution: Any, fallback: Any) -> Any:
    manager = getattr(execution, "manager", None)
    return manager.nb if manager is not None else fallback


def run_notebook(
    notebook: str | os.PathLike[str],
    params: Mapping[str, Any] | None = None,
    *,
    name: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    notify: str | None = None,
    hide_input: bool = False,
    progress: bool = True,
) -> RunRecord:
    """Run ``notebook`` as a job with ``params`` and return the :class:`RunRecord` of its run directory.

    A failing cell, a dead kernel or the ``timeout`` (seconds for the whole run) give a record
    with ``state == "failed"`` and ``error`` saying where and why; bad parameters or missing
    inputs raise ``ValueError`` before anything runs. ``notify`` is a webhook URL (default:
    ``$WORKBENCH_NOTIFY_URL``).

    .. code-block:: python

        rec = run_notebook("notebooks/train.ipynb", {"seed": 1}, runs_dir="runs")
        rec.state, rec.metrics["cv_auc"], rec.path / "report.html"
    """
    prepared = prepare_run(notebook, params, name=name)
    return execute_run(prepared, runs_dir, timeout=timeout, notify=notify, hide_input=hide_input, progress=progress)


@dataclass(frozen=True)
class RerunResult:
    """A rerun and how its recorded metrics compare with the original run's."""

    original: RunRecord
    rerun: RunRecord
    differences: dict[str, tuple[Any, Any]]

    @property
    def identical(self) -> bool:
        return self.rerun.state == "succeeded" and not self.differences


def rerun(
    run: str | os.PathLike[str] | RunRecord,
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    timeout: float | None = None,
    notify: str | None = None,
    allow_changed_inputs: bool = False,
    progress: bool = True,
) -> RerunResult:
    """Execute a run again, same code, parameters, seed and inputs; compare every recorded metric.

    The code is the executed notebook kept in the run directory, so later edits to the source
    notebook do not leak in; it must still have the SHA-256 recorded when the run finished
    (``ValueError`` otherwise: it was changed since, or the run predates notebook hashes).
    Inputs whose SHA-256 changed stop the rerun (``ValueError``) unless ``allow_changed_inputs``.

    .. code-block:: python

        result = rerun("runs/20250101-120000-train-1a2b3c")
        result.identical, result.differences
    """
    original = run if isinstance(run, RunRecord) else find_run(run, runs_dir)
    notebook = original.path / Path(original.notebook).name
    if not notebook.is_file() or notebook.is_symlink():
        raise FileNotFoundError(f"{original.path} holds no executed notebook {notebook.name}; it cannot be rerun")
    check_notebook_hash(original)
    source_dir = Path(original.notebook).parent
    recorded_inputs = original.read_extra(INPUTS_FILE, list, [])
    changes = changed_inputs(recorded_inputs)
    if changes and not allow_changed_inputs:
        raise ValueError(
            f"inputs of {original.path.name} changed since it ran: "
            + "; ".join(changes)
            + "; restore them, or pass allow_changed_inputs=True (--allow-changed-inputs) to rerun anyway"
        )
    prepared = prepare_run(
        notebook, original.params, name=original.name, workdir=source_dir if source_dir.is_dir() else original.path
    )
    prepared = PreparedRun(
        spec=_with_path(prepared.spec, Path(original.notebook)),
        nb=prepared.nb,
        params=prepared.params,
        inputs=prepared.inputs,
        name=prepared.name,
        seed=prepared.seed,
    )
    target = Path(runs_dir) if runs_dir is not None else original.path.parent.parent  # the runs root
    new = execute_run(prepared, target, timeout=timeout, notify=notify, progress=progress, rerun_of=original.path.name)
    return RerunResult(original=original, rerun=new, differences=metric_differences(original.metrics, new.metrics))


def check_notebook_hash(run: RunRecord) -> None:
    """Raise ``ValueError`` unless the notebook kept in ``run`` has the SHA-256 recorded for it."""
    notebook = run.path / Path(run.notebook).name
    if not run.notebook_sha256:
        raise ValueError(
            f"run {run.path.name} records no SHA-256 of its notebook {notebook.name} (it ran before "
            f"notebook hashes were kept), so its code cannot be verified; run the notebook again with "
            f"`workbench run` instead"
        )
    actual = sha256_file(notebook)
    if actual != run.notebook_sha256:
        raise ValueError(
            f"{notebook} was changed after the run finished (SHA-256 {actual[:12]}…, recorded "
            f"{run.notebook_sha256[:12]}…); it is not the code that ran, so it is not rerun. Run the "
            f"notebook again with `workbench run` instead"
        )


def metric_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Metrics whose recorded values are not identical (bit for bit, NaN equal to NaN); absent is ``None``."""
    keys = dict.fromkeys([*a, *b])
    same = lambda x, y: json.dumps(x, sort_keys=True) == json.dumps(y, sort_keys=True)  # noqa: E731
    return {k: (a.get(k), b.get(k)) for k in keys if k not in a or k not in b or not same(a[k], b[k])}


def _with_path(spec: NotebookSpec, path: Path) -> NotebookSpec:
    """The same spec, recorded under the original notebook's path (reruns execute the kept copy)."""
    from dataclasses import replace

    return replace(spec, path=path)
