"""Asking ``nvidia-smi`` about this machine's NVIDIA GPUs."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence


def nvidia_smi_query(fields: Sequence[str], command: str = "nvidia-smi", timeout: float = 20) -> list[list[str]]:
    """One row per GPU of ``nvidia-smi --query-gpu=FIELDS`` (CSV, no header), each padded to
    ``len(fields)`` values; empty when there is no driver, no GPU or ``nvidia-smi`` fails."""
    exe = shutil.which(command)
    if exe is None:
        return []
    try:
        proc = subprocess.run(
            [exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    rows = []
    for line in proc.stdout.strip().splitlines():
        if line.strip():
            rows.append(([p.strip() for p in line.split(",")] + [""] * len(fields))[: len(fields)])
    return rows
