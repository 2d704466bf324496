"""Run storage: the runs root, per-owner folders and the files of one run.

This layer sits below jobs, hub and deploy: everything that writes, reads or serves runs goes
through it. Names load from their modules on first use.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "layout": (
        "DEFAULT_RUNS_DIR",
        "KUBE_RUNS_MOUNT",
        "RUNS_ENV",
        "STATES",
        "current_owner",
        "default_runs_root",
        "owner_dir",
        "owner_dirname",
        "owner_from_dirname",
    ),
    "records": (
        "ARTIFACTS_DIR",
        "CV_ARTIFACT",
        "DIR_MODE",
        "ENV_FILE",
        "FILE_MODE",
        "INPUTS_FILE",
        "InvalidRunError",
        "KERNEL_LOG_FILE",
        "METRICS_FILE",
        "OOF_ARTIFACT",
        "PARAMS_FILE",
        "REPORT_FILE",
        "RUN_ID_PREFIX",
        "RunRecord",
        "STATUS_FILE",
        "TEST_PRED_ARTIFACT",
        "TRAINING_DATA_ARTIFACT",
        "check_status",
        "folder_name",
        "make_run_subdir",
        "new_run_dir",
        "sha256_file",
        "utcnow",
        "write_record",
        "write_run_file",
    ),
    "pipelines": (
        "PIPELINE_FILE",
        "PIPELINE_ID_PREFIX",
        "is_pipeline_folder",
        "new_pipeline_dir",
        "read_pipeline_record",
        "scan_pipelines",
    ),
    "registry": ("InvalidRun", "compare_runs", "find_run", "iter_runs", "list_runs", "scan_runs"),
    "safe_open": (
        "MAX_RECORD_BYTES",
        "UnsafePathError",
        "list_dir",
        "open_dir",
        "read_at",
        "read_file",
        "read_json",
        "relative_parts",
    ),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
