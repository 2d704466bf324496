"""Parameter sweeps: a grid (or a random sample of it) of runs, executed in parallel worker processes.

Each worker process imports papermill and nbconvert once and runs one notebook after another,
every run in a fresh kernel (runs never share interpreter state). A failed run never stops the
others; ``resume=True`` skips grid points that already succeeded in an earlier sweep of the
same name, so a killed sweep picks up where it was.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random as _random
import signal
import tempfile
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..runs.layout import current_owner, default_runs_root
from ..runs.records import RunRecord
from ..runs.registry import iter_runs
from .inputs import check_inputs, declared_inputs
from .params import (
    PARAMETERS_TAG,
    NotebookSpec,
    Parameter,
    ParamType,
    coerce_value,
    inspect_notebook,
    parse_parameters_cell,
    read_notebook,
    validate_params,
)
from .runner import PreparedRun, execute_run, kernel_environment, run_seed
from .startup import skip_unused_optional_imports

if TYPE_CHECKING:
    import pandas as pd


def expand_grid(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the values in ``grid``, the first name varying slowest.

    >>> expand_grid({"lr": [0.1, 0.3], "leaves": [15]})
    [{'lr': 0.1, 'leaves': 15}, {'lr': 0.3, 'leaves': 15}]
    """
    for name, values in grid.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"sweep values of {name!r} must be a non-empty list, got {values!r}")
    names = list(grid)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*(grid[n] for n in names))]


def _key(values: Mapping[str, Any]) -> str:
    return json.dumps(values, sort_keys=True)


def _row(record: RunRecord, swept: Sequence[str]) -> dict[str, Any]:
    row: dict[str, Any] = {"run": record.path.name, "state": record.state, "duration_s": record.duration_s}
    row.update({f"param.{k}": record.params.get(k) for k in swept})
    row.update(
        {
            f"metric.{k}": v
            for k, v in record.metrics.items()
            if isinstance(v, int | float | str) and not isinstance(v, bool)
        }
    )
    row["error"] = (record.error or {}).get("summary")
    return row


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this worker when the sweep process dies (its kernels then exit too)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _first_kernel(notebook: Path, runs_dir: Path, seed: int | None) -> None:
    """Start the worker's first kernel before importing papermill, so the two overlap."""
    from ._kernels import launch_spare

    try:
        data = json.loads(notebook.read_text())
        kernel = data["metadata"]["kernelspec"]["name"]
        if seed is None:
            cell = next(c for c in data["cells"] if PARAMETERS_TAG in c.get("metadata", {}).get("tags", []))
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            seed = run_seed({k: p.default for k, p in parse_parameters_cell(source).items() if p.has_default})
    except (OSError, ValueError, KeyError, StopIteration):
        return  # the run will start its own kernel
    log_dir = runs_dir if runs_dir.is_dir() else Path(tempfile.gettempdir())
    launch_spare(kernel, notebook.resolve().parent, kernel_environment(seed), log_dir)


def _worker_init(notebook: str, runs_dir: str, seed: int | None) -> None:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the sweep process's business
    skip_unused_optional_imports()
    _first_kernel(Path(notebook), Path(runs_dir), seed)
    from . import _engine  # noqa: F401 - papermill, nbclient and jupyter_client, once per worker


def _seed_hint(given: tuple[str, Any] | None) -> int | None:
    """The first run's seed when the sweep sets it (``None``: the notebook's default)."""
    if given is None:
        return None
    try:
        return run_seed({"seed": coerce_value(Parameter("seed", ParamType("int")), given[1], text=given[0] == "text")})
    except ValueError:
        return None


def _ready() -> int:
    return os.getpid()


def _run_point(prepared: PreparedRun, runs_dir: str, options: dict[str, Any]) -> RunRecord:
    return execute_run(prepared, runs_dir, progress=False, **options)


def _order(table: pd.DataFrame, sort: str | None, explicit: bool = True) -> tuple[pd.DataFrame, str | None]:
    """Best first by ``sort`` (``-name``: lower is better); default: the first numeric metric, descending.

    A missing metric is an error when the user asked for it (``explicit``); when it comes from the
    notebook's ``workbench.sort`` (e.g. ``cv_auc`` of a notebook that trained a regression), the
    table stays in run order with a warning.
    """
    metric_cols = [c for c in table.columns if c.startswith("metric.")]
    if sort is None:
        numeric = [c for c in metric_cols if table[c].map(lambda v: isinstance(v, int | float)).any()]
        if not numeric:
            return table, None
        sort = numeric[0].removeprefix("metric.")
    column = f"metric.{sort.lstrip('-')}"
    if column not in table:
        known = sorted(c.removeprefix("metric.") for c in metric_cols)
        if not explicit:
            warnings.warn(
                f"the notebook ranks runs by {sort.lstrip('-')!r}, which this sweep did not record "
                f"(recorded: {known}); pass sort= to rank them",
                stacklevel=2,
            )
            return table, None
        raise ValueError(f"no metric {sort.lstrip('-')!r} was recorded by this sweep; recorded metrics: {known}")
    ordered = table.sort_values(column, ascending=sort.startswith("-"), na_position="last", kind="stable")
    return ordered.reset_index(drop=True), sort


