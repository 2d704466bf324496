"""The local pipeline executor: real kernels on a tiny pipeline; caching, failures, kill and resume, hostile records."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from workbench.jobs.pipeline import (
    PipelineRun,
    find_pipeline_run,
    load_pipeline,
    parse_pipeline,
    resume_pipeline,
    run_pipeline,
    scan_pipeline_runs,
)
from workbench.jobs.pipeline.cache import cache_key
from workbench.jobs.runner import prepare_run
from workbench.runs import iter_runs, new_pipeline_dir, owner_dirname, scan_runs
from workbench.runs.layout import current_owner

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "pipeline"
TINY = FIXTURES / "tiny.yaml"


def _pipeline(tmp_path: Path, text: str):
    import yaml

    return parse_pipeline(yaml.safe_load(text), base_dir=FIXTURES, source=str(tmp_path / "p.yaml"))


def _executed(runs: Path) -> int:
    return len(iter_runs(runs))


@pytest.mark.kernel
def test_runs_caches_and_reruns_only_what_changed(tmp_path):
    runs = tmp_path / "runs"
    first = run_pipeline(load_pipeline(TINY), runs_dir=runs, workers=2, progress=False)
    assert first.state == "succeeded", first.summary()
    totals = {name: s.metrics["total"] for name, s in first.steps.items()}
    assert totals == {"make-1": 1, "make-2": 2, "single": 1, "sum": 4}  # 0 + (1 + 2) + 1
    assert _executed(runs) == 4 and first.trigger == {"kind": "user", "by": current_owner()}
    page = (first.path / "report.html").read_text()
    assert page.count('<g class="step" data-state="succeeded">') == 4 and "../" in page

    started = time.perf_counter()
    again = run_pipeline(load_pipeline(TINY), runs_dir=runs, workers=2, progress=False)
    assert time.perf_counter() - started <= 2.0
    assert {s.state for s in again.steps.values()} == {"cached"} and _executed(runs) == 4
    assert {n: s.run for n, s in again.steps.items()} == {n: s.run for n, s in first.steps.items()}

    changed = run_pipeline(load_pipeline(TINY, {"base": "5"}), runs_dir=runs, workers=2, progress=False)
    states = {n: s.state for n, s in changed.steps.items()}
    assert states == {"make-1": "cached", "make-2": "cached", "single": "succeeded", "sum": "succeeded"}
    assert _executed(runs) == 6 and changed.steps["sum"].metrics["total"] == 8

    forced = run_pipeline(load_pipeline(TINY), runs_dir=runs, force=["make-2"], progress=False)
    states = {n: s.state for n, s in forced.steps.items()}
    assert states == {"make-1": "cached", "make-2": "succeeded", "single": "cached", "sum": "succeeded"}

    _one_expansion_reruns_alone(tmp_path, runs)
    scanned, bad = scan_pipeline_runs(runs)
    assert [r.path for r in scanned][:4] == [first.path, again.path, changed.path, forced.path] and not bad
    assert find_pipeline_run(first.run_id, runs).path == first.path
    assert not scan_runs(runs)[1]  # pipeline folders are not invalid runs


def _one_expansion_reruns_alone(tmp_path: Path, runs: Path) -> None:
    """One foreach expansion's parameter changed: that expansion and the step reading it run, nothing else."""
    before = _executed(runs)
    one = run_pipeline(load_pipeline(TINY, {"make-2.label": "two"}), runs_dir=runs, workers=2, progress=False)
    states = {n: s.state for n, s in one.steps.items()}
    assert states == {"make-1": "cached", "make-2": "succeeded", "single": "cached", "sum": "succeeded"}
    assert _executed(runs) == before + 2
    assert [r.params["label"] for r in iter_runs(runs) if r.name == "make-2"][-1] == "two"
    # the same value written in the file (each:) is the same content: no notebook runs
    edited = tmp_path / "tiny.yaml"
    edited.write_text(TINY.read_text().replace("      x: [1, 2]\n", "      x: [1, 2]\n    each: {2: {label: two}}\n"))
    (tmp_path / "add.ipynb").write_bytes((FIXTURES / "add.ipynb").read_bytes())
    same = run_pipeline(load_pipeline(edited), runs_dir=runs, workers=2, progress=False)
    assert {s.state for s in same.steps.values()} == {"cached"} and _executed(runs) == before + 2
    assert {n: s.run for n, s in same.steps.items()} == {n: s.run for n, s in one.steps.items()}


