"""Sweeps in worker processes with real kernels: the grid, failures, random samples, resume after SIGKILL."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from workbench.jobs import run_sweep
from workbench.runs import current_owner, iter_runs

pytestmark = pytest.mark.kernel
NOTEBOOK = Path(__file__).parents[1] / "fixtures" / "notebooks" / "sweep.ipynb"


def test_grid_in_parallel_with_a_failing_point(tmp_path):
    table = run_sweep(
        NOTEBOOK, {"i": [1, 2, 3]}, text_grid={"lr": ["0.1", "0.25"]}, workers=2, runs_dir=tmp_path, progress=False
    )
    assert len(table) == 6 and table.attrs["sort"] == "score"  # the notebook's workbench.sort metadata
    failed = table[table["state"] == "failed"]
    assert list(zip(failed["param.i"], failed["param.lr"], strict=True)) == [(3, 0.25)]
    assert "this grid point fails on purpose" in failed["error"].iloc[0]
    ok = table[table["state"] == "succeeded"]
    expected = sorted(((i * lr, i, lr) for i in (1, 2, 3) for lr in (0.1, 0.25) if (i, lr) != (3, 0.25)), reverse=True)
    assert list(ok["metric.score"]) == [s for s, _, _ in expected]  # best first
    assert list(ok["param.i"]) == [i for _, i, _ in expected] and table["state"].iloc[-1] == "failed"
    records = iter_runs(tmp_path)
    assert len(records) == 6 and {r.sweep for r in records} == {"sweep-sweep"}
    assert {r.metrics.get("score") for r in records if r.state == "succeeded"} == {s for s, _, _ in expected}
    assert not list(tmp_path.glob(".spare-kernel-*"))  # spare kernels were used or cleaned up


def test_random_sample_of_the_grid_in_one_process(tmp_path, monkeypatch):
    current_owner_before = current_owner()
    table = run_sweep(
        NOTEBOOK,
        {"i": [1, 2], "lr": [0.1, 0.3, 0.5]},
        random=2,
        seed=3,
        runs_dir=tmp_path,
        name="sample",
        sort="-score",
        progress=False,
    )
    assert len(table) == 2 and (table["state"] == "succeeded").all()
    assert table["metric.score"].is_monotonic_increasing  # "-score": lower is better
    again = run_sweep(
        NOTEBOOK,
        {"i": [1, 2], "lr": [0.1, 0.3, 0.5]},
        random=2,
        seed=3,
        runs_dir=tmp_path,
        name="sample",
        resume=True,
        progress=False,
    )
    assert again["resumed"].all()  # same seed, same sample: nothing left to run
    monkeypatch.setenv("JUPYTERHUB_USER", "another-user")  # a teammate's sweep of that name is not one's own
    theirs = run_sweep(
        NOTEBOOK,
        {"i": [1, 2], "lr": [0.1, 0.3, 0.5]},
        random=2,
        seed=3,
        runs_dir=tmp_path,
        name="sample",
        resume=True,
        progress=False,
    )
    assert "resumed" not in theirs.columns and (theirs["state"] == "succeeded").all()  # both ran again
    assert sorted(r.owner for r in iter_runs(tmp_path)) == ["another-user"] * 2 + [current_owner_before] * 2


def _states(runs: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for rec in iter_runs(runs):
        counts[rec.state] = counts.get(rec.state, 0) + 1
    return counts


def test_resume_after_sigkill_runs_only_what_is_missing(tmp_path, workbench_cli):
    runs = tmp_path / "runs"
    cmd = [
        *workbench_cli,
        "sweep",
        str(NOTEBOOK),
        "-p",
        "i",
        "1,2,3,4,5,6",
        "--workers",
        "2",
        "--runs-dir",
        str(runs),
        "--name",
        "killed",
        "--no-progress",
    ]
    # Runs with i > 2 sleep while SWEEP_TEST_SLEEP is set, so exactly two finish before the kill.
    proc = subprocess.Popen(
        cmd,
        env={**os.environ, "SWEEP_TEST_SLEEP": "120"},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while _states(runs).get("succeeded", 0) < 2 or _states(runs).get("running", 0) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, _states(runs)
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    proc.communicate()
    before = {r.path.name for r in iter_runs(runs)}
    assert _states(runs) == {"succeeded": 2, "running": 2}  # killed runs never look finished

    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    new = [r for r in iter_runs(runs) if r.path.name not in before]
    assert len(new) == 4 and all(r.state == "succeeded" for r in new)
    assert sorted(r.params["i"] for r in new) == [3, 4, 5, 6]
    table_lines = [line for line in done.stdout.splitlines() if "killed-" in line]
    assert len(table_lines) == 6 and "6 of 6 runs succeeded (2 from an earlier sweep)" in done.stdout
    scores = [float(line.split()[4]) for line in table_lines]  # run state duration param.i metric.score
    assert scores == pytest.approx(sorted((i * 0.1 for i in range(1, 7)), reverse=True), abs=1e-6)
    leftovers = [r for r in iter_runs(runs) if r.state == "running"]
    assert len(leftovers) == 2 and all(r.end is None and r.orphaned for r in leftovers)


def test_ranking_by_a_metric_the_sweep_did_not_record():
    import pandas as pd

    from workbench.jobs.sweep import _order

    table = pd.DataFrame({"run": ["a", "b"], "metric.cv_rmse": [2.0, 1.0]})
    with pytest.warns(UserWarning, match="ranks runs by 'cv_auc'.*pass sort="):
        same, used = _order(table, "cv_auc", explicit=False)
    assert used is None and list(same["run"]) == ["a", "b"]
    with pytest.raises(ValueError, match=r"no metric 'cv_auc'.*\['cv_rmse'\]"):
        _order(table, "cv_auc", explicit=True)
    ranked, used = _order(table, "-cv_rmse")
    assert used == "-cv_rmse" and list(ranked["run"]) == ["b", "a"]
