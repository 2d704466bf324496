"""JupyterLab integration without a hub: first start, profiles as environments, the scheduler's jobs, status."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nbformat
import pytest
import yaml
from jupyter_scheduler.exceptions import SchedulerError
from jupyter_scheduler.models import CreateJob, CreateJobDefinition, ListJobDefinitionsQuery, ListJobsQuery, Status
from jupyter_scheduler.orm import create_tables

from workbench.hub.culler import GpuAwareCuller
from workbench.hub.lab import server_args, server_config
from workbench.hub.lifeline import process_start
from workbench.hub.metrics import StaticMetrics
from workbench.lab.environments import ProfileEnvironments, describe
from workbench.lab.home import MARKER, START_NOTEBOOK, seed_home
from workbench.lab.job import read_run_file
from workbench.lab.scheduler import WorkbenchScheduler
from workbench.lab.status import GpuReading, read_gpus, status, verdict
from workbench.notebooks import REFERENCE_NOTEBOOKS, notebook_path
from workbench.profiles import default_profiles_path, load_profiles
from workbench.runs import RUNS_ENV, RunRecord

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "notebooks"


# -- first start ---------------------------------------------------------------------------------------
def test_seed_home_copies_once_and_never_overwrites(tmp_path):
    (tmp_path / "train.ipynb").write_text("mine")
    created = seed_home(tmp_path, "alice", "/", "/user/alice/")
    assert "train.ipynb" not in created and (tmp_path / "train.ipynb").read_text() == "mine"
    assert sorted(created) == sorted([START_NOTEBOOK] + [f"{n}.ipynb" for n in REFERENCE_NOTEBOOKS if n != "train"])
    assert (tmp_path / "explain.ipynb").read_bytes() == notebook_path("explain").read_bytes()
    start = nbformat.read(tmp_path / START_NOTEBOOK, as_version=4)
    text = "\n".join(c.source for c in start.cells)
    assert "/services/reports/?owner=alice" in text and "Create a job" in text
    assert "(/user/alice/workbench/status)" in text
    (tmp_path / "explain.ipynb").unlink()  # deleted by the user: not brought back
    assert seed_home(tmp_path, "alice") == [] and not (tmp_path / "explain.ipynb").exists()
    assert (tmp_path / MARKER).is_file()


def test_seed_home_does_not_follow_a_planted_symlink(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("precious")
    home = tmp_path / "home"
    home.mkdir()
    (home / "stack.ipynb").symlink_to(target)
    seed_home(home)
    assert target.read_text() == "precious" and (home / "stack.ipynb").is_symlink()


def test_launcher_cards_config_file_matches_the_code():
    from workbench.hub.lab import CONFIG_DIR, launcher_servers

    assert json.loads((CONFIG_DIR / "jupyter_server_config.json").read_text()) == {
        "ServerProxy": {"servers": launcher_servers()}
    }


def test_server_config_enables_scheduler_and_quiets_news(tmp_path):
    args = server_args("local")
    assert "--ServerApp.jpserver_extensions=jupyter_scheduler=True" in args
    assert "--SchedulerApp.scheduler_class=workbench.lab.scheduler.WorkbenchScheduler" in args
    settings = Path(next(a for a in args if a.startswith("--LabApp.app_settings_dir=")).split("=", 1)[1])
    overrides = json.loads((settings / "overrides.json").read_text())
    assert overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false"
    assert server_config("kubernetes")["WorkbenchScheduler"]["backend"] == "k8s"
    from workbench.lab import install

    written = install(tmp_path)
    assert json.loads(written[0].read_text())["SchedulerApp"]["scheduler_class"].endswith("WorkbenchScheduler")
    assert json.loads(written[1].read_text()) == overrides


# -- environments ----------------------------------------------------------------------------------------
def test_environments_are_the_profiles_the_groups_allow(monkeypatch):
    monkeypatch.delenv("WORKBENCH_PROFILES", raising=False)
    monkeypatch.setenv("WORKBENCH_USER_GROUPS", "")
    names = [e.label for e in ProfileEnvironments().list_environments()]
    profiles = load_profiles()
    assert names == [p.slug for p in sorted(profiles.for_groups([]), key=lambda p: not p.default)]
    assert names[0] == "cpu-small"
    gated = [p for p in profiles.profiles if p.groups]
    assert gated and not set(p.slug for p in gated) & set(names)
    monkeypatch.setenv("WORKBENCH_USER_GROUPS", ",".join(gated[0].groups))
    assert gated[0].slug in [e.label for e in ProfileEnvironments().list_environments()]
    assert "GPU" in describe(gated[0]) and "memory" in describe(gated[0])


def test_a_pod_reads_the_profiles_the_hub_passed(tmp_path):
    from traitlets.config import Config

    from workbench.hub.lab import configure_lab
    from workbench.lab.environments import user_profiles

    raw = yaml.safe_load(default_profiles_path().read_text())
    raw["profiles"] = [p for p in raw["profiles"] if p["slug"] == "cpu-large"]
    raw["profiles"][0]["default"] = True
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(raw))
    c = Config()
    configure_lab(c, "kubernetes", path)
    env = {k: v for k, v in c.Spawner.environment.items() if isinstance(v, str)}
    assert "WORKBENCH_PROFILES" not in env  # the hub's path means nothing in a pod
    _, allowed = user_profiles(env)
    assert [p.slug for p in allowed] == ["cpu-large"]
    assert "--WorkbenchScheduler.backend=k8s" in c.Spawner.args


# -- jobs ------------------------------------------------------------------------------------------------
@pytest.fixture
def lab(tmp_path, monkeypatch):
    home, runs = tmp_path / "home", tmp_path / "runs"
    home.mkdir()
    shutil.copy(FIXTURES / "job.ipynb", home / "job.ipynb")
    shutil.copy(FIXTURES / "sleeps.ipynb", home / "sleeps.ipynb")
    monkeypatch.setenv(RUNS_ENV, str(runs))
    monkeypatch.setenv("WORKBENCH_USER_GROUPS", "")
    monkeypatch.delenv("WORKBENCH_PROFILES", raising=False)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[2]))
    db = f"sqlite:///{tmp_path / 'scheduler.sqlite'}"
    create_tables(db)
    scheduler = WorkbenchScheduler(
        root_dir=str(home),
        environments_manager=ProfileEnvironments(),
        db_url=db,
        staging_path=str(tmp_path / "staging"),
    )
    scheduler.runs = runs
    return scheduler


def _job(notebook: str, **parameters: str) -> CreateJob:
    return CreateJob(
        input_uri=notebook,
        runtime_environment_name="cpu-small",
        name=Path(notebook).stem,
        parameters=parameters,
        output_formats=["ipynb", "html"],
    )


def _wait(scheduler, job_id: str, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = scheduler.get_job(job_id)
        if job.status not in (Status.QUEUED, Status.IN_PROGRESS, Status.CREATED):
            return job
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still {job.status}")


def test_wrong_type_is_refused_before_anything_starts(lab):
    with pytest.raises(SchedulerError, match="'n'"):
        lab.create_job(_job("job.ipynb", n="three"))
    with pytest.raises(SchedulerError, match="unknown parameter 'nn'"):
        lab.create_job(_job("job.ipynb", nn="3"))
    with pytest.raises(SchedulerError, match="not a profile you may use"):
        lab.create_job(_job("job.ipynb").copy(update={"runtime_environment_name": "gpu-a100"}))
    assert lab.list_jobs(ListJobsQuery()).total_count == 0
    assert not lab.runs.exists() or not any(lab.runs.rglob("status.json"))


@pytest.mark.kernel
def test_job_is_a_recorded_workbench_run_with_outputs(lab):
    job_id = lab.create_job(_job("job.ipynb", n="5", lr="0.5"))
    job = _wait(lab, job_id)
    assert job.status == Status.COMPLETED, job.status_message
    info = read_run_file(Path(lab.get_staging_paths(job)["input"]).parent)
    record = RunRecord.read(info["run"])
    assert record.state == "succeeded" and record.params["n"] == 5 and record.params["lr"] == 0.5
    assert record.metrics["n_times_lr"] == 2.5 and Path(info["run"]).parent.parent == lab.runs
    staged = lab.get_staging_paths(job)
    assert b"n_times_lr" in Path(staged["ipynb"]).read_bytes()
    assert Path(staged["html"]).read_bytes() == (record.path / "report.html").read_bytes()


@pytest.mark.kernel
def test_job_outlives_its_server_group_and_stop_acts_on_it(lab):
    job_id = lab.create_job(_job("sleeps.ipynb", seconds="60"))
    job = lab.get_job(job_id)
    info = read_run_file(Path(lab.get_staging_paths(job)["input"]).parent)
    pid = info["pid"]
    assert os.getsid(pid) == pid != os.getsid(0)  # its own session: the server's stop never reaches it
    deadline = time.monotonic() + 60
    while lab.get_job(job_id).status != Status.IN_PROGRESS and time.monotonic() < deadline:
        time.sleep(0.2)
    lab.stop_job(job_id)
    assert lab.get_job(job_id).status == Status.STOPPED
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process_start(pid) is None:  # gone (a zombie counts as gone)
            break
        lab.list_jobs(ListJobsQuery())  # the scheduler reaps its finished children as it lists
        time.sleep(0.2)
    else:
        os.kill(pid, signal.SIGKILL)
        raise AssertionError("the job's process did not stop")


def test_schedule_goes_to_the_hub_and_is_refused_without_it(lab, monkeypatch):
    monkeypatch.delenv("WORKBENCH_PIPELINES_URL", raising=False)
    model = CreateJobDefinition(
        input_uri="job.ipynb", runtime_environment_name="cpu-small", name="nightly", schedule="0 3 * * *", parameters={}
    )
    with pytest.raises(SchedulerError, match="pipelines service"):
        lab.create_job_definition(model)
    assert lab.list_job_definitions(ListJobDefinitionsQuery()).total_count == 0


# -- GPU at a glance ------------------------------------------------------------------------------------
FAKE_SMI = """#!/bin/sh
printf '0, GPU-aaa, 3 %%, 1200 MiB, 15360 MiB\\n1, GPU-bbb, 97 %%, 9000 MiB, 15360 MiB\\n'
"""


def test_gpu_status_from_nvidia_smi_and_the_cullers_verdict(tmp_path, monkeypatch):
    exe = tmp_path / "nvidia-smi"
    exe.write_text(FAKE_SMI)
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    assert [g.index for g in read_gpus(["GPU-bbb"])] == ["1"]
    profiles = load_profiles()
    gpu = next(p for p in profiles.profiles if p.gpus)
    night = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)
    info = status(
        profiles, night - timedelta(minutes=25), night, {"WORKBENCH_PROFILE": gpu.slug, "CUDA_VISIBLE_DEVICES": "0"}
    )
    assert info["gpus"] == [{"index": "0", "utilisation": 3.0, "memory_used_mib": 1200.0, "memory_total_mib": 15360.0}]
    stop = (night - timedelta(minutes=25) + timedelta(seconds=gpu.idle_timeout)).strftime("%H:%M")
    assert info["verdict"].startswith(f"idle 25 min; stops at {stop} UTC if still idle")
    assert "outside working hours" in info["verdict"]
    busy = verdict(gpu, profiles, timedelta(0), read_gpus(["1"]), night)
    assert "below" not in busy


def _checks(culler: GpuAwareCuller, slug: str, inactive: timedelta, times: int) -> list[bool]:
    """The real culler's answers for ann's server on profile ``slug``, ``times`` checks in a row."""
    spawned = {"profile": slug, "gpus": culler.profiles.get(slug).gpus}
    server = {"name": "", "full_name": "ann/", "state": {"spawned": spawned}, "started": "2026-01-05T07:00:00Z"}
    return [asyncio.run(culler.arbiter(inactive=inactive, inactive_limit=3600, server=server)) for _ in range(times)]


@pytest.mark.parametrize(
    ("util", "hour", "expected"), [(3.0, 22, "stop"), (3.0, 10, "notify"), (50.0, 22, "keep"), (50.0, 10, "keep")]
)
def test_status_verdict_says_what_the_culler_does(util, hour, expected):
    profiles = load_profiles()
    gpu, checks = profiles.get("gpu-t4"), profiles.culling.gpu.checks
    now = datetime(2026, 1, 5, hour, 0, tzinfo=UTC)  # a Monday
    said = verdict(gpu, profiles, timedelta(minutes=5), [GpuReading("0", util, 100.0, 15360.0)], now)
    culler = GpuAwareCuller(profiles, StaticMetrics(util), now=lambda: now)
    stops = _checks(culler, gpu.slug, timedelta(minutes=5), checks)
    done = "stop" if stops[-1] else "notify" if culler.notifications else "keep"
    assert done == expected and not any(stops[:-1])
    assert ("now, outside working hours" in said, "after working hours" in said) == (done == "stop", done == "notify")


def test_status_verdict_stops_when_the_culler_stops():
    profiles = load_profiles()
    cpu = profiles.get("cpu-small")
    now = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    said = verdict(cpu, profiles, timedelta(minutes=25), [], now)
    hour, minute = map(int, said.split("stops at ")[1][:5].split(":"))
    inactive = now.replace(hour=hour, minute=minute) - (now - timedelta(minutes=25))
    culler = GpuAwareCuller(profiles, StaticMetrics(None))
    assert _checks(culler, cpu.slug, inactive, 1) == [True]
    assert _checks(culler, cpu.slug, inactive - timedelta(minutes=1), 1) == [False]


class _Schedules:
    """A stand-in for the pipelines service's schedules API (its documented routes), recording the calls."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.calls: list[tuple[str, str, dict | None]] = []
        self.stored: dict[str, dict] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, code: int, body: dict | None = None) -> None:
                data = json.dumps(body).encode() if body is not None else b""
                self.send_response(code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_PUT(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.calls.append(("PUT", self.path, body))
                assert self.headers["Authorization"] == "token server-token"
                if body["cron"] == "every day":
                    return self._answer(400, {"error": "cron: 'every day' is not a five-field expression"})
                outer.stored[self.path] = body
                self._answer(201, {**body, "name": self.path.rsplit("/", 1)[1]})

            def do_GET(self):  # noqa: N802
                outer.calls.append(("GET", self.path, None))
                found = outer.stored.get(self.path)
                self._answer(200 if found else 404, found or {"error": "no such schedule"})

            def do_DELETE(self):  # noqa: N802
                outer.calls.append(("DELETE", self.path, None))
                self._answer(204 if outer.stored.pop(self.path, None) else 404)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/pipelines/"


def test_job_definitions_with_a_schedule_are_the_hubs_schedules(lab, monkeypatch):
    from jupyter_scheduler.models import UpdateJobDefinition

    service = _Schedules()
    monkeypatch.setenv("WORKBENCH_PIPELINES_URL", service.url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "server-token")
    monkeypatch.setenv("JUPYTERHUB_USER", "ana")
    model = CreateJobDefinition(
        input_uri="job.ipynb",
        runtime_environment_name="cpu-small",
        name="nightly",
        schedule="0 3 * * *",
        parameters={"n": "4"},
    )
    with pytest.raises(SchedulerError, match="'n'"):
        lab.create_job_definition(model.copy(update={"parameters": {"n": "four"}}))
    assert service.calls == []
    definition_id = lab.create_job_definition(model)
    ((method, path, body),) = service.calls
    assert method == "PUT" and path == f"/services/pipelines/api/schedules/ana/lab-{definition_id}"
    assert body["cron"] == "0 3 * * *" and body["notebook"] == "job.ipynb" and body["parameters"] == {"n": "4"}
    assert body["profile"] == "cpu-small" and body["enabled"] is True
    assert [d.name for d in lab.list_job_definitions(ListJobDefinitionsQuery()).job_definitions] == ["nightly"]
    lab.update_job_definition(definition_id, UpdateJobDefinition(active=False))  # "pause" in the UI
    assert service.stored[path]["enabled"] is False and service.stored[path]["notebook"] == "job.ipynb"
    lab.delete_job_definition(definition_id)
    assert service.calls[-1][:2] == ("DELETE", path) and service.stored == {}
    service.server.shutdown()


def test_schedule_calls_report_the_services_refusal_and_absence():
    from workbench.lab.schedules import delete_schedule, get_schedule, put_schedule

    service = _Schedules()
    env = {"WORKBENCH_PIPELINES_URL": service.url, "JUPYTERHUB_API_TOKEN": "server-token", "JUPYTERHUB_USER": "ana"}
    with pytest.raises(SchedulerError, match=r"refused the schedule \(400 Bad Request: cron: 'every day' is not"):
        put_schedule("d1", "job.ipynb", {}, "every day", "cpu-small", environ=env)
    assert get_schedule("d1", environ=env) is None and delete_schedule("d1", environ=env) is None
    assert put_schedule("d1", "job.ipynb", {}, "0 3 * * *", "cpu-small", environ=env)["name"] == "lab-d1"
    assert get_schedule("d1", environ=env)["cron"] == "0 3 * * *"
    service.server.shutdown()
    service.server.server_close()
    with pytest.raises(SchedulerError) as err:
        get_schedule("d1", environ=env)
    assert f"cannot reach the hub's scheduler at http://127.0.0.1:{service.server.server_port}/" in str(err.value)
    assert "server-token" not in str(err.value)
