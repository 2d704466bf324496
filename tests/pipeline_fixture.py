"""The reference pipeline (``notebooks/pipeline.yaml``: train x3 -> stack -> explain -> submission)
copied with its notebooks into a folder, optionally with its training steps on another profile."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "notebooks" / "pipeline.yaml"


def write_reference_pipeline(
    folder: Path,
    train_profile: str | None = None,
    schedule: str | None = "0 3 * * *",
    webhook: dict[str, Any] | None = None,
) -> tuple[Path, Any]:
    """The pipeline file and its notebooks in ``folder``; returns the file and the loaded pipeline."""
    from workbench.jobs.pipeline import load_pipeline

    data = yaml.safe_load(REFERENCE.read_text())
    for step in data["steps"].values():
        shutil.copy(REFERENCE.parent / step["notebook"], folder / step["notebook"])
    if train_profile:
        data["steps"]["train"]["profile"] = train_profile
    data.pop("schedule", None)
    data.pop("webhook", None)
    if schedule:
        data["schedule"] = schedule
    if webhook:
        data["webhook"] = webhook
    source = folder / "pipeline.yaml"
    source.write_text(yaml.safe_dump(data, sort_keys=False))
    return source, load_pipeline(source)


def reference_pipeline(folder: Path, **kwargs: Any) -> Any:
    """The loaded pipeline of :func:`write_reference_pipeline`."""
    return write_reference_pipeline(folder, **kwargs)[1]
