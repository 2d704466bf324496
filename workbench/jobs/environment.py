"""``env.json``: what ran a notebook (Python, platform, packages, git state, CPU and GPU)."""

from __future__ import annotations

import functools
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any


@functools.lru_cache(maxsize=1)
def installed_distributions() -> dict[str, str]:
    """Name → version of every installed distribution (sorted by name; cached per process)."""
    from importlib import metadata

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name and name not in found:
            found[name] = dist.version
    return dict(sorted(found.items(), key=lambda kv: kv[0].lower()))


def _git(directory: Path, *args: str) -> str | None:
    if not shutil.which("git"):
        return None
    try:
        proc = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def git_state(directory: str | os.PathLike[str]) -> dict[str, Any]:
    """Commit, branch and dirty flag (uncommitted changes to tracked files) of the repository holding ``directory``."""
    directory = Path(directory)
    root = _git(directory, "rev-parse", "--show-toplevel")
    if root is None:
        return {"repository": None, "commit": None, "branch": None, "dirty": None}
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return {
        "repository": root,
        "commit": _git(directory, "rev-parse", "HEAD"),
        "branch": _git(directory, "rev-parse", "--abbrev-ref", "HEAD"),
        "dirty": bool(status) if status is not None else None,
    }


@functools.lru_cache(maxsize=1)
def cpu_description() -> dict[str, Any]:
    model = platform.processor() or None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"model": model, "count": os.cpu_count(), "available": affinity, "machine": platform.machine()}


@functools.lru_cache(maxsize=1)
def gpu_description() -> list[dict[str, str]]:
    """GPUs reported by ``nvidia-smi`` (empty when there is none or no driver)."""
    from .._gpu import nvidia_smi_query

    rows = nvidia_smi_query(["name", "memory.total", "driver_version"])
    return [{"name": name, "memory": memory, "driver": driver} for name, memory, driver in rows]


def describe_environment(project_dir: str | os.PathLike[str], seed: int | None = None) -> dict[str, Any]:
    """Everything ``env.json`` holds; ``project_dir`` locates the git repository of the notebook."""
    return {
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "platform": platform.platform(),
            "hostname": platform.node(),
        },
        "cpu": cpu_description(),
        "gpu": gpu_description(),
        "git": git_state(project_dir),
        "seed": seed,
        "packages": installed_distributions(),
    }
