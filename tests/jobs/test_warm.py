"""Warm kernels of tune workers: the notebook's imports done ahead, a kernel per trial all the same
(nothing leaks, the same seeds as a cold kernel), quick exits that keep files whole, no orphans."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import psutil
import pytest

from workbench.jobs import _engine
from workbench.jobs import _kernels as _kernels_module
from workbench.jobs.runner import run_notebook
from workbench.jobs.tune import run_tune
from workbench.jobs.warm import notebook_imports, preload
from workbench.models.trial import open_storage
from workbench.runs import iter_runs

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "notebooks"
WARM = FIXTURES / "warm.ipynb"
TUNE = FIXTURES / "tune.ipynb"


def test_the_notebooks_top_level_imports_are_the_ones_done_ahead():
    nb = json.loads((ROOT / "notebooks" / "train.ipynb").read_text())
    names = notebook_imports(nb)
    assert names[:4] == ("pathlib", "typing", "matplotlib.pyplot", "pandas")
    assert {"workbench", "workbench.models", "workbench.features", "workbench.datasets"} <= set(names)
    assert "colorsys" not in notebook_imports(json.loads(WARM.read_text()))  # inside an `if`: not ahead


def test_modules_of_the_notebooks_own_folder_are_not_imported_ahead(tmp_path, monkeypatch):
    (tmp_path / "reads_the_run.py").write_text("import os\nRUN = os.environ.get('WORKBENCH_RUN_DIR')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert preload(["reads_the_run", "colorsys", "no_such_module_anywhere"]) == ["colorsys"]
    assert "reads_the_run" not in sys.modules


def test_a_quick_exit_keeps_open_files_whole_and_compressed_ones_byte_identical(tmp_path):
    code = """
import gzip, os, sys
from pathlib import Path
from workbench.jobs.warm import quiet_exit
d, quick = Path(sys.argv[1]) / sys.argv[2], sys.argv[2] == "quick"
d.mkdir()
text = open(d / "a.txt", "w")
text.write("kept\\n" * 1000)
raw = open(d / "a.bin", "wb")
raw.write(b"x" * 100)
packed = gzip.GzipFile(d / "a.gz", "wb", mtime=0)
packed.write(b"y" * 5000)
if quick:
    quiet_exit()
