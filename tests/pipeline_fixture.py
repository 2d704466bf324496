"""A pipeline of the reference pipeline's shape (train fan-out x3 -> stack -> explain -> submission)
for the Argo tests, with small notebooks of its own."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat.v4 import new_code_cell, new_notebook


@dataclass(frozen=True)
class Step:
    name: str
    group: str
    notebook: Path
    parameters: dict[str, Any]
    after: tuple[str, ...] = ()
    profile: str | None = None
    retries: int = 0
    timeout: float | None = None
    foreach: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    webhook: Any = None
    source: Path | None = None
    digest: str = ""


def _notebook(path: Path, parameters: str) -> Path:
    cells = [new_code_cell(parameters, metadata={"tags": ["parameters"]}), new_code_cell("print('done')")]
    nbformat.write(new_notebook(cells=cells), path)
    return path


def reference_pipeline(folder: Path, train_profile: str | None = "cpu-large", schedule="0 3 * * *", webhook="churn"):
    train = _notebook(folder / "train.ipynb", "model = 'lgbm'\nlr = 0.1")
    stack = _notebook(folder / "stack.ipynb", "train_runs: list[str] = []")
    explain = _notebook(folder / "explain.ipynb", "run_dir = ''\ncv_dir = ''")
    submission = _notebook(folder / "submission.ipynb", "run_dir = ''")
    trains = tuple(
        Step(f"train-{m}", "train", train, {"model": m, "lr": 0.05}, profile=train_profile, retries=2, timeout=1800)
        for m in ("lgbm", "logreg", "extratrees")
    )
    rest = (
        Step("stack", "stack", stack, {"train_runs": "${steps.train.runs}"}, profile="cpu-large"),
        Step(
            "explain",
            "explain",
            explain,
            {"run_dir": "${steps.stack.run}", "cv_dir": "${steps.stack.run}/artifacts/cv"},
        ),
        Step("submission", "submission", submission, {"run_dir": "${steps.stack.run}"}, after=("explain",)),
    )
    return Pipeline("churn stack", trains + rest, schedule=schedule, webhook=webhook, digest="0" * 12)


PIPELINE_YAML = """\
name: churn stack
description: three model families, stacked, explained, submitted
schedule: "0 3 * * *"
steps:
  train:
    notebook: train.ipynb
    foreach: {model: [lgbm, logreg, extratrees]}
    parameters: {lr: 0.05}
    profile: gpu-t4
    retries: 2
    timeout: 1800
  stack:
    notebook: stack.ipynb
    parameters: {train_runs: "${steps.train.runs}"}
    profile: cpu-large
  explain:
    notebook: explain.ipynb
    parameters: {run_dir: "${steps.stack.run}", cv_dir: "${steps.stack.run}/artifacts/cv"}
  submission:
    notebook: submission.ipynb
    parameters: {run_dir: "${steps.stack.run}"}
    after: [explain]
"""


def load(source: Path) -> Any:
    """The pipeline file loaded as ``workbench pipeline`` loads it."""
    try:
        from workbench.jobs.pipeline.spec import load_pipeline
    except ImportError:  # the loader's module is not there yet: this fixture's own pipeline
        return reference_pipeline(source.parent, train_profile="gpu-t4")
    return load_pipeline(source, {})


def write_reference_pipeline(folder: Path) -> tuple[Path, Any]:
    """The pipeline file and its notebooks in ``folder``; returns the file and the loaded pipeline."""
    reference_pipeline(folder)
    source = folder / "pipeline.yaml"
    source.write_text(PIPELINE_YAML)
    return source, load(source)
