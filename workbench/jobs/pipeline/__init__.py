"""Pipelines: notebooks as steps of a DAG, declared in a YAML file and run as recorded runs.

:mod:`.spec` reads and validates the file; :mod:`.executor` runs it locally with caching by
content. Names load from their modules on first use.
"""

from __future__ import annotations

from ..._lazy import lazy_exports

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
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
