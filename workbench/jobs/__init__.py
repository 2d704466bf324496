"""Notebook jobs: run notebooks with validated parameters and sweeps (runs are stored by :mod:`workbench.runs`).

Names load from their modules on first use, so a job kernel importing ``workbench.jobs.context``
(what ``workbench.record`` does) pays for nothing else.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "context": ("artifact_path", "current_runs_dir", "read_metrics", "record", "recorded", "seed_everything"),
    "k8s": ("JobOutcome", "KubernetesError", "run_k8s"),
    "k8s_manifest": ("JobManifests", "render_job"),
    "mlflow_sync": ("log_run",),
    "params": ("NotebookSpec", "Parameter", "inspect_notebook", "validate_params"),
    "runner": ("PreparedRun", "RerunResult", "execute_run", "prepare_run", "rerun", "run_notebook"),
    "sweep": ("expand_grid", "run_sweep"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