packed.close()
os._exit(0)  # no interpreter shutdown: only what was flushed is on disk
"""
    for mode in ("quick", "plain"):
        subprocess.run(
            [sys.executable, "-c", code, str(tmp_path), mode], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)}
        )
    quick, plain = tmp_path / "quick", tmp_path / "plain"
    assert (quick / "a.txt").read_text() == "kept\n" * 1000 and (quick / "a.bin").read_bytes() == b"x" * 100
    assert (plain / "a.txt").read_text() == ""  # the control: without the flush they are lost
    assert (quick / "a.gz").read_bytes() == (plain / "a.gz").read_bytes()  # no sync block added


def _kernels(pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    alive = []
    for child in children:
        try:
            command = " ".join(child.cmdline())  # a forked kernel shows its fork server's command
            if ("ipykernel" in command or "_forkserver" in command) and child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


@pytest.mark.kernel
def test_warm_trials_see_nothing_of_earlier_ones_and_draw_what_a_cold_kernel_draws(tmp_path, monkeypatch):
    left_to_exit = []  # kernels the worker did not wait for before its next trial

    def reap(proc, wait):
        left_to_exit.append(proc)
        _kernels_module.reap(proc, wait)

    monkeypatch.setattr(_engine, "reap", reap)
    table = run_tune(
        WARM, {"x": "uniform(0,1)"}, n_trials=3, metric="score", sampler="random", pruner="none", study="warm", runs_dir=tmp_path,
        progress=False,
    )  # fmt: skip
    assert (table["state"] == "complete").sum() == 3
    trials = sorted((r for r in iter_runs(tmp_path) if r.trial is not None), key=lambda r: r.trial)
    cold = run_notebook(WARM, {"x": trials[-1].params["x"]}, runs_dir=tmp_path, progress=False)
    assert cold.metrics["warm"] is False and all(r.metrics["warm"] is True for r in trials)  # imports done ahead
    assert [r.metrics["learned"] for r in trials] == [False, False, True]  # trial 2 imports what trial 0 did
    assert all(r.metrics["clean"] is True for r in [*trials, cold])  # no variable, no module state of another
    assert {json.dumps(r.metrics["draws"]) for r in [*trials, cold]} == {json.dumps(cold.metrics["draws"])}
    assert _kernels(os.getpid()) == []  # the worker is done: no kernel, no spare left
    # the worker left each kernel to exit in the background, and none outlived it (a kernel slower than
    # the reaper's wait, as on a loaded machine, is killed: its run's files were written before)
    assert len(left_to_exit) == 3 and all(proc.poll() is not None for proc in left_to_exit)


def test_a_kernel_that_does_not_exit_when_asked_is_killed_by_its_reaper():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = time.monotonic()
        _kernels_module.reap(proc, 0.3)
        assert proc.poll() is None  # reaping does not wait
        _kernels_module.reap_all()
        assert proc.poll() is not None and time.monotonic() - started < 5
    finally:
        proc.kill()


@pytest.mark.kernel
def test_a_killed_tune_worker_leaves_no_kernel_behind(tmp_path):
    code = (
        "from workbench.jobs.tune import run_tune; "
        f"run_tune({str(TUNE)!r}, {{'x': 'uniform(0,1)'}}, params={{'sleep': 0.5}}, n_trials=20, study='killed', "
        f"pruner='none', runs_dir={str(tmp_path)!r}, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline, kernels = time.time() + 90, []
        while time.time() < deadline:  # a trial running in its kernel, the next trial's kernel beside it
            kernels = _kernels(proc.pid)
            journal = list(tmp_path.glob("*/study-killed/study.journal"))
            if len(kernels) >= 2 and journal:
                study = optuna.load_study(study_name="killed", storage=open_storage(str(journal[0])))
                if any(t.state.name == "COMPLETE" for t in study.get_trials()):
                    break
            time.sleep(0.2)
        assert len(kernels) >= 2, kernels
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        gone, alive = psutil.wait_procs(kernels, timeout=10)  # each kernel sees its parent gone
        assert alive == [], alive
    finally:
        proc.kill()


@pytest.mark.kernel
def test_a_quick_exit_comes_after_the_report_started_and_the_kernel_is_asked_its_language_once(tmp_path, monkeypatch):
    import threading

    import jupyter_client.session
    import nbformat

    from workbench.jobs import report
    from workbench.jobs.runner import execute_run, prepare_run

    asked, started, seen = [], threading.Event(), []
    message = jupyter_client.session.Session.msg

    def count(session, msg_type, *args, **kwargs):
        asked.append(msg_type)
        return message(session, msg_type, *args, **kwargs)

    monkeypatch.setattr(jupyter_client.session.Session, "msg", count)
    render = report.render_report
    monkeypatch.setattr(report, "render_report", lambda *a, **k: started.set() or render(*a, **k))
    quiet = _engine._Client._quiet_exit
    monkeypatch.setattr(_engine._Client, "_quiet_exit", lambda client: seen.append(started.wait(10)) or quiet(client))
    path = tmp_path / "small.ipynb"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys\nsys.version_info[:2]")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    record = execute_run(prepare_run(path), tmp_path / "runs", progress=False, quiet_exit=True)
    assert record.state == "succeeded" and seen == [True]  # the report was on its way before the quick exit
    # kernel_info only while the kernel became ready (asked again each second until it answers), never after
    assert "kernel_info_request" in asked
    assert "kernel_info_request" not in asked[asked.index("execute_request") :], asked
    executed = nbformat.read(record.path / path.name, as_version=4)
    assert executed.metadata.language_info["version"] == "{}.{}.{}".format(*sys.version_info[:3])
    assert executed.cells[0].outputs[0]["data"]["text/plain"] == repr(sys.version_info[:2])
