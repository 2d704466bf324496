"""Running notebooks as jobs with real kernels: the run directory, failures, timeouts, dead kernels, reruns."""

import hashlib
import json
import os
import platform
import random
import re
import shutil
import stat
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import nbformat
import numpy as np
import pytest

from workbench.jobs import rerun, run_notebook
from workbench.jobs.report import render_report
from workbench.runs import RunRecord, current_owner, list_runs, owner_dirname

from .test_notify import Webhook

pytestmark = pytest.mark.kernel
NOTEBOOKS = Path(__file__).parents[1] / "fixtures" / "notebooks"
ROOT = Path(__file__).resolve().parents[2]


def _outputs(nb_path: Path) -> list[str]:
    """Text of each code cell's outputs, in order."""
    nb = nbformat.read(nb_path, as_version=4)
    texts = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            texts.append("".join(o.get("text", "") + o.get("evalue", "") for o in cell.outputs))
    return texts


@pytest.fixture(scope="module")
def hook():
    webhook = Webhook()
    yield webhook
    webhook.close()


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "train.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i % 3}\n" for i in range(500)))
    return path


@pytest.fixture(scope="module")
def job(tmp_path_factory, hook, data_file):
    """One successful run of tests/fixtures/notebooks/job.ipynb, shared by the tests below."""
    runs = tmp_path_factory.mktemp("runs")
    rec = run_notebook(
        NOTEBOOKS / "job.ipynb",
        {"n": 4, "lr": "0.5", "tags": ["a", "b"], "data": str(data_file)},
        runs_dir=runs,
        notify=hook.url,
        progress=False,
    )
    return rec


def test_run_directory_holds_the_whole_run(job, data_file):
    path = job.path
    assert job.state == "succeeded", job.error
    assert re.fullmatch(r"\d{8}-\d{6}-job-r[0-9a-f]{6}", path.name) and path.name.endswith(job.run_id)
    for name in ("job.ipynb", "params.json", "env.json", "inputs.json", "metrics.json", "report.html", "status.json"):
        assert (path / name).is_file(), name
    params = json.loads((path / "params.json").read_text())
    assert params == {
        "n": 4,
        "lr": 0.5,
        "flag": False,
        "tags": ["a", "b"],
        "options": {"depth": 2},
        "data": str(data_file),
        "seed": 7,
    }
    metrics = json.loads((path / "metrics.json").read_text())
    assert metrics["n_times_lr"] == 4 * 0.5 and metrics["tags"] == ["a", "b"] and metrics["depth"] == 2
    assert metrics["cwd"] == str(NOTEBOOKS)  # the kernel runs beside its notebook
    sha = hashlib.sha256(data_file.read_bytes()).hexdigest()
    assert metrics["data_sha256"] == sha
    inputs = json.loads((path / "inputs.json").read_text())
    assert inputs == [
        {"path": str(data_file), "size": data_file.stat().st_size, "sha256": sha, "origin": "parameter data"}
    ]
    assert (path / "artifacts" / "sub" / "out.txt").read_text() == "n=4"
    status = json.loads((path / "status.json").read_text())
    assert status["state"] == "succeeded" and status["error"] is None and status["duration_s"] > 0
    assert status["start"] < status["end"] and status["notebook"] == str(NOTEBOOKS / "job.ipynb")
    assert status["notebook_sha256"] == hashlib.sha256((path / "job.ipynb").read_bytes()).hexdigest()


def test_run_is_readable_by_the_team_and_writable_only_by_its_owner(job):
    """Every file of a run is 0644 and every folder 0755, including the owner folder above it."""
    assert job.path.parent.name == owner_dirname(current_owner())
    assert stat.S_IMODE(job.path.parent.stat().st_mode) == 0o755
    for path in [job.path, *job.path.rglob("*")]:
        if path.name == "kernel.log" or path.is_symlink():
            continue  # written by the kernel process itself, with the umask
        want = 0o755 if path.is_dir() else 0o644
        assert stat.S_IMODE(path.stat().st_mode) == want, (path, oct(path.stat().st_mode))