def run_sweep(
    notebook: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]] | None = None,
    *,
    text_grid: Mapping[str, Sequence[str]] | None = None,
    random: int | None = None,
    seed: int = 0,
    workers: int = 1,
    name: str | None = None,
    runs_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    timeout: float | None = None,
    notify: str | None = None,
    hide_input: bool = False,
    sort: str | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``notebook`` once per point of ``grid`` and return a table, best run first.

    ``grid`` maps parameter names to lists of typed values; ``text_grid`` to lists of
    command-line strings (coerced like ``workbench run -p``). ``random=K`` runs K points drawn
    from the grid with ``seed``. Every point is validated before the first run starts. The table
    has ``run``, ``state``, ``duration_s``, ``param.*`` of the swept names, ``metric.*`` and
    ``error``; ``sort`` names the ranking metric (default: the notebook's ``workbench.sort``
    metadata, else the first metric; prefix ``-`` when lower is better).

    .. code-block:: python

        run_sweep("notebooks/train.ipynb", {"learning_rate": [0.03, 0.1], "num_leaves": [8, 31]}, workers=2)
    """
    from .notify import notify_url, post_message, sweep_message

    plan = _plan(notebook, grid, text_grid, random, seed, workers, name, runs_dir)
    with contextlib.ExitStack() as stack:
        # Workers start (a kernel, then papermill) while this process validates every point.
        pool = stack.enter_context(_pool(plan)) if plan.workers > 1 else None
        spec, prepared_runs = _prepare_points(plan)
        rows = _resumed_rows(plan, prepared_runs) if resume else {}
        options = {"timeout": timeout, "hide_input": hide_input, "sweep": plan.name}
        started = time.perf_counter()
        _run_points(plan, prepared_runs, rows, pool, options, progress)

    import pandas as pd

    table = pd.DataFrame([rows[i] for i in range(len(prepared_runs))])
    if "resumed" in table:
        table["resumed"] = table["resumed"].fillna(False).astype(bool)
    table, sort_used = _order(table, sort or spec.sort, explicit=sort is not None)
    url = notify_url(notify)
    if url:
        elapsed = time.perf_counter() - started
        post_message(url, sweep_message(plan.name, table.to_dict("records"), elapsed, str(plan.runs_path), sort_used))
    table.attrs["sort"] = sort_used
    table.attrs["name"] = plan.name
    return table


@dataclass(frozen=True)
class _SweepPlan:
    """What a sweep runs: the grid points (each value tagged ``typed`` or ``text``), where, on how many workers."""

    path: Path
    points: list[dict[str, tuple[str, Any]]]
    name: str
    swept: list[str]
    runs_path: Path
    workers: int  # worker processes; 1 runs every point in this process


def _plan(
    notebook: str | os.PathLike[str],
    grid: Mapping[str, Sequence[Any]] | None,
    text_grid: Mapping[str, Sequence[str]] | None,
    random: int | None,
    seed: int,
    workers: int,
    name: str | None,
    runs_dir: str | os.PathLike[str] | None,
) -> _SweepPlan:
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    path = Path(notebook)
    axes = {
        **{k: [("typed", v) for v in vals] for k, vals in (grid or {}).items()},
        **{k: [("text", v) for v in vals] for k, vals in (text_grid or {}).items()},
    }
    points = expand_grid(axes) if axes else [{}]
    if random is not None:
        if random < 1:
            raise ValueError(f"random= needs a positive number of runs, got {random}")
        if random < len(points):
            points = _random.Random(seed).sample(points, random)
    return _SweepPlan(
        path=path,
        points=points,
        name=name or f"{path.stem}-sweep",
        swept=list(axes),
        runs_path=Path(runs_dir) if runs_dir is not None else default_runs_root(),
        workers=min(workers, len(points)) if workers > 1 and len(points) > 1 else 1,
    )


class WorkerPool:
    """Worker processes for runs of ``notebook`` (each imports papermill once and starts its first
    kernel at once, seeded ``seed`` or the notebook's default); ``pool`` is their
    :class:`~concurrent.futures.ProcessPoolExecutor`, ``processes`` the processes to stop on Ctrl-C.
    Sweeps, pipelines and tuning run their runs here."""

    def __init__(self, notebook: Path, runs_path: Path, workers: int, seed: int | None = None) -> None:
        import multiprocessing

        before = set(multiprocessing.active_children())
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            initializer=_worker_init,
            initargs=(str(notebook), str(runs_path), seed),
            mp_context=multiprocessing.get_context("spawn"),
        )
        for _ in range(workers):  # one task each, so every worker starts now
            self.pool.submit(_ready)
        self.processes = [p for p in multiprocessing.active_children() if p not in before]

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.pool.shutdown(wait=True)

    def stop(self) -> None:
        """Drop the queued runs and end the running ones now (their kernels die with them)."""
        self.pool.shutdown(wait=False, cancel_futures=True)
        for proc in self.processes:
            proc.terminate()


def _pool(plan: _SweepPlan) -> WorkerPool:
    """The sweep's workers; their first kernels get the first point's seed."""
    return WorkerPool(plan.path, plan.runs_path, plan.workers, _seed_hint(plan.points[0].get("seed")))


def _prepare_points(plan: _SweepPlan) -> tuple[NotebookSpec, list[PreparedRun]]:
    """Every point validated against the notebook's parameters and inputs before the first run starts."""
    nb = read_notebook(plan.path)
    spec = inspect_notebook(plan.path, nb)
    prepared_runs = []
    for point in plan.points:
        values = validate_params(
            spec,
            {k: v for k, (src, v) in point.items() if src == "typed"},
            {k: v for k, (src, v) in point.items() if src == "text"},
        )
        inputs = declared_inputs(spec, values)
        check_inputs(inputs)
        prepared_runs.append(
            PreparedRun(spec=spec, nb=nb, params=values, inputs=inputs, name=plan.name, seed=run_seed(values))
        )
    return spec, prepared_runs


def _resumed_rows(plan: _SweepPlan, prepared_runs: list[PreparedRun]) -> dict[int, dict[str, Any]]:
    """Table rows of the points that already succeeded in the caller's own earlier sweep of this name."""
    me = current_owner()
    done = {
        _key(rec.params): rec
        for rec in iter_runs(plan.runs_path)
        if rec.owner == me
        and rec.sweep == plan.name
        and rec.state == "succeeded"
        and Path(rec.notebook).name == plan.path.name
    }
    rows: dict[int, dict[str, Any]] = {}
    for i, prepared in enumerate(prepared_runs):
        rec = done.get(_key(prepared.params))
        if rec is not None:
            rows[i] = {**_row(rec, plan.swept), "resumed": True}
    return rows


def _run_points(
    plan: _SweepPlan,
    prepared_runs: list[PreparedRun],
    rows: dict[int, dict[str, Any]],
    pool: WorkerPool | None,
    options: dict[str, Any],
    progress: bool,
) -> None:
    """Run every point without a row yet, filling ``rows`` as runs finish."""
    from tqdm.auto import tqdm

    todo = [i for i in range(len(prepared_runs)) if i not in rows]
    bar = tqdm(total=len(prepared_runs), initial=len(rows), desc=f"sweep {plan.name}", unit="run", disable=not progress)
    runs_path = str(plan.runs_path)
    if todo and pool is None:
        for k, i in enumerate(todo):
            record = _run_point(prepared_runs[i], runs_path, {**options, "prelaunch": k < len(todo) - 1})
            rows[i] = _row(record, plan.swept)
            bar.update(1)
    elif todo:
        assert pool is not None
        # A worker starts a spare kernel for its next run unless the runs left will all be taken.
        futures: dict[Future, int] = {
            pool.pool.submit(
                _run_point, prepared_runs[i], runs_path, {**options, "prelaunch": k < len(todo) - plan.workers}
            ): i
            for k, i in enumerate(todo)
        }
        try:
            _collect(futures, prepared_runs, rows, plan.swept, bar)
        except KeyboardInterrupt:
            pool.stop()
            raise
    bar.close()


def _collect(
    futures: dict[Future, int],
    prepared_runs: list[PreparedRun],
    rows: dict[int, dict[str, Any]],
    swept: list[str],
    bar: Any,
) -> None:
    """A row per finished run, in the order they finish; a run that raised is a failed row."""
    pending = set(futures)
    while pending:
        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            i = futures[future]
            try:
                rows[i] = _row(future.result(), swept)
            except Exception as exc:  # noqa: BLE001 - one broken run never stops the sweep
                rows[i] = {
                    "run": None,
                    "state": "failed",
                    "duration_s": None,
                    **{f"param.{k}": prepared_runs[i].params.get(k) for k in swept},
                    "error": f"{type(exc).__name__}: {exc}",
                }
            bar.update(1)
