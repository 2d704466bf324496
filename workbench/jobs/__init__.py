"""Notebook jobs: run notebooks with validated parameters, sweeps, run directories and the registry.

Everything heavy (papermill, nbconvert, pandas) loads on first use, so a job kernel can import
``workbench.jobs.context`` at start-up for free.
"""

from .context import artifact_path, read_metrics, record, recorded, seed_everything
from .params import NotebookSpec, Parameter, inspect_notebook, validate_params
from .records import RunRecord, compare_runs, default_runs_dir, find_run, iter_runs, list_runs, new_run_dir
from .runner import PreparedRun, RerunResult, execute_run, prepare_run, rerun, run_notebook
from .sweep import expand_grid, sweep

__all__ = ["NotebookSpec", "Parameter", "PreparedRun", "RerunResult", "RunRecord", "artifact_path", "compare_runs",
           "default_runs_dir", "execute_run", "expand_grid", "find_run", "inspect_notebook", "iter_runs", "list_runs",
           "new_run_dir", "prepare_run", "read_metrics", "record", "recorded", "rerun", "run_notebook",
           "seed_everything", "sweep", "validate_params"]  # fmt: skip
