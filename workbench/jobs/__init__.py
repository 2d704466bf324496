"""Notebook jobs: run directories and the run registry."""

from .records import RunRecord, iter_runs, list_runs, new_run_dir

__all__ = ["RunRecord", "iter_runs", "list_runs", "new_run_dir"]

from .k8s import JobOutcome, KubernetesError, run_k8s
from .k8s_manifest import JobManifests, render_job
from .mlflow_sync import log_run

__all__ += ["JobManifests", "JobOutcome", "KubernetesError", "log_run", "render_job", "run_k8s"]
