"""Kernels forked from a fork server (tune trials, sweep points): each trial's kernel is a fresh
child that ran no code of another run and draws what a new interpreter draws; a killed kernel is
reported as before; kernels that cannot be forked start as new processes; the server dies with its worker."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from workbench.jobs import _fork_provisioner
from workbench.jobs.runner import run_notebook
from workbench.jobs.tune import run_tune
from workbench.runs import iter_runs

ROOT = Path(__file__).resolve().parents[2]
FORKED = ROOT / "tests" / "fixtures" / "notebooks" / "forked.ipynb"
LOG = type("Log", (), {"name": "/tmp/k.log"})()
PLAIN = [sys.executable, "-m", "ipykernel_launcher", "-f", "c.json"]


@pytest.mark.parametrize(
    ("cmd", "kwargs", "reason"),
    [
        (["/usr/bin/env", "R", "--slave"], {"env": {}, "stdout": LOG, "stderr": LOG}, "not a plain ipykernel"),
        (["/usr/bin/python3", *PLAIN[1:]], {"env": {}, "stdout": LOG, "stderr": LOG}, "another interpreter"),
        (PLAIN, {"stdout": LOG, "stderr": LOG}, "no environment"),
        (PLAIN, {"env": {}, "stdout": None, "stderr": LOG}, "stdout is not a log file"),
    ],
)
def test_only_a_plain_ipykernel_of_this_interpreter_into_a_log_is_forked(cmd, kwargs, reason):
    assert reason in _fork_provisioner._not_forkable(cmd, kwargs)
    assert _fork_provisioner._not_forkable(PLAIN, {"env": {}, "stdout": LOG, "stderr": LOG}) is None


def _runs(runs_dir: Path) -> list:
    return sorted((r for r in iter_runs(runs_dir) if r.trial is not None), key=lambda r: r.trial)


@pytest.mark.kernel
def test_forked_trials_equal_a_fresh_kernels_run_and_see_nothing_of_earlier_ones(tmp_path):
    table = run_tune(
        FORKED, {"x": "uniform(0,1)"}, params={"seed": 7}, n_trials=3, metric="score", sampler="random",
        pruner="none", study="forked", runs_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert (table["state"] == "complete").sum() == 3
    trials = _runs(tmp_path)
    assert all(r.metrics["parent"] != os.getpid() for r in trials)  # forked by the server, not started here
    fresh = run_notebook(FORKED, {"x": trials[-1].params["x"], "seed": 7}, runs_dir=tmp_path, progress=False)
    assert fresh.metrics["parent"] == os.getpid()  # the control: a new interpreter
    other_seed = run_notebook(FORKED, {"seed": 8}, runs_dir=tmp_path, progress=False)
    for name in ("order", "keys", "draws", "names"):
        assert {json.dumps(r.metrics[name]) for r in [*trials, fresh]} == {json.dumps(fresh.metrics[name])}, name
    assert other_seed.metrics["draws"] != fresh.metrics["draws"]  # the seeds matter: the check can fail
    assert "words" not in fresh.metrics["names"] and "by_word" not in fresh.metrics["names"]


@pytest.mark.kernel
def test_a_forked_kernel_killed_by_sigkill_is_reported_as_a_new_process_kernel_is(tmp_path):
    with pytest.raises(RuntimeError, match=r"the kernel was killed \(SIGKILL"):
        run_tune(
            FORKED, {"x": "uniform(0,1)"}, params={"die": True}, n_trials=2, metric="score", sampler="random",
            pruner="none", study="killed-kernel", runs_dir=tmp_path, progress=False,
        )  # fmt: skip
    assert len(_runs(tmp_path)) == 3 and all(r.metrics.get("parent") is None for r in _runs(tmp_path))
    fresh = run_notebook(FORKED, {"die": True}, runs_dir=tmp_path, progress=False)
    errors = {json.dumps(r.error, sort_keys=True) for r in [*_runs(tmp_path), fresh]}
    assert len(errors) == 1 and "SIGKILL" in next(iter(errors)), errors


def _processes(pid: int, pattern: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            if pattern in " ".join(proc.cmdline()) and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.mark.kernel
def test_the_fork_server_and_its_kernels_die_with_a_killed_worker(tmp_path):
    code = (
        "from workbench.jobs.tune import run_tune; "
        f"run_tune({str(FORKED)!r}, {{'x': 'uniform(0,1)'}}, params={{'die': False}}, n_trials=200, "
        f"metric='score', study='w', pruner='none', runs_dir={str(tmp_path)!r}, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline, family = time.time() + 90, []
        while time.time() < deadline:  # the server, a trial's kernel and the next one's
            family = _processes(proc.pid, "_forkserver")
            if len(family) >= 3:
                break
            time.sleep(0.2)
        assert len(family) >= 3, family
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        _, alive = psutil.wait_procs(family, timeout=10)
        assert alive == [], alive
    finally:
        proc.kill()


@pytest.mark.kernel
def test_a_fork_server_that_fails_leaves_the_kernel_to_a_new_process(tmp_path, monkeypatch, caplog):
    from jupyter_core.utils import run_sync

    from workbench.jobs import _kernels
    from workbench.jobs.runner import kernel_environment

    def broken(*args, **kwargs):
        raise OSError("the fork server exited")

    monkeypatch.setattr(_fork_provisioner._ForkServer, "fork", broken)
    monkeypatch.setattr(_fork_provisioner, "_broken", set())
    env = kernel_environment(5)
    caplog.set_level("DEBUG", logger=_fork_provisioner.__name__)
    _kernels.launch_spare("python3", tmp_path, env, tmp_path)
    km = _kernels.adopt_spare("python3", tmp_path, env, tmp_path / "kernel.log")
    try:
        assert isinstance(km.provisioner.process, subprocess.Popen) and run_sync(km.is_alive)()
        assert "kernel started as a new process: the fork server exited" in caplog.text
        assert len(_fork_provisioner._broken) == 1  # later kernels like it do not try again
    finally:
        run_sync(km.shutdown_kernel)(now=True)
        _fork_provisioner.close_server()
