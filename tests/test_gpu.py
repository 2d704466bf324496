"""GPU paths on a machine with an NVIDIA GPU; skipped (with the reason) where there is none.

CI has no GPU, so these run where one is lent: the GPU description in ``env.json``, the hub
culler's ``nvidia-smi`` utilisation source under real load, and LightGBM GPU training through
``train_cv``.
"""

import asyncio
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest


def _nvidia_smi_gpus() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=30)
    return [line for line in out.stdout.splitlines() if line.startswith("GPU ")]


GPUS = _nvidia_smi_gpus()
pytestmark = pytest.mark.skipif(not GPUS, reason="no NVIDIA GPU on this machine (nvidia-smi lists none)")


def test_environment_describes_every_gpu():
    from workbench.jobs.environment import gpu_description

    described = gpu_description()
    assert len(described) == len(GPUS)
    for info, line in zip(described, GPUS, strict=True):
        assert info["name"] in line  # "GPU 0: NVIDIA H100 80GB HBM3 (UUID: ...)"


def test_nvidia_smi_utilisation_follows_real_load():
    torch = pytest.importorskip("torch", reason="torch puts load on the GPU for this check")
    from workbench.hub.metrics import GpuServer, NvidiaSmiMetrics

    metrics = NvidiaSmiMetrics()
    table = asyncio.run(metrics.read())
    assert "0" in table and 0.0 <= table["0"] <= 100.0
    stop = threading.Event()

    def burn() -> None:
        a = torch.randn(8192, 8192, device="cuda:0")
        while not stop.is_set():
            a = (a @ a).tanh_()
        torch.cuda.synchronize()

    worker = threading.Thread(target=burn)
    worker.start()
    try:
        time.sleep(3.0)
        server = GpuServer(user="ana", profile="gpu-t4", gpus=1, state={"gpu_devices": ["0"]})
        busy = asyncio.run(metrics.utilisation(server))
    finally:
        stop.set()
        worker.join()
    assert busy is not None and busy > 50.0, f"GPU 0 under a matmul loop reads {busy}% utilisation"


def _lightgbm_opencl_device() -> str:
    """The device LightGBM's OpenCL build picks (its log line), or why it cannot train on one."""
    import sys

    script = (
        "import numpy as np, lightgbm as lgb\n"
        "X = np.random.default_rng(0).normal(size=(500, 4)); y = (X[:, 0] > 0).astype(int)\n"
        "lgb.LGBMClassifier(device_type='gpu', n_estimators=2, verbose=1).fit(X, y)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    for line in (proc.stdout + proc.stderr).splitlines():
        if "Using GPU Device:" in line:
            return line.split("Using GPU Device:", 1)[1].strip()
    return f"none (exit {proc.returncode}: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]})"


def test_lightgbm_gpu_training_through_train_cv(telco_xy):
    import lightgbm as lgb

    from workbench.data import make_folds
    from workbench.models import train_cv

    device = _lightgbm_opencl_device()
    if "nvidia" not in device.lower():
        pytest.skip(
            f"LightGBM's OpenCL build finds no NVIDIA OpenCL device here (it would use: {device}); "
            "install the NVIDIA OpenCL ICD (nvidia-opencl-icd) to train LightGBM on the GPU"
        )
    X, y = telco_xy
    folds = make_folds(y, n_splits=3, random_state=0)
    params = dict(n_estimators=200, learning_rate=0.05, num_leaves=15, random_state=0, verbose=-1)
    gpu = train_cv(lgb.LGBMClassifier(device_type="gpu", **params), X, y, folds, progress=False)
    cpu = train_cv(lgb.LGBMClassifier(**params), X, y, folds, progress=False)
    assert abs(gpu.score - cpu.score) < 0.01 and np.isfinite(gpu.oof).all()
