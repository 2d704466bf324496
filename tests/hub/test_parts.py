"""Hub parts without a running hub: culling policy, metrics sources, quota logic, local spawner, configure."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from conftest import require_tool

from workbench.hub import configure, options_from_env
from workbench.hub.culler import GpuAwareCuller
from workbench.hub.metrics import (
    FileMetrics,
    GpuServer,
    NvidiaSmiMetrics,
    PrometheusMetrics,
    StaticMetrics,
    metrics_from_config,
    parse_nvidia_smi,
    parse_prometheus,
)
from workbench.profiles import Culling, GpuCulling, WorkingHours, load_profiles, parse_profiles

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())
PROFILES = load_profiles(ROOT / "hub" / "profiles.yaml")


# --- the culling section -------------------------------------------------------------------------


def test_shipped_culling_section():
    gpu = PROFILES.culling.gpu
    assert PROFILES.culling.every == 300 and gpu.threshold == 10 and gpu.checks == 6
    assert gpu.working_hours.days == frozenset(range(5)) and gpu.metrics == {"source": "auto"}
    assert PROFILES.slowest_idle_timeout() == max(p.idle_timeout for p in PROFILES.profiles)


def _with_culling(culling):
    data = copy.deepcopy(RAW)
    data["culling"] = culling
    return data


@pytest.mark.parametrize(
    ("culling", "message"),
    [
        ({"every": 0}, "culling.every: expected at least 1 second, got 0"),
        ({"every": 0.5}, "culling.every: expected at least 1 second, got 0.5"),
        ({"every": True}, "culling.every: expected a number of seconds, got true"),
        ({"every": float("inf")}, r"culling.every: expected a number of seconds, got \.inf"),
        ({"gpu": {"threshold": 150}}, r"culling.gpu.threshold: expected a utilisation in percent \(0-100\), got 150"),
        ({"gpu": {"threshold": float("nan")}}, r"culling.gpu.threshold: .*got \.nan"),
        ({"gpu": {"checks": 0}}, "culling.gpu.checks: expected a whole number >= 1, got 0"),
        ({"gpu": {"checks": True}}, "culling.gpu.checks: expected a whole number >= 1, got true"),
        ({"gpu": {"working_hours": {"days": ["funday"]}}}, "days: expected a list of day names"),
        ({"gpu": {"working_hours": {"days": "mon"}}}, "days: expected a list of day names"),
        ({"gpu": {"working_hours": {"start": "25:00"}}}, r"start: expected a time like \"08:00\""),
        ({"gpu": {"working_hours": {"start": "18:00", "end": "09:00"}}}, "end 09:00 must come after start 18:00"),
        ({"gpu": {"working_hours": {"timezone": "Mars/Olympus"}}}, "not an IANA time zone"),
        ({"gpu": {"webhook": "slack"}}, "webhook: must be an http"),
        ({"gpu": {"colour": 1}}, r"culling.gpu: unknown keys \['colour'\]"),
        ({"gpu": "often"}, "culling.gpu: expected a mapping, got 'often'"),
        ({"sometimes": 1}, r"culling: unknown keys \['sometimes'\]"),
    ],
)
def test_invalid_culling_is_rejected(culling, message):
    with pytest.raises(ValueError, match=message):
        parse_profiles(_with_culling(culling))


def test_working_hours_in_a_time_zone():
    hours = parse_profiles(
        _with_culling(
            {
                "gpu": {
                    "working_hours": {
                        "days": ["mon", "tue", "wed", "thu", "fri"],
                        "start": "09:00",
                        "end": "17:30",
                        "timezone": "America/New_York",
                    }
                }
            }
        )
    ).culling.gpu.working_hours
    # 2026-03-03 is a Tuesday; New York is UTC-5 then
    assert hours.contains(datetime(2026, 3, 3, 14, 0, tzinfo=UTC))  # 09:00 local
    assert not hours.contains(datetime(2026, 3, 3, 13, 59, tzinfo=UTC))  # 08:59 local
    assert not hours.contains(datetime(2026, 3, 3, 22, 30, tzinfo=UTC))  # 17:30 local: end is exclusive
    assert not hours.contains(datetime(2026, 3, 7, 15, 0, tzinfo=UTC))  # Saturday
    assert hours.contains(datetime(2026, 3, 3, 14, 0))  # naive means UTC
    assert not WorkingHours(days=frozenset()).contains(datetime(2026, 3, 3, 12, 0, tzinfo=UTC))


def test_select_profile_by_group():
    assert PROFILES.select(None, []).slug == "cpu-small"
    assert PROFILES.select("gpu-t4", ["gpu-users"]).slug == "gpu-t4"
    with pytest.raises(ValueError, match=r"only for members of \['ml-platform'\]; your profiles are"):
        PROFILES.select("gpu-a100", ["gpu-users"])
    with pytest.raises(ValueError, match="no profile 'tpu'"):
        PROFILES.select("tpu", [])


# --- metrics sources -----------------------------------------------------------------------------

NVIDIA_SMI = """0, GPU-1111aaaa-0000-0000-0000-000000000000, 3
1, GPU-2222bbbb-0000-0000-0000-000000000000, 97
2, GPU-3333cccc-0000-0000-0000-000000000000, [N/A]
"""


def test_parse_nvidia_smi():
    table = parse_nvidia_smi(NVIDIA_SMI)
    assert table["0"] == 3.0 and table["GPU-2222bbbb-0000-0000-0000-000000000000"] == 97.0 and "2" not in table


def test_nvidia_smi_source_averages_the_servers_devices(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{NVIDIA_SMI}EOF\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    source = NvidiaSmiMetrics()
    both = GpuServer(user="u", gpus=2, state={"gpu_devices": ["0", "1"]})
    assert asyncio.run(source.utilisation(both)) == pytest.approx((3 + 97) / 2)
    assert asyncio.run(source.utilisation(GpuServer(user="u", gpus=1, state={}))) is None


def test_prometheus_query_and_answer():
    source = PrometheusMetrics("http://prometheus:9090")
    server = GpuServer(user="a", state={"pod_name": 'jupyter-a"b', "namespace": "hub"})
    assert source.promql(server) == 'avg(DCGM_FI_DEV_GPU_UTIL{namespace="hub",pod="jupyter-a\\"b"})'
    answer = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [
                {"metric": {"gpu": "0"}, "value": [1700000000.0, "4"]},
                {"metric": {"gpu": "1"}, "value": [1700000000.0, "8"]},
            ],
        },
    }
    assert parse_prometheus(answer) == 6.0
    assert parse_prometheus({"status": "success", "data": {"result": []}}) is None
    with pytest.raises(RuntimeError, match="bad_data"):
        parse_prometheus({"status": "error", "error": "bad_data"})
    with pytest.raises(ValueError, match="http"):
        PrometheusMetrics("prometheus:9090")


def test_metrics_from_config(tmp_path):
    assert isinstance(metrics_from_config({"source": "auto"}, "local"), NvidiaSmiMetrics)
    assert isinstance(metrics_from_config({}, "kubernetes"), PrometheusMetrics)
    assert isinstance(metrics_from_config({"source": "workbench.hub.metrics:StaticMetrics", "value": 1}), StaticMetrics)
    path = tmp_path / "util.json"
    path.write_text(json.dumps({"a/": 12.5}))
    source = metrics_from_config({"source": "file", "path": str(path)})
    assert asyncio.run(source.utilisation(GpuServer(user="a"))) == 12.5
    assert asyncio.run(FileMetrics(tmp_path / "missing.json").utilisation(GpuServer(user="a"))) is None
    with pytest.raises(ValueError, match="unknown metrics source 'dcgm'"):
        metrics_from_config({"source": "dcgm"})
    with pytest.raises(ValueError, match="bad options"):
        metrics_from_config({"source": "file", "colour": "red"})
    with pytest.raises(ValueError, match="cannot be imported"):
        metrics_from_config({"source": "nowhere.module:Thing"})


# --- the culler's decisions ----------------------------------------------------------------------

DAY, NIGHT = datetime(2026, 3, 3, 10, 0, tzinfo=UTC), datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
POLICY = dataclasses.replace(PROFILES, culling=Culling(every=60, gpu=GpuCulling(threshold=10, checks=3)))


def _server(profile: str, name: str = "", started: str = "2026-03-03T08:00:00Z") -> dict:
    return {
        "name": name,
        "full_name": f"ann/{name}",
        "user_options": {"profile": profile},
        "started": started,
        "state": {"gpu_devices": ["0"]},
    }


def _decide(culler: GpuAwareCuller, server: dict, inactive: float = 60.0) -> bool:
    return asyncio.run(culler.arbiter(inactive=timedelta(seconds=inactive), inactive_limit=3600, server=server))


def test_arbiter_activity_timeout_is_per_profile():
    culler = GpuAwareCuller(POLICY, StaticMetrics(99.0))
    gpu, cpu = PROFILES.get("gpu-t4"), PROFILES.get("cpu-small")
    assert gpu.idle_timeout < cpu.idle_timeout
    assert _decide(culler, _server("gpu-t4"), inactive=gpu.idle_timeout)
    assert not _decide(culler, _server("cpu-small"), inactive=gpu.idle_timeout)
    assert _decide(culler, _server("cpu-small"), inactive=cpu.idle_timeout)


def test_arbiter_counts_consecutive_idle_checks():
    metrics = StaticMetrics(5.0)
    culler = GpuAwareCuller(POLICY, metrics, now=lambda: NIGHT)
    server = _server("gpu-t4", name="train")
    assert [_decide(culler, server) for _ in range(2)] == [False, False]
    metrics.value = 50.0  # a busy check resets the count
    assert not _decide(culler, server)
    metrics.value = 5.0
    assert [_decide(culler, server) for _ in range(3)] == [False, False, True]
    # CPU servers are never judged on GPU utilisation
    assert [_decide(culler, _server("cpu-small")) for _ in range(5)] == [False] * 5


def test_arbiter_notifies_once_in_working_hours():
    sent = []

    async def notify(message):
        sent.append(message)

    culler = GpuAwareCuller(POLICY, StaticMetrics(0.0), notify=notify, now=lambda: DAY)
    server = _server("gpu-t4")
    assert [_decide(culler, server) for _ in range(5)] == [False] * 5
    assert len(sent) == 1 and sent[0]["user"] == "ann" and sent[0]["idle_checks"] == 3
    assert "GPU" in sent[0]["text"] and sent[0]["server"] == ""
    # a restarted server starts a new streak
    restarted = _server("gpu-t4", started="2026-03-03T09:30:00Z")
    assert [_decide(culler, restarted) for _ in range(3)] == [False] * 3 and len(sent) == 2


def test_arbiter_never_stops_on_unknown_or_broken_metrics():
    class Broken:
        async def utilisation(self, server):
            raise OSError("exporter down")

    for metrics in (StaticMetrics(None), Broken()):
        culler = GpuAwareCuller(POLICY, metrics, now=lambda: NIGHT)
        assert [_decide(culler, _server("gpu-t4")) for _ in range(5)] == [False] * 5


def test_arbiter_judges_a_server_by_the_profile_recorded_at_spawn():
    """A server started without options on a GPU default profile is that GPU profile, not cpu-small."""
    culler = GpuAwareCuller(POLICY, StaticMetrics(5.0), now=lambda: NIGHT)
    gpu = PROFILES.get("gpu-t4")
    for where in ("state", "user_options"):
        server = {"name": "", "full_name": "ann/", "user_options": {}, "state": {}, "started": "2026-03-03T08:00:00Z"}
        server[where] = {"spawned": {"profile": "gpu-t4", "gpus": 1}}
        info, profile = culler.server_profile(server)
        assert (info.profile, info.gpus, profile) == ("gpu-t4", 1, gpu)
        assert _decide(culler, server, inactive=gpu.idle_timeout)  # the GPU profile's shorter idle timeout
        culler = GpuAwareCuller(POLICY, StaticMetrics(5.0), now=lambda: NIGHT)
        assert [_decide(culler, server) for _ in range(3)] == [False, False, True]  # and the GPU check
    # the state (written by the hub only) wins over user_options
    both = {
        "name": "",
        "full_name": "ann/",
        "state": {"spawned": {"profile": "gpu-t4", "gpus": 1}},
        "user_options": {"spawned": {"profile": "cpu-small", "gpus": 0}},
    }
    assert culler.server_profile(both)[0].gpus == 1
    # a recorded profile no longer in the file: the hub-wide limit, the GPUs it got
    gone = {"name": "x", "full_name": "ann/x", "state": {"spawned": {"profile": "gpu-old", "gpus": 2}}}
    info, profile = culler.server_profile(gone)
    assert profile is None and (info.profile, info.gpus) == ("gpu-old", 2)


def test_spawned_profile_record():
    from workbench.hub.quota import SPAWNED, record_spawned_profile, spawned_profile

    assert spawned_profile({SPAWNED: {"profile": "gpu-t4", "gpus": 1}}) == ("gpu-t4", 1)
    for bad in (
        {"profile": "gpu-t4", "gpus": True},
        {"profile": "gpu-t4", "gpus": -1},
        {"profile": 3, "gpus": 0},
        "gpu-t4",
    ):
        assert spawned_profile({SPAWNED: bad}) is None
    assert spawned_profile({"profile": "gpu-t4"}) is None and spawned_profile(None, None) is None

    # the hook overwrites whatever the user put under the record's key
    orm = SimpleNamespace(user_options={"colour": "red", SPAWNED: {"profile": "cpu-small", "gpus": 0}})
    spawner = SimpleNamespace(user_options=dict(orm.user_options), orm_spawner=orm)
    record_spawned_profile(spawner, PROFILES.get("gpu-t4"))
    assert spawner.user_options == {"colour": "red", "profile": "gpu-t4", SPAWNED: {"profile": "gpu-t4", "gpus": 1}}
    # saved for the next start: the record, but not a profile the user never asked for
    assert orm.user_options == {"colour": "red", SPAWNED: {"profile": "gpu-t4", "gpus": 1}}


def test_quota_hook_records_the_default_profile_of_the_users_groups():
    from tornado.web import HTTPError

    from workbench.hub.quota import LOCAL_GPU_NOTE, gpu_quota_hook

    gpu_default = dataclasses.replace(
        PROFILES, profiles=tuple(dataclasses.replace(p, default=p.slug == "gpu-t4") for p in PROFILES.profiles)
    )
    hook = gpu_quota_hook(gpu_default, note=LOCAL_GPU_NOTE)
    spawners = _spawners(["gpu-users"], {"": (None, True), "second": ("gpu-t4", False)})
    hook(spawners[""])  # no options: the default of the user's groups
    assert spawners[""].user_options["spawned"] == {"profile": "gpu-t4", "gpus": 1}
    spawners["second"].active = True
    with pytest.raises(HTTPError) as err:
        hook(spawners["second"])
    assert (
        "the default server (1 GPU)" in err.value.log_message
        and "CUDA_VISIBLE_DEVICES, which is advisory" in err.value.log_message
    )
    outsider = _spawners([], {"": (None, True)})
    hook(outsider[""])
    assert outsider[""].user_options["spawned"] == {"profile": "cpu-small", "gpus": 0}


# --- quota logic ---------------------------------------------------------------------------------


def _spawners(user_groups: list[str], servers: dict[str, tuple[str | None, bool]]):
    user = SimpleNamespace(name="ann", groups=[SimpleNamespace(name=g) for g in user_groups], spawners={})
    for name, (profile, active) in servers.items():
        options = {"profile": profile} if profile else {}
        user.spawners[name] = SimpleNamespace(user=user, name=name, user_options=options, active=active)
    return user.spawners


def test_quota_counts_active_servers_only():
    from tornado.web import HTTPError

    from workbench.hub.quota import check_spawn, gpus_held

    capped = dataclasses.replace(PROFILES, max_gpus_per_user=1)
    spawners = _spawners(
        ["gpu-users"], {"a": ("gpu-t4", True), "b": ("gpu-t4", False), "c": (None, True), "new": ("gpu-t4", True)}
    )
    assert gpus_held(spawners["new"], capped) == {"a": 1}
    with pytest.raises(HTTPError) as err:
        check_spawn(spawners["new"], capped)
    assert (
        err.value.status_code == 403 and "'a' (1 GPU)" in err.value.log_message and "'b'" not in err.value.log_message
    )
    spawners["a"].active = False
    assert check_spawn(spawners["new"], capped).slug == "gpu-t4"
    roomy = dataclasses.replace(PROFILES, max_gpus_per_user=2)
    spawners["a"].active = True
    assert check_spawn(spawners["new"], roomy).slug == "gpu-t4"


# --- local spawner pieces ------------------------------------------------------------------------


def test_options_form_lists_only_what_the_user_may_pick():
    from workbench.hub.local import options_form

    html = options_form(PROFILES.for_groups(["gpu-users"]), gpus_available=0)
    assert 'value="gpu-t4"' in html and 'value="gpu-a100"' not in html
    assert 'value="gpu-t4" id="profile-gpu-t4" disabled' in html and "this machine has 0" in html
    assert 'value="cpu-small" id="profile-cpu-small" checked' in html
    assert "<script>" not in options_form([dataclasses.replace(PROFILES.get("cpu-small"), description="<script>")], 0)


def test_home_folder_names_are_one_to_one():
    from workbench.runs.layout import owner_dirname

    assert owner_dirname("alice") == "alice" and owner_dirname("a.b@x") == "a.b@x"
    assert "/" not in owner_dirname("../etc") and not owner_dirname("..").startswith(".")
    assert owner_dirname("é") != owner_dirname("-e9-")  # two users never share a folder


def test_launcher_runs_the_command_tied_to_its_parent_and_records_it(tmp_path):
    import subprocess
    import sys

    from workbench.hub.lifeline import launcher

    marker, records = tmp_path / "ran", tmp_path / "processes"
    command = [sys.executable, "-c", "import os, sys; open(sys.argv[1], 'w').write(str(os.getpid()))", str(marker)]
    # a parent that is not the one starting it: the hub is gone, so the command never runs
    assert subprocess.run(launcher(command, name="svc", records=records, parent=1), timeout=60).returncode == 0
    assert not marker.exists() and not records.exists()

    assert subprocess.run(launcher(command, name="svc", records=records), timeout=60).returncode == 0
    record = json.loads((records / "svc.json").read_text())
    assert record["pid"] == int(marker.read_text())  # exec'd: the command kept the launcher's pid
    assert (record["parent"], record["name"], record["command"]) == (os.getpid(), "svc", command)
    assert (records / "svc.json").stat().st_mode & 0o777 == 0o600
    bad = launcher(["/nonexistent/tool"], name="bad")
    assert subprocess.run(bad, capture_output=True, text=True, timeout=60).stderr.startswith(
        "bad: cannot run /nonexistent/tool"
    )


# --- configure -----------------------------------------------------------------------------------


def test_configure_local(tmp_path, monkeypatch):
    from traitlets.config import Config

    from workbench.hub.config import CULLER_SCOPES

    require_tool("configurable-http-proxy")  # configure() looks it up
    monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as an ordinary user (root: tests/hub/test_isolation.py)
    c = Config()
    configure(c, mode="local", state_dir=tmp_path / "state", port=8123, gpu_devices=["0"], admin_users=["ann"])
    assert (c.JupyterHub.ip, c.JupyterHub.port, c.JupyterHub.hub_ip) == ("127.0.0.1", 8123, "127.0.0.1")
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'state' / 'jupyterhub.sqlite'}"
    for name in ("jupyterhub_cookie_secret", "proxy_token"):
        assert (tmp_path / "state" / name).stat().st_mode & 0o777 == 0o600
    assert c.ConfigurableHTTPProxy.auth_token == (tmp_path / "state" / "proxy_token").read_text().strip()
    assert c.ProfileLocalSpawner.gpu_devices == ["0"] and c.Authenticator.admin_users == {"ann"}
    assert {s["name"] for s in c.JupyterHub.services} == {"culler", "reports", "pipelines"}
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert roles["workbench-culler"]["scopes"] == CULLER_SCOPES and roles["workbench-culler"]["services"] == ["culler"]
    assert "access:services!service=reports" in roles["user"]["scopes"]
    assert c.ProfileLocalSpawner.isolation == "single-user" and c.ProfileLocalSpawner.users_dir == str(
        tmp_path / "state" / "users"
    )
    assert (c.TeamAuthenticator.allowed_failed_logins, c.TeamAuthenticator.seconds_before_next_try) == (5, 300)
    assert c.TeamAuthenticator.admin_password_dir == str(tmp_path / "state")
    factory = c.JupyterHub.db_kwargs["connect_args"]["factory"]
    import sqlite3

    with sqlite3.connect(tmp_path / "probe.sqlite", factory=factory) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",) and db.execute(
            "PRAGMA synchronous"
        ).fetchone() == (1,)
    # configuring twice keeps one of each service
    configure(c, mode="local", state_dir=tmp_path / "state", shared_account=True)
    assert sorted(s["name"] for s in c.JupyterHub.services) == ["culler", "pipelines", "reports"]
    assert c.ConfigurableHTTPProxy.auth_token == (tmp_path / "state" / "proxy_token").read_text().strip()
    assert c.ProfileLocalSpawner.isolation == "shared"


def test_configure_refuses_bad_input(tmp_path):
    from traitlets.config import Config

    with pytest.raises(ValueError, match="unknown hub mode 'cloud'"):
        configure(Config(), mode="cloud")
    with pytest.raises(ValueError, match="binds to 127.0.0.1 only"):
        configure(Config(), mode="local", state_dir=tmp_path, ip="0.0.0.0")
    for every in (0.5, 0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="culler_every must be a number of seconds, at least 1"):
            configure(Config(), mode="kubernetes", culler_every=every)


def test_options_from_env():
    env = {
        "WORKBENCH_HUB_MODE": "local",
        "WORKBENCH_HUB_PORT": "8100",
        "WORKBENCH_HUB_ADMINS": "ann, bo",
        "WORKBENCH_HUB_GPUS": "0,1",
        "WORKBENCH_HUB_STATE_DIR": "/tmp/s",
    }
    assert options_from_env(env) == {
        "mode": "local",
        "port": 8100,
        "admin_users": ["ann", "bo"],
        "gpu_devices": ["0", "1"],
        "state_dir": "/tmp/s",
    }
    assert options_from_env({}) == {"mode": "local"}
    assert options_from_env({"WORKBENCH_HUB_SHARED_ACCOUNT": "true", "WORKBENCH_HUB_USERS_DIR": "/srv/homes"}) == {
        "mode": "local",
        "shared_account": True,
        "users_dir": "/srv/homes",
    }
    assert options_from_env({"WORKBENCH_HUB_MODE": "kubernetes", "WORKBENCH_HUB_SHARED_ACCOUNT": "1"}) == {
        "mode": "kubernetes"
    }
    with pytest.raises(ValueError, match=r"\$WORKBENCH_HUB_PORT='eighty' is not a valid port"):
        options_from_env({"WORKBENCH_HUB_PORT": "eighty"})


def test_reports_rows(tmp_path):
    from workbench.hub.reports import run_rows
    from workbench.runs import RunRecord, list_runs, new_run_dir

    for i, (name, owner, auc) in enumerate([("a", "ann", 0.71234), ("b", "bo", 0.8), ("c", "ann", None)]):
        path, run_id = new_run_dir(tmp_path, name, owner=owner)
        RunRecord(
            path=path,
            run_id=run_id,
            name=name,
            notebook="n.ipynb",
            state="succeeded",
            owner=owner,
            start=f"2026-03-0{i + 1}T10:00:00.000Z",
        ).write_status()
        if auc is not None:
            (path / "metrics.json").write_text(json.dumps({"auc": auc, "curve": [1, 2]}))
    rows = run_rows(tmp_path)
    table = list_runs(tmp_path)
    assert [r["name"] for r in rows] == list(table.sort_values("start", ascending=False)["name"])
    assert rows[-1]["metrics"] == [("auc", "0.7123")] and rows[0]["metrics"] == []
    assert rows[-1]["date"] == "2026-03-01 10:00 UTC"
    assert [r["name"] for r in run_rows(tmp_path, owner="ann")] == ["c", "a"]


def test_thin_jupyterhub_config_file(monkeypatch):
    import runpy

    from traitlets.config import Config

    c = Config()
    monkeypatch.setenv("WORKBENCH_HUB_MODE", "kubernetes")
    monkeypatch.setenv("WORKBENCH_PROFILES", str(ROOT / "hub" / "profiles.yaml"))
    runpy.run_path(str(ROOT / "hub" / "jupyterhub_config.py"), init_globals={"get_config": lambda: c})
    assert c.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    entries = c.KubeSpawner.profile_list(SimpleNamespace(user=SimpleNamespace(groups=[])))
    assert [e["slug"] for e in entries] == [p.slug for p in PROFILES.for_groups([])]
    monkeypatch.setenv("WORKBENCH_HUB_MODE", "cloud")
    with pytest.raises(ValueError, match="unknown hub mode 'cloud'"):
        runpy.run_path(str(ROOT / "hub" / "jupyterhub_config.py"), init_globals={"get_config": Config})


def test_hub_command_is_listed(workbench_cli):
    import subprocess

    out = subprocess.run([*workbench_cli, "hub", "--help"], capture_output=True, text=True, check=True).stdout
    assert "--mode" in out and "--state-dir" in out and "127.0.0.1" in out


def test_job_gateway_counts_a_servers_gpus_by_its_spawn_record():
    from workbench.hub.gateway.policy import server_gpus

    gpu_default = {"user_options": {"spawned": {"profile": "gpu-t4", "gpus": 1}}}
    assert server_gpus({"": gpu_default, "cpu": {"user_options": {"profile": "cpu-small"}}}, PROFILES, []) == {
        "the default server": 1
    }
    # the record wins over a guess from the groups the gateway sees now
    assert (
        server_gpus({"": {"user_options": {"spawned": {"profile": "cpu-small", "gpus": 0}}}}, PROFILES, ["gpu-users"])
        == {}
    )
