"""Pipelines: notebooks as steps of a DAG, declared in a YAML file and run as recorded runs.

:mod:`.spec` reads and validates the file; :mod:`.executor` runs it locally with caching by
content. Names load from their modules on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "executor": ("resume_pipeline", "run_pipeline"),
    "record": ("PipelineRun", "StepState", "find_pipeline_run", "scan_pipeline_runs"),
    "spec": (
        "Pipeline",
        "PipelineError",
        "Reference",
        "Step",
        "Webhook",
        "expansion_key",
        "load_pipeline",
        "parse_pipeline",
        "references",
        "resolve",
    ),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'workbench.jobs.pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_EXPORTS])
