"""Tuning notebooks: the space checked before any kernel, the journal under two writers, stale trials,
pruned trials stopping their kernel, resuming after a SIGKILL, and the Telco acceptance study."""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from workbench.cli import main
from workbench.hub.reports.app import read_report, run_rows
from workbench.jobs.tune import run_tune, show_study
from workbench.jobs.tune.storage import HEARTBEAT_ATTR, fail_stale, trial_id
from workbench.models.trial import open_storage
from workbench.runs import iter_runs

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "notebooks" / "train.ipynb"
NOTEBOOK = ROOT / "tests" / "fixtures" / "notebooks" / "tune.ipynb"
FAST_TRAIN = ["-p", "n_estimators", "60", "-p", "early_stopping_rounds", "20", "-p", "n_splits", "3"]


@pytest.mark.parametrize(
    "args, named",
    [
        (["-s", "colour=choice(red,blue)"], "no parameter 'colour'"),
        (["-s", "num_leaves=uniform(1,10)"], "num_leaves"),
        (["-s", "model=choice(lgbm,xgboost)"], "'xgboost' is not a value of model"),
        (["-s", "learning_rate=loguniform(0.3,0.01)"], "learning_rate: the range loguniform(0.3,0.01) is empty"),
        (["-s", "num_leaves=int(8,8)"], "num_leaves: the range int(8,8) is empty"),
        (["-s", "learning_rate=loguniform(0,0.3)"], "needs a positive low bound"),
        (["-s", "num_leaves=int(8,64)", "--metric", "cv_f1"], "metric 'cv_f1' is not one train.ipynb records"),
        (["-s", "num_leaves=int(8,64)", "-p", "num_leaves", "8"], "num_leaves is both set (-p) and searched (-s)"),
        (["-s", "num_leaves=octaves(1,2)"], "unknown kind 'octaves'"),
    ],
)
def test_a_bad_space_is_an_error_naming_it_before_any_kernel(tmp_path, capsys, monkeypatch, args, named):
    def no_kernel(*a, **k):
        raise AssertionError("a kernel was started for a bad space")

    monkeypatch.setattr("workbench.jobs.tune.worker.execute_run", no_kernel)
    runs = tmp_path / "runs"
    assert main(["tune", str(TRAIN), *args, "--runs-dir", str(runs), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert named in err and err.startswith("workbench tune: error:")
    assert not runs.exists()  # nothing written


def _hammer(path: str, worker: int, n: int) -> None:
    storage = open_storage(path)
    study = optuna.load_study(study_name="shared", storage=storage)
    for i in range(n):
        trial = study.ask()
        trial.suggest_float("x", 0, 1)
        trial.set_user_attr("writer", worker)
        trial.report(float(i), 0)
        study.tell(trial, float(worker * 1000 + i))


def test_two_worker_processes_on_one_journal_file_never_corrupt_it(tmp_path):
    path = str(tmp_path / "study.journal")
    optuna.create_study(study_name="shared", storage=open_storage(path), direction="maximize")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_hammer, args=(path, w, 40)) for w in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    trials = optuna.load_study(study_name="shared", storage=open_storage(path)).get_trials()
    assert sorted(t.number for t in trials) == list(range(80))  # none lost, none given twice
    assert all(t.state.name == "COMPLETE" for t in trials)
    for w in (1, 2):  # every write of each writer is there, in its order
        values = sorted(t.value for t in trials if t.user_attrs["writer"] == w)
        assert values == [w * 1000 + i for i in range(40)]


def test_a_trial_without_heartbeats_is_failed_and_a_beating_one_kept(tmp_path):
    storage = open_storage(str(tmp_path / "s.journal"))
    study = optuna.create_study(study_name="s", storage=storage)
    dead, alive = study.ask(), study.ask()
    storage.set_trial_system_attr(trial_id(storage, "s", dead.number), HEARTBEAT_ATTR, time.time() - 60)
    storage.set_trial_system_attr(trial_id(storage, "s", alive.number), HEARTBEAT_ATTR, time.time())
    assert fail_stale(study, storage, grace_period=30) == [dead.number]
    states = {t.number: t.state.name for t in study.get_trials()}
    assert states == {dead.number: "FAIL", alive.number: "RUNNING"}


@pytest.mark.kernel
def test_pruned_trials_stop_their_kernel_and_every_trial_is_a_tagged_run(tmp_path, capsys):
    table = run_tune(
        NOTEBOOK,
        {"x": "uniform(0,1)", "kind": "choice(a,b)"},
        n_trials=7,
        sampler="random",
        seed=1,
        study="fixture",
        runs_dir=tmp_path,
        progress=False,
    )
    assert sorted(table["trial"]) == list(range(7))
    records = {r.trial: r for r in iter_runs(tmp_path) if r.trial is not None}
    assert sorted(records) == list(range(7)) and {r.study for r in records.values()} == {"fixture"}
    pruned = table[table["state"] == "pruned"]
    assert len(pruned) >= 1
    for row in pruned.itertuples():
        rec = records[row.trial]
        assert rec.state == "pruned" and rec.error["kind"] == "pruned"
        assert f"pruned at step {row.step}" in rec.error["summary"]
        assert rec.metrics == {"started": True}  # the kernel stopped: the last cell never ran
    done = table[table["state"] == "complete"]
    for row in done.itertuples():  # the study's value is what the run recorded
        assert records[row.trial].metrics["score"] == row.score
        x, kind = records[row.trial].params["x"], records[row.trial].params["kind"]
        assert row.score == pytest.approx(1 - (x - 0.3) ** 2 + (0.01 if kind == "b" else 0))
    assert list(done["score"]) == sorted(done["score"], reverse=True)  # best first
    report = Path(table.attrs["report"]).read_text()
    assert "<script" not in report and report.count("<img") == 3
    best = table.attrs["best_run"].split("/")[-1]
    assert f'href="../{best}/report.html"' in report and (tmp_path / table.attrs["best_run"] / "report.html").is_file()

    assert show_study("fixture", runs_dir=tmp_path)["trial"].tolist() == table["trial"].tolist()
    rows = {row["name"]: row for row in run_rows(tmp_path)}  # the reports service lists the study
    assert rows["study fixture"]["report"] and rows["study fixture"]["state"] == "succeeded"
    assert read_report(tmp_path, rows["study fixture"]["dir"]) == Path(table.attrs["report"]).read_bytes()
    assert main(["runs", "--runs-dir", str(tmp_path), "--study", "fixture", "--state", "pruned"]) == 0
    out = capsys.readouterr().out
    assert f"{len(pruned)} runs in" in out and "trial" in out.splitlines()[1]


def _start_tune(tmp_path: Path, n_trials: int) -> subprocess.Popen:
    code = (
        "from workbench.jobs.tune import run_tune; "
        f"run_tune({str(NOTEBOOK)!r}, {{'x': 'uniform(0,1)'}}, params={{'sleep': 0.4}}, n_trials={n_trials}, "
        f"workers=2, study='killed', pruner='none', runs_dir={str(tmp_path)!r}, heartbeat_interval=1, "
        "grace_period=3, progress=False)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True)


def _children(pid: int) -> list[int]:
    import psutil

    return [c.pid for c in psutil.Process(pid).children() if "spawn_main" in " ".join(c.cmdline())]


@pytest.mark.kernel
@pytest.mark.slow
def test_a_study_resumes_after_a_worker_is_killed(tmp_path):
    proc = _start_tune(tmp_path, 8)
    storage = None
    deadline = time.time() + 120
    while time.time() < deadline:  # two trials finished: kill one worker in the middle of the next
        paths = list(tmp_path.glob("*/study-killed/study.journal"))
        if paths:
            storage = open_storage(str(paths[0]))
            trials = optuna.load_study(study_name="killed", storage=storage).get_trials()
            if sum(t.state.name == "COMPLETE" for t in trials) >= 2 and any(t.state.name == "RUNNING" for t in trials):
                break
        time.sleep(0.3)
    workers = _children(proc.pid)
    assert len(workers) >= 2, workers
    os.kill(workers[0], signal.SIGKILL)
    proc.wait(120)
    table = run_tune(
        NOTEBOOK,
        {"x": "uniform(0,1)"},
        params={"sleep": 0.4},
        n_trials=8,
        workers=2,
        study="killed",
        pruner="none",
        runs_dir=tmp_path,
        heartbeat_interval=1,
        grace_period=3,
        progress=False,
    )
    trials = optuna.load_study(study_name="killed", storage=storage).get_trials()
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # no trial number lost or given twice
    assert sum(t.state.name == "COMPLETE" for t in trials) == 8
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in trials)
    assert any(t.state.name == "FAIL" for t in trials)  # the killed worker's trial, failed by heartbeat
    assert (table["state"] == "complete").sum() == 8


@pytest.mark.kernel
@pytest.mark.slow
def test_telco_tpe_study_with_two_workers_and_its_best_trial_reruns_identically(tmp_path, capsys):
    args = ["tune", str(TRAIN), "-s", "learning_rate=loguniform(0.02,0.3)", "-s", "num_leaves=int(4,64)"]
    args += [*FAST_TRAIN, "--trials", "30", "--workers", "2", "--sampler", "tpe", "--study", "telco"]
    assert main([*args, "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    table = show_study("telco", runs_dir=tmp_path)
    finished = table[table["state"].isin(["complete", "pruned"])]
    assert len(finished) == 30 and sorted(table["trial"]) == list(range(len(table)))
    best = table.attrs["best_run"]
    assert best in out and table.iloc[0]["run"] == best
    assert main(["rerun", best.split("/")[-1], "--runs-dir", str(tmp_path), "--no-progress"]) == 0
    original = next(r for r in iter_runs(tmp_path) if r.path.name == best.split("/")[-1])
    again = next(r for r in iter_runs(tmp_path) if r.rerun_of == original.path.name)
    assert again.metrics["cv_auc"] == original.metrics["cv_auc"] == table.iloc[0]["cv_auc"]


@pytest.mark.kernel
def test_a_grid_study_in_a_database_runs_each_point_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    other = optuna.create_study(study_name="other", storage=url)  # trial ids in the database are not numbers
    other.tell(other.ask(), 1.0)
    table = run_tune(
        NOTEBOOK, {"x": "choice(0.1,0.3)"}, params={"steps": 2}, n_trials=10, sampler="grid", study="grid",
        storage=url, runs_dir=tmp_path, progress=False,
    )  # fmt: skip
    assert sorted(table["param.x"]) == [0.1, 0.3] and (table["state"] == "complete").all()  # 10 capped to the grid
    assert list(table["score"]) == [1.0, pytest.approx(0.96)] and list(table["step"]) == [
        1,
        1,
    ]  # reported in the kernel
    assert not list(tmp_path.glob("*/study-grid/study.journal")) and list(tmp_path.glob("*/study-grid/report.html"))


def test_the_trial_count_counts_finished_trials_waits_for_running_ones_and_refuses_a_surplus(tmp_path):
    from workbench.jobs.tune.storage import is_surplus
    from workbench.jobs.tune.worker import TuneConfig, _done

    storage = open_storage(str(tmp_path / "s.journal"))
    study = optuna.create_study(study_name="s", storage=storage)
    config = TuneConfig(notebook="", space={}, metric="m", direction="minimize", study="s", storage="", runs_dir="",
                        n_trials=3)  # fmt: skip
    study.tell(study.ask(), 1.0)
    study.tell(study.ask(), state=optuna.trial.TrialState.FAIL)  # failed trials do not count
    assert _done(study, config) is False
    running = study.ask()
    study.tell(study.ask(), state=optuna.trial.TrialState.PRUNED)
    assert _done(study, config) is None  # three would be reached if the running one finishes: wait
    late = study.ask()  # a second worker asked at the same moment
    assert is_surplus(study, late.number, 3) and not is_surplus(study, running.number, 3)
    study.tell(running, 0.5)
    assert _done(study, config) is True


@pytest.mark.kernel
def test_a_study_in_sqlite_resumes_where_it_stopped(tmp_path, capsys, monkeypatch):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    args = ["tune", str(NOTEBOOK), "-s", "x=uniform(0,1)", "-p", "steps", "2", "--study", "sq", "--sampler", "random"]
    args += ["--pruner", "none", "--runs-dir", str(tmp_path), "--no-progress"]
    assert main([*args, "--trials", "2", "--storage", url]) == 0
    first = {t.number: t.params for t in optuna.load_study(study_name="sq", storage=url).trials}
    monkeypatch.setenv("WORKBENCH_TUNE_STORAGE", url)  # the same database, named by the environment
    assert main([*args, "--trials", "4"]) == 0
    trials = optuna.load_study(study_name="sq", storage=url).trials
    assert [t.number for t in trials] == [0, 1, 2, 3] and all(t.state.name == "COMPLETE" for t in trials)
    assert {t.number: t.params for t in trials[:2]} == first  # continued, not started again
    assert sorted(r.trial for r in iter_runs(tmp_path) if r.study == "sq" and r.trial is not None) == [0, 1, 2, 3]
    assert not list(tmp_path.glob("*/study-sq/study.journal"))
    capsys.readouterr()
    assert main(["tune", "show", "sq", "--runs-dir", str(tmp_path)]) == 0
    assert "study sq: 4 complete" in capsys.readouterr().out


@pytest.mark.parametrize(
    "url, reason",
    [
        (
            "postgresql://ana:Hunter2-s3cr3t@127.0.0.1:1/optuna",
            "cannot open the study storage postgresql://127.0.0.1:1/optuna",
        ),
        (
            "sqlite:////nonexistent-folder/studies.db",
            "cannot open the study storage sqlite:////nonexistent-folder/studies.db: unable to open",
        ),
    ],
)
def test_a_storage_that_cannot_open_is_an_error_naming_it_without_its_password(
    tmp_path, capsys, monkeypatch, url, reason
):
    def no_kernel(*a, **k):
        raise AssertionError("a kernel was started without a storage")

    monkeypatch.setattr("workbench.jobs.tune.worker.execute_run", no_kernel)
    argv = [
        "tune",
        str(NOTEBOOK),
        "-s",
        "x=uniform(0,1)",
        "--storage",
        url,
        "--runs-dir",
        str(tmp_path),
        "--no-progress",
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench tune: error: ") and reason in err and "Hunter2" not in err