def test_env_json_matches_an_independent_look(job):
    env = json.loads((job.path / "env.json").read_text())
    assert env["python"]["version"] == platform.python_version()
    assert env["packages"]["papermill"] == metadata.version("papermill")
    assert env["packages"]["lightgbm"] == metadata.version("lightgbm")
    head = shutil.which("git") and subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    if head and head.returncode == 0:
        dirty = (
            subprocess.run(
                ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            != ""
        )
        assert env["git"]["commit"] == head.stdout.strip() and env["git"]["dirty"] is dirty
    assert env["cpu"]["count"] == os.cpu_count() and env["seed"] == 7


def test_seeds_are_fixed_per_run(job):
    metrics = job.metrics
    assert metrics["random"] == random.Random(7).random()
    assert metrics["numpy"] == np.random.RandomState(7).rand()
    hashed = subprocess.run(
        [sys.executable, "-c", "print(hash('abc'))"],
        env={**os.environ, "PYTHONHASHSEED": "7"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert metrics["hash_abc"] == int(hashed)


def test_report_embeds_images_and_can_hide_code(job, tmp_path):
    html = (job.path / "report.html").read_text()
    assert "data:image/png;base64," in html and "SOURCE_ONLY_MARKER" in html and "A plot" in html
    hidden = render_report(nbformat.read(job.path / "job.ipynb", as_version=4), tmp_path / "r.html", hide_input=True)
    text = hidden.read_text()
    assert "SOURCE_ONLY_MARKER" not in text and "data:image/png;base64," in text


def test_notebook_metadata_can_hide_code_in_its_report(tmp_path, data_file):
    nb = nbformat.read(NOTEBOOKS / "job.ipynb", as_version=4)
    nb.metadata.setdefault("workbench", {})["hide_input"] = True
    nbformat.write(nb, tmp_path / "report_only.ipynb")
    shutil.copy(NOTEBOOKS / "job.ipynb", tmp_path / "job.ipynb")
    params = {"n": 1, "data": str(data_file)}
    hidden = run_notebook(tmp_path / "report_only.ipynb", params, runs_dir=tmp_path / "runs", progress=False)
    shown = run_notebook(tmp_path / "job.ipynb", params, runs_dir=tmp_path / "runs", progress=False)
    assert hidden.state == shown.state == "succeeded"
    assert "SOURCE_ONLY_MARKER" not in (hidden.path / "report.html").read_text()
    assert "SOURCE_ONLY_MARKER" in (shown.path / "report.html").read_text()


def test_webhook_receives_the_finished_run(job, hook):
    messages = [body for _, body in hook.received if "job" in body["text"] and str(job.path) in body["text"]]
    assert len(messages) == 1
    assert "succeeded" in messages[0]["text"] and "n_times_lr=2" in messages[0]["text"]


def test_failing_cell(tmp_path, workbench_cli):
    runs = tmp_path / "runs"
    proc = subprocess.run(
        [*workbench_cli, "run", str(NOTEBOOKS / "fails.ipynb"), "--runs-dir", str(runs), "--no-progress"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cell 3 raised ZeroDivisionError: boom in cell three" in lines[0]
    (run_dir,) = runs.glob("*/*")
    rec = RunRecord.read(run_dir)
    assert rec.state == "failed" and rec.error["kind"] == "exception" and rec.error["cell"] == 3
    outputs = _outputs(run_dir / "fails.ipynb")  # parameters, injected parameters, then cells 2..4
    assert outputs[0] == "cell one ran\n" and outputs[2] == "cell two ran\n"
    assert "boom in cell three" in outputs[3] and outputs[4] == ""
    assert (run_dir / "report.html").is_file()


def test_dead_kernel_is_reported_as_such(tmp_path):
    rec = run_notebook(NOTEBOOKS / "dies.ipynb", runs_dir=tmp_path, progress=False)
    assert rec.state == "failed" and rec.error["kind"] == "kernel_died" and rec.error["cell"] == 3
    assert rec.error["exit_code"] == -9 and "killed (SIGKILL" in rec.error["summary"]
    outputs = _outputs(rec.path / "dies.ipynb")
    assert outputs[2] == "before the kernel dies\n" and "the kernel was killed" in outputs[3]


def test_timeout_stops_the_kernel(tmp_path):
    start = time.monotonic()
    rec = run_notebook(NOTEBOOKS / "sleeps.ipynb", runs_dir=tmp_path, timeout=6, progress=False)
    assert time.monotonic() - start < 30  # nowhere near the 60 s the cell sleeps
    assert rec.state == "failed" and rec.error["kind"] == "timeout" and rec.error["cell"] == 3
    assert rec.error["summary"] == "timed out after 6s in cell 3; the kernel was stopped"
    outputs = _outputs(rec.path / "sleeps.ipynb")
    assert outputs[2] == "about to sleep\n" and "timed out" in outputs[3]


def test_rerun_reproduces_metrics_and_a_dead_webhook_changes_nothing(job, hook, data_file, capsys):
    dead = "http://127.0.0.1:9/services/T000/B000/secret-token"
    result = rerun(job.path, notify=dead, progress=False)
    assert result.rerun.state == "succeeded" and result.identical, result.differences
    assert result.rerun.metrics == job.metrics and result.rerun.rerun_of == job.path.name
    assert result.rerun.params == job.params and result.rerun.path.parent == job.path.parent
    assert "secret-token" not in capsys.readouterr().err
    original = data_file.read_bytes()
    data_file.write_bytes(original + b"1,1\n")
    try:
        with pytest.raises(ValueError, match=r"inputs of .* changed since it ran: .*train.csv changed"):
            rerun(job.path, progress=False)
    finally:
        data_file.write_bytes(original)


def test_rerun_refuses_a_notebook_changed_after_its_run(job, tmp_path):
    runs = tmp_path / "runs"
    copy = runs / job.path.parent.name / job.path.name
    shutil.copytree(job.path, copy)
    kept = copy / "job.ipynb"
    nb = json.loads(kept.read_text())
    nb["cells"][2]["source"] = "import os; os.system('touch /tmp/pwned')\n" + "".join(nb["cells"][2]["source"])
    kept.write_text(json.dumps(nb))
    with pytest.raises(
        ValueError, match=r"job.ipynb was changed after the run finished .* it is not the code that ran"
    ):
        rerun(copy, progress=False)
    status = json.loads((copy / "status.json").read_text())
    del status["notebook_sha256"]  # a run recorded before hashes were kept
    (copy / "status.json").write_text(json.dumps(status))
    with pytest.raises(ValueError, match=r"records no SHA-256 of its notebook job.ipynb"):
        rerun(copy, progress=False)
    assert sorted(p.name for p in runs.glob("*/*")) == [job.path.name]  # nothing ran


def test_run_without_its_report_is_degraded(tmp_path):
    """The notebook runs to the end, but report.html cannot be written: the run is degraded, not succeeded."""
    nb = nbformat.v4.new_notebook(
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}
    )
    nb.cells = [
        nbformat.v4.new_code_cell(
            "import os, workbench\n"
            "os.mkdir(os.path.join(os.environ['WORKBENCH_RUN_DIR'], 'report.html'))\n"
            "workbench.record('done', 1)"
        )
    ]
    path = tmp_path / "noreport.ipynb"
    nbformat.write(nb, path)
    with pytest.warns(UserWarning, match="could not render report.html"):
        rec = run_notebook(path, runs_dir=tmp_path / "runs", progress=False)
    assert rec.state == "degraded" and rec.metrics == {"done": 1} and rec.report is None
    assert rec.error["kind"] == "report" and "could not render report.html" in rec.error["summary"]
    assert list_runs(tmp_path / "runs", status="degraded")["run"].tolist() == [rec.path.name]