def test_cache_key_follows_inputs_parameters_and_upstream(tmp_path):
    data = tmp_path / "data.txt"
    data.write_text("abc")
    notebook = FIXTURES / "add.ipynb"
    key = cache_key(prepare_run(notebook, {"data": str(data)}), [], tmp_path / "runs")
    assert key == cache_key(prepare_run(notebook, {"data": str(data)}), [], tmp_path / "runs")
    assert key != cache_key(prepare_run(notebook, {"data": str(data), "x": 2}), [], tmp_path / "runs")
    assert key != cache_key(prepare_run(notebook, {"data": str(data)}), ["/runs/a"], tmp_path / "runs")
    data.write_text("abd")
    assert key != cache_key(prepare_run(notebook, {"data": str(data)}), [], tmp_path / "runs")


@pytest.mark.kernel
def test_a_failing_step_skips_its_downstream_and_the_rest_finishes(tmp_path, workbench_cli):
    (tmp_path / "add.ipynb").write_bytes((FIXTURES / "add.ipynb").read_bytes())
    (tmp_path / "p.yaml").write_text(
        """
name: branches
steps:
  bad: {notebook: add.ipynb, parameters: {fail: true}, retries: 1}
  after-bad: {notebook: add.ipynb, parameters: {source: "${steps.bad.run}"}}
  last: {notebook: add.ipynb, after: after-bad}
  good: {notebook: add.ipynb, parameters: {x: 3}}
  after-good: {notebook: add.ipynb, parameters: {source: "${steps.good.run}"}}
"""
    )
    proc = subprocess.run(
        [*workbench_cli, "pipeline", "run", "p.yaml", "--runs-dir", "runs", "--workers", "2", "--no-progress"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("pipeline branches failed: 2 succeeded, 1 failed, 2 skipped (5 steps, ")
    run = find_pipeline_run(lines[0].split()[-1], tmp_path / "runs")
    states = {n: s.state for n, s in run.steps.items()}
    assert states == {
        "bad": "failed",
        "after-bad": "skipped",
        "last": "skipped",
        "good": "succeeded",
        "after-good": "succeeded",
    }
    assert "RuntimeError: this step was told to fail" in run.steps["bad"].error and run.steps["bad"].attempts == 2
    assert run.steps["last"].error == "upstream step after-bad did not succeed"
    assert run.steps["after-good"].metrics["total"] == 4


def _wait_for(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.kernel
@pytest.mark.slow
def test_sigkill_then_resume_matches_an_uninterrupted_run(tmp_path, workbench_cli):
    (tmp_path / "add.ipynb").write_bytes((FIXTURES / "add.ipynb").read_bytes())
    (tmp_path / "p.yaml").write_text(
        """
name: chain
steps:
  a: {notebook: add.ipynb, foreach: {x: [1, 2]}}
  b: {notebook: add.ipynb, parameters: {upstream: "${steps.a.runs}", hold: hold}}
  c: {notebook: add.ipynb, parameters: {source: "${steps.b.run}", x: 10}}
"""
    )
    runs = tmp_path / "runs"
    (tmp_path / "hold").touch()  # step b waits while it exists
    proc = subprocess.Popen(
        [*workbench_cli, "pipeline", "run", "p.yaml", "--runs-dir", "runs", "--workers", "2", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = runs / owner_dirname(current_owner())

    def b_running() -> bool:
        found = scan_pipeline_runs(runs)[0]
        return bool(found) and found[0].steps["b"].state == "running"

    try:
        _wait_for(b_running)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed = scan_pipeline_runs(runs)[0][0]
    assert killed.state == "running" and killed.shown_state == "interrupted"
    assert {n: s.state for n, s in killed.steps.items()}["c"] == "pending"
    (tmp_path / "hold").unlink()

    resumed = resume_pipeline(killed.run_id, runs_dir=runs, progress=False)
    assert resumed.path == killed.path and resumed.state == "succeeded" and resumed.resumed == 1
    assert resumed.steps["a-1"].run == killed.steps["a-1"].run  # finished steps are not run again

    whole = run_pipeline(load_pipeline(tmp_path / "p.yaml"), runs_dir=tmp_path / "other", progress=False)
    assert {n: s.metrics for n, s in resumed.steps.items()} == {n: s.metrics for n, s in whole.steps.items()}
    assert resumed.steps["c"].metrics["total"] == 10 + 1 + 2 + 1
    assert folder.is_dir() and len(list(folder.glob("*-b-r*"))) == 2  # the killed run of b, and its rerun


def _hostile_runs(tmp_path: Path) -> Path:
    runs = tmp_path / "runs"
    good = load_pipeline(TINY)
    path, run_id = new_pipeline_dir(runs, "ok")
    record = PipelineRun(path, run_id, "ok", "succeeded", {}, {"kind": "user", "by": "ana"}, definition=good.to_dict())
    record.write()
    secret = tmp_path / "secret.json"
    secret.write_text(json.dumps({"run_id": "x"}))
    for name, make in {
        "link": lambda p: (p / "pipeline.json").symlink_to(secret),
        "huge": lambda p: (p / "pipeline.json").write_text(" " * (2 << 20)),
        "broken": lambda p: (p / "pipeline.json").write_text("{not json"),
        "typed": lambda p: (p / "pipeline.json").write_text(json.dumps({"steps": [], "state": 3})),
        "fifo": lambda p: os.mkfifo(p / "pipeline.json"),
    }.items():
        folder, _ = new_pipeline_dir(runs, name)
        make(folder)
    target, _ = new_pipeline_dir(tmp_path / "elsewhere", "target")
    (runs / owner_dirname(current_owner()) / "20250101-000000-linked-pabcdef").symlink_to(target)
    return runs


def test_hostile_pipeline_records_are_refused_not_followed(tmp_path, workbench_cli):
    runs = _hostile_runs(tmp_path)
    good, bad = scan_pipeline_runs(runs)
    assert [r.name for r in good] == ["ok"]
    reasons = {p.name.split("-")[2]: why for p, why in bad}
    assert set(reasons) == {"link", "huge", "broken", "typed", "fifo", "linked"}
    assert "symlink" in reasons["link"] and "limit" in reasons["huge"] and "JSON" in reasons["broken"]
    assert "not a plain directory" in reasons["linked"] and "regular file" in reasons["fifo"]
    assert scan_runs(runs) == ([], [])  # the run registry neither lists them nor calls them invalid
    with pytest.raises(ValueError, match="symlink"):
        find_pipeline_run(next(p for p, _ in bad if "link-" in p.name), runs)
    proc = subprocess.run(
        [*workbench_cli, "pipeline", "list", "--runs-dir", str(runs)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and " ok " in proc.stdout and proc.stderr.count("skipped ") == 6


def test_only_the_owner_resumes_a_pipeline_run(tmp_path):
    runs = tmp_path / "runs"
    path, run_id = new_pipeline_dir(runs, "theirs", owner="mallory")
    definition = load_pipeline(TINY).to_dict()
    definition["steps"][0]["notebook"] = str(tmp_path / "evil.ipynb")
    PipelineRun(path, run_id, "theirs", "failed", {}, {"kind": "user", "by": "mallory"}, definition=definition).write()
    with pytest.raises(ValueError, match="belongs to 'mallory'; only its owner resumes it"):
        resume_pipeline(run_id, runs_dir=runs, progress=False)
    assert json.loads((path / "pipeline.json").read_text())["state"] == "failed"


def test_trigger_and_force_are_checked(tmp_path):
    pipeline = load_pipeline(TINY)
    with pytest.raises(ValueError, match="trigger must be"):
        run_pipeline(pipeline, runs_dir=tmp_path, trigger={"kind": "cron", "by": "x"}, progress=False)
    with pytest.raises(ValueError, match="trigger 'id' must be 1-64 letters"):
        run_pipeline(pipeline, runs_dir=tmp_path, trigger={"kind": "user", "by": "x", "id": "../x"}, progress=False)
    with pytest.raises(ValueError, match="--force nope: pipeline 'tiny' has no step 'nope'"):
        run_pipeline(pipeline, runs_dir=tmp_path, force=["nope"], progress=False)
    assert not list(tmp_path.iterdir())  # nothing written for a rejected run
    with pytest.raises(ValueError, match="workers must be at least 1"):
        run_pipeline(pipeline, runs_dir=tmp_path, workers=0)
