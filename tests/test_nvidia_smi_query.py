"""``nvidia-smi`` queries, with a stand-in ``nvidia-smi`` that prints what a two-GPU machine prints."""

import os
import stat

from workbench._gpu import nvidia_smi_query
from workbench.hub.local import detect_gpus
from workbench.jobs.environment import gpu_description

FAKE = """#!/bin/sh
case "$1" in
  --query-gpu=index) printf '0\\n1\\n' ;;
  --query-gpu=name,memory.total,driver_version) printf 'NVIDIA H100 80GB HBM3, 81559 MiB, 580.159.04\\nNVIDIA T4, 15360 MiB\\n' ;;
  *) echo "unknown query $1" >&2; exit 6 ;;
esac
"""


def _fake(tmp_path, monkeypatch):
    exe = tmp_path / "nvidia-smi"
    exe.write_text(FAKE)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")


def test_rows_are_split_and_padded(tmp_path, monkeypatch):
    _fake(tmp_path, monkeypatch)
    rows = nvidia_smi_query(["name", "memory.total", "driver_version"])
    assert rows == [["NVIDIA H100 80GB HBM3", "81559 MiB", "580.159.04"], ["NVIDIA T4", "15360 MiB", ""]]
    assert nvidia_smi_query(["uuid"]) == []  # nvidia-smi failed: no rows, no exception
    gpu_description.cache_clear()
    detect_gpus.cache_clear()
    try:
        assert [g["name"] for g in gpu_description()] == ["NVIDIA H100 80GB HBM3", "NVIDIA T4"]
        assert detect_gpus() == ["0", "1"]
    finally:
        gpu_description.cache_clear()
        detect_gpus.cache_clear()


def test_no_driver_means_no_gpus():
    assert nvidia_smi_query(["index"], command="no-such-nvidia-smi") == []
