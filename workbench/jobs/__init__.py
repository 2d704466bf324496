"""Notebook jobs: run directories and the run registry."""

from .records import RunRecord, iter_runs, list_runs, new_run_dir

__all__ = ["RunRecord", "iter_runs", "list_runs", "new_run_dir"]
