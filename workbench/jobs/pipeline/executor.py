"""Run a pipeline locally: steps as recorded runs in dependency order, independent ones side by side.

Steps run in the sweep's worker processes (one kernel per run). A step whose content key
(:mod:`.cache`) matches a successful earlier run reuses it; a failed step marks every step below it
``skipped`` while the other branches go on. ``pipeline.json`` is rewritten atomically after every
change, so a killed pipeline can be resumed: :func:`resume_pipeline` re-runs only what did not finish.
"""

from __future__ import annotations

import os
import platform
import re
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...runs.layout import current_owner, default_runs_root, owner_dirname
from ...runs.pipelines import new_pipeline_dir
from ...runs.records import RunRecord, utcnow
from ..runner import PreparedRun, execute_run, prepare_run
from .cache import cache_key, find_cached
from .record import TRIGGERS, PipelineRun, StepState, find_pipeline_run
from .spec import Pipeline, PipelineError, Step, resolve

_LAUNCH_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def run_pipeline(
    pipeline: Pipeline,
    *,
    runs_dir: str | os.PathLike[str] | None = None,
    workers: int = 1,
    force: Iterable[str] = (),
    trigger: Mapping[str, str] | None = None,
    progress: bool = True,
) -> PipelineRun:
    """Run ``pipeline`` into a new pipeline run folder and return its record.

    Parameters
    ----------
    pipeline : Pipeline
        A parsed pipeline (:func:`~workbench.jobs.pipeline.load_pipeline`).
    runs_dir : path-like, optional
        The runs root (default: ``$WORKBENCH_RUNS_DIR``, else ``runs``).
    workers : int
        Steps run at the same time, each in a worker process.
    force : iterable of str
        Steps (or declared step names, for all their expansions) to run even when cached.
    trigger : mapping, optional
        Who or what started it: ``{"kind": "user" | "schedule" | "webhook", "by": NAME}``
        (default: the current user), plus an optional ``"id"``: the id of the launch that started
        it (the pipelines service finds its run by it).
    progress : bool
        Show a progress bar.

    Returns
    -------
    PipelineRun
        ``state`` is ``succeeded`` when every step has a successful run, else ``failed``.

    Examples
    --------
    .. code-block:: python

        run = run_pipeline(load_pipeline("notebooks/pipeline.yaml"), workers=2)
        print(run.summary())
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    forced, started_by = _forced(pipeline, force), _trigger(trigger)
    root = Path(runs_dir if runs_dir is not None else default_runs_root()).resolve()
    path, run_id = new_pipeline_dir(root, pipeline.name)
    record = PipelineRun(
        path=path,
        run_id=run_id,
        name=pipeline.name,
        state="running",
        steps={s.name: StepState(s.name, s.group, str(s.notebook), list(s.after)) for s in pipeline.steps},
        trigger=started_by,
        source=str(pipeline.source) if pipeline.source else None,
        parameters=dict(pipeline.parameters),
        digest=pipeline.digest,
        definition=pipeline.to_dict(),
        owner=current_owner(),
        start=utcnow(),
        host=platform.node(),
        pid=os.getpid(),
    )
    return _Executor(pipeline, record, root, workers, forced, progress).run()


def resume_pipeline(
    ref: str | os.PathLike[str],
    *,
    runs_dir: str | os.PathLike[str] | None = None,
    workers: int = 1,
    progress: bool = True,
) -> PipelineRun:
    """Finish the pipeline run ``ref`` (folder, folder name or id): only steps without a successful run run again.

    The definition recorded when the run started is what runs (later edits of the pipeline file
    are not picked up). A run whose process is still alive is refused.

    .. code-block:: python

        run = resume_pipeline("20250101-120000-telco-stack-p1a2b3c", workers=2)
    """
    record = find_pipeline_run(ref, runs_dir)
    if record.path.parent.name != owner_dirname(current_owner()):
        raise ValueError(
            f"pipeline run {record.path.name} belongs to {record.owner or record.path.parent.name!r}; only its owner "
            "resumes it (its record names the notebooks to run). Run the pipeline file yourself instead"
        )
    if record.state == "running" and not record.orphaned:
        raise ValueError(
            f"pipeline run {record.path.name} is still running (pid {record.pid} on {record.host}); "
            "wait for it or stop it first"
        )
    if record.state == "succeeded":
        return record
    pipeline = Pipeline.from_dict(record.definition, Path(record.source) if record.source else None)
    for step in record.steps.values():
        if not step.done:
            step.state, step.error, step.attempts = "pending", None, 0
    record.state, record.end, record.duration_s = "running", None, None
    record.host, record.pid, record.resumed = platform.node(), os.getpid(), record.resumed + 1
    return _Executor(pipeline, record, record.path.parent.parent, workers, set(), progress).run()


def _forced(pipeline: Pipeline, force: Iterable[str]) -> set[str]:
    groups = pipeline.groups
    out: set[str] = set()
    for name in force:
        if name in groups:
            out.update(groups[name])
        elif name in {s.name for s in pipeline.steps}:
            out.add(name)
        else:
            known = sorted({*groups, *(s.name for s in pipeline.steps)})
            raise PipelineError(
                f"--force {name}: pipeline {pipeline.name!r} has no step {name!r}; its steps are {known}"
            )
    return out


def _trigger(trigger: Mapping[str, str] | None) -> dict[str, str]:
    if trigger is None:
        return {"kind": "user", "by": current_owner()}
    kind, by, launch = trigger.get("kind"), trigger.get("by"), trigger.get("id")
    if kind not in TRIGGERS or not isinstance(by, str) or not by:
        raise ValueError(f"trigger must be {{'kind': one of {TRIGGERS}, 'by': a name}}, got {dict(trigger)!r}")
    if launch is None:
        return {"kind": kind, "by": by}
    if not isinstance(launch, str) or not _LAUNCH_ID.fullmatch(launch):
        raise ValueError(f"trigger 'id' must be 1-64 letters, digits, '.', '_' or '-', got {launch!r}")
    return {"kind": kind, "by": by, "id": launch}


def _run_step(prepared: PreparedRun, runs_dir: str, timeout: float | None) -> RunRecord:
    return execute_run(prepared, runs_dir, timeout=timeout, progress=False)


@dataclass
class _Executor:
    """One pass over the DAG: launch what is ready, collect what finishes, until nothing is left."""

    pipeline: Pipeline
    record: PipelineRun
    root: Path
    workers: int
    forced: set[str]
    progress: bool
    futures: dict[Future, tuple[Step, PreparedRun]] = field(default_factory=dict)
    pool: Any = None
    bar: Any = None

    def run(self) -> PipelineRun:
        from tqdm.auto import tqdm

        started = time.perf_counter() - (self.record.duration_s or 0)
        self.record.write()
        self.bar = tqdm(
            total=len(self.pipeline.steps),
            initial=sum(s.done for s in self.record.steps.values()),
            desc=f"pipeline {self.pipeline.name}",
            unit="step",
            disable=not self.progress,
        )
        try:
            self._loop()
        except BaseException:
            self._stop()
            self.record.state = "interrupted"
            self._finish(started)
            raise
        finally:
            if self.pool is not None:
                self.pool.__exit__(None, None, None)
            self.bar.close()
        self.record.state = "succeeded" if all(s.done for s in self.record.steps.values()) else "failed"
        self._finish(started)
        return self.record

    def _finish(self, started: float) -> None:
        from .report import write_report

        self.record.end = utcnow()
        self.record.duration_s = round(time.perf_counter() - started, 3)
        self.record.write()
        write_report(self.record)

    def _stop(self) -> None:
        if self.pool is not None:
            self.pool.stop()
        for step, _ in self.futures.values():
            self.record.steps[step.name].state = "failed"
            self.record.steps[step.name].error = "interrupted"

    def _loop(self) -> None:
        while True:
            launched = self._launch_ready()
            if not self.futures:
                if not launched:
                    return
                continue
            finished, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
            for future in finished:
                step, prepared = self.futures.pop(future)
                self._collect(step, prepared, future)

    def _launch_ready(self) -> bool:
        """Start (or reuse, or skip) every pending step whose dependencies are settled; True if any moved."""
        moved = False
        for step in self.pipeline.steps:
            state = self.record.steps[step.name]
            if state.state != "pending":
                continue
            deps = [self.record.steps[d] for d in step.after]
            if any(d.state in ("failed", "skipped") for d in deps):
                blocker = next(d.name for d in deps if d.state in ("failed", "skipped"))
                self._set(state, "skipped", error=f"upstream step {blocker} did not succeed")
                moved = True
            elif all(d.done for d in deps):
                self._start(step, state)
                moved = True
        return moved

    def _runs(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for step in self.pipeline.steps:
            run = self.record.steps[step.name].run
            if run and self.record.steps[step.name].done:
                out.setdefault(step.group, []).append(run)
                out[step.name] = [run]
        return out

    def _start(self, step: Step, state: StepState) -> None:
        runs = self._runs()
        try:
            prepared = prepare_run(step.notebook, resolve(step, runs), name=step.name)
            upstream = [self.record.steps[d].run or "" for d in step.after]
            state.cache_key = cache_key(prepared, upstream, self.root)
        except (ValueError, FileNotFoundError) as exc:
            self._set(state, "failed", error=f"{type(exc).__name__}: {exc}")
            return
        cached = None if step.name in self.forced else find_cached(state.cache_key, self.root, step.name)
        if cached is not None:
            state.run, state.duration_s = str(cached.path), 0.0
            self._set(state, "cached", metrics=_scalars(cached.metrics))
            return
        self._submit(step, state, prepared)

    def _submit(self, step: Step, state: StepState, prepared: PreparedRun) -> None:
        state.attempts += 1
        self._set(state, "running")
        if self.workers == 1:  # in this process, recorded as soon as it ends
            future: Future = Future()
            try:
                future.set_result(_run_step(prepared, str(self.root), step.timeout))
            except Exception as exc:  # noqa: BLE001 - recorded as the step's failure
                future.set_exception(exc)
            self._collect(step, prepared, future)
        else:
            future = self._pool(prepared).pool.submit(_run_step, prepared, str(self.root), step.timeout)
            self.futures[future] = (step, prepared)

    def _pool(self, prepared: PreparedRun) -> Any:
        if self.pool is None:
            from ..sweep import WorkerPool

            self.pool = WorkerPool(prepared.spec.path, self.root, self.workers)
        return self.pool

    def _collect(self, step: Step, prepared: PreparedRun, future: Future) -> None:
        state = self.record.steps[step.name]
        try:
            run = future.result()
        except Exception as exc:  # noqa: BLE001 - a broken worker fails this step only
            run, error = None, f"{type(exc).__name__}: {exc}"
        else:
            state.run, state.duration_s = str(run.path), run.duration_s
            error = None if run.state == "succeeded" else (run.error or {}).get("summary") or f"run {run.state}"
        if error is None:
            self._set(state, "succeeded", metrics=_scalars(run.metrics))
        elif state.attempts <= step.retries:
            self._submit(step, state, prepared)
        else:
            self._set(state, "failed", error=error)

    def _set(self, state: StepState, value: str, error: str | None = None, metrics: dict | None = None) -> None:
        state.state, state.error = value, error
        if metrics is not None:
            state.metrics = metrics
        self.record.write()
        if value not in ("running", "pending"):
            self.bar.update(1)
            self.bar.set_postfix_str(f"{state.name} {value}")


def _scalars(metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool) or v is None}
