"""The record of a pipeline run: each step's state and run, who started it, how it ended.

Written to ``pipeline.json`` (atomically, after every change) by the process running the pipeline
and read back through :mod:`workbench.runs.pipelines` (no symlinks, size-capped), since pipeline
run folders sit on the shared runs volume.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...runs.layout import current_owner, default_runs_root, owner_dirname
from ...runs.pipelines import PIPELINE_FILE, read_pipeline_record, scan_pipelines
from ...runs.records import process_gone, write_record

if TYPE_CHECKING:
    import pandas as pd

STEP_STATES = ("pending", "running", "succeeded", "cached", "failed", "skipped")
PIPELINE_STATES = ("running", "succeeded", "failed", "interrupted")
TRIGGERS = ("user", "schedule", "webhook")
DONE = ("succeeded", "cached")


@dataclass
class StepState:
    """One step of a pipeline run: its state, the run that holds its results, attempts and timing."""

    name: str
    group: str
    notebook: str
    after: list[str]
    state: str = "pending"
    run: str | None = None
    cache_key: str | None = None
    attempts: int = 0
    duration_s: float | None = None
    error: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """True when the step has a successful run (executed now or reused)."""
        return self.state in DONE


@dataclass
class PipelineRun:
    """A pipeline run folder and what ``pipeline.json`` says about it."""

    path: Path
    run_id: str
    name: str
    state: str
    steps: dict[str, StepState]
    trigger: dict[str, str]
    source: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    digest: str = ""
    definition: dict[str, Any] = field(default_factory=dict)
    owner: str = ""
    start: str | None = None
    end: str | None = None
    duration_s: float | None = None
    host: str = ""
    pid: int | None = None
    resumed: int = 0

    def write(self) -> None:
        """Write ``pipeline.json`` atomically (team-readable)."""
        data = {k: v for k, v in asdict(self).items() if k not in ("path", "owner")}
        write_record(self.path / PIPELINE_FILE, data)

    @property
    def orphaned(self) -> bool:
        """Marked running, but the process that ran it on this machine is gone (killed or crashed)."""
        return process_gone(self.state, self.pid, self.host)

    @property
    def shown_state(self) -> str:
        """The state to show: ``interrupted`` for a run whose process died."""
        return "interrupted" if self.orphaned else self.state

    def counts(self) -> dict[str, int]:
        """How many steps are in each state."""
        out: dict[str, int] = {}
        for step in self.steps.values():
            out[step.state] = out.get(step.state, 0) + 1
        return out

    def summary(self) -> str:
        """One line: the pipeline, its state, step counts, time and where it is.

        >>> run = PipelineRun(Path("/r/a/x-p1"), "p1", "demo", "failed", {
        ...     "a": StepState("a", "a", "a.ipynb", [], "succeeded"), "b": StepState("b", "b", "b.ipynb", ["a"], "failed")},
        ...     {"kind": "user", "by": "ana"}, duration_s=1.5)
        >>> run.summary()
        'pipeline demo failed: 1 succeeded, 1 failed (2 steps, 1.5s) x-p1'
        """
        counts = self.counts()
        parts = ", ".join(
            f"{counts[s]} {s}"
            for s in ("succeeded", "cached", "failed", "skipped", "pending", "running")
            if s in counts
        )
        took = f", {self.duration_s:.1f}s" if self.duration_s is not None else ""
        return f"pipeline {self.name} {self.shown_state}: {parts} ({len(self.steps)} steps{took}) {self.path.name}"

    def to_frame(self) -> pd.DataFrame:
        """One row per step: name, state, run folder, attempts, duration, error, metrics as ``metric.X``."""
        import pandas as pd

        rows = []
        for s in self.steps.values():
            row = {
                "step": s.name,
                "state": s.state,
                "run": Path(s.run).name if s.run else None,
                "attempts": s.attempts,
                "duration_s": s.duration_s,
                "error": s.error,
            }
            row.update({f"metric.{k}": v for k, v in s.metrics.items()})
            rows.append(row)
        return pd.DataFrame(rows)

    def _repr_html_(self) -> str:
        return f"<p>{self.summary()}</p>" + self.to_frame()._repr_html_()

    @classmethod
    def from_record(cls, path: Path, owner: str, data: dict[str, Any]) -> PipelineRun:
        """Build from a ``pipeline.json`` read through :mod:`workbench.runs.pipelines`; ValueError when malformed."""
        try:
            steps = {name: StepState(**entry) for name, entry in data.pop("steps").items()}
            run = cls(path=path, owner=owner, steps=steps, **data)
        except (TypeError, KeyError, AttributeError) as exc:
            raise ValueError(f"{path.name}/{PIPELINE_FILE} is not a pipeline record ({exc})") from None
        _check_types(run)
        return run

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> PipelineRun:
        """Read the pipeline run folder ``path`` (ValueError for an unsafe or malformed record)."""
        full = Path(os.path.abspath(path))
        root, owner_folder = full.parent.parent, full.parent.name
        data = read_pipeline_record(root, owner_folder, full.name)
        from ...runs.layout import owner_from_dirname

        return cls.from_record(full, owner_from_dirname(owner_folder) or "", data)


def _check_types(run: PipelineRun) -> None:
    if run.state not in PIPELINE_STATES or not isinstance(run.name, str) or not isinstance(run.trigger, dict):
        raise ValueError(f"{run.path.name}/{PIPELINE_FILE} has an unknown state or malformed fields")
    for step in run.steps.values():
        if step.state not in STEP_STATES or not (step.run is None or isinstance(step.run, str)):
            raise ValueError(f"{run.path.name}/{PIPELINE_FILE}: step {step.name!r} is malformed")
        if not isinstance(step.metrics, dict) or not isinstance(step.after, list):
            raise ValueError(f"{run.path.name}/{PIPELINE_FILE}: step {step.name!r} is malformed")


def scan_pipeline_runs(
    runs_dir: str | os.PathLike[str] | None = None,
) -> tuple[list[PipelineRun], list[tuple[Path, str]]]:
    """Every readable pipeline run below the runs root (oldest first) and, apart, the unreadable ones."""
    good, bad = scan_pipelines(runs_dir if runs_dir is not None else default_runs_root())
    runs = []
    for path, owner, data in good:
        try:
            runs.append(PipelineRun.from_record(path, owner, data))
        except ValueError as exc:
            bad.append((path, str(exc)))
    # Folder names carry the start second; the record the millisecond, which orders runs of one second.
    runs.sort(key=lambda r: (r.path.name.split("-", 2)[:2], r.start or "", r.path.name))
    return runs, bad


def find_pipeline_run(ref: str | os.PathLike[str], runs_dir: str | os.PathLike[str] | None = None) -> PipelineRun:
    """A pipeline run by folder path, folder name or id (``p1a2b3c``), one's own first.

    Raises
    ------
    FileNotFoundError
        No pipeline run matches.
    ValueError
        Its record is unsafe or malformed.
    """
    path = Path(ref)
    if (path / PIPELINE_FILE).exists() or path.is_symlink():
        return PipelineRun.read(path)
    runs, _ = scan_pipeline_runs(runs_dir)
    text = str(ref)
    matches = [r for r in runs if text in (r.path.name, r.run_id)]
    mine = [r for r in matches if r.path.parent.name == owner_dirname(current_owner())]
    if mine or matches:
        return (mine or matches)[-1]
    raise FileNotFoundError(
        f"no pipeline run {text!r} in {runs_dir or default_runs_root()}; `workbench pipeline list` shows them"
    )
