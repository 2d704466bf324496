"""The hub's life cycle with real JupyterHub and configurable-http-proxy.

``workbench hub`` is interrupted at several moments of its start-up and killed outright once
running; after each, no proxy or service process of its state directory may remain, and the next
start on the same state directory must come up. A server keeps the profile it was spawned with:
the culler and the GPU quota judge it by that, across a restart of the hub.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import yaml
from conftest import require_tool
from hub_process import hub_command

from workbench.hub.auth import admin_password_file
from workbench.hub.config import free_port
from workbench.hub.lifeline import (
    PROCESSES_DIR,
    process_start,
    reclaim,
    stop_started_by,
)
from workbench.runs import RUNS_ENV

pytestmark = [pytest.mark.hub, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
RUNNING = "JupyterHub is now running"


class HubProcess:
    """One ``workbench hub`` subprocess on a state directory under ``base``."""

    def __init__(self, base: Path, port: int, profiles: Path, shared: Path | None = None) -> None:
        self.base, self.port, self.profiles = base, port, profiles
        self.state = base / "state"
        self.runs, self.users = (shared or base) / "runs", (shared or base) / "users"
        self.log = base / f"hub-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> HubProcess:
        options = ["--gpu-devices", "0,1", "--profiles", str(self.profiles), "--culler-every", "1"]
        cmd = hub_command(self.state, self.port, "admin", self.users, options)
        env = {**os.environ, RUNS_ENV: str(self.runs)}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=self.base)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"hub never reached {what}:\n{self.text()[-3000:]}")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            return requests.get(self.url + "/hub/api/", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def wait_running(self) -> None:
        self.wait_for(lambda: RUNNING in self.text() and self.answers(), "the running state")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(30)


def _cmdlines() -> dict[int, list[str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if raw and process_start(int(entry.name)) is not None:  # zombies are gone already
            found[int(entry.name)] = raw.rstrip(b"\0").decode(errors="replace").split("\0")
    return found


def leftovers(hub: HubProcess) -> dict[int, list[str]]:
    """Live processes of this hub's proxy, services or launchers (by their command lines), not the hub."""
    marks = (str(hub.base), str(hub.runs))  # the culler names the profiles file, the reports service the runs root

    def ours(argv: list[str]) -> bool:
        proxy = any("configurable-http-proxy" in a for a in argv) and str(hub.port) in argv
        return proxy or any(mark in a for a in argv for mark in marks)

    return {pid: argv for pid, argv in _cmdlines().items() if ours(argv) and pid not in (os.getpid(), hub.proc.pid)}


def assert_none_left(hub: HubProcess, within: float = 8.0) -> None:
    deadline = time.monotonic() + within
    while (left := leftovers(hub)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"left running after the hub: {left}\n{hub.text()[-2000:]}"
    with socket.socket() as sock:  # nothing listens on the public port (closed connections may linger)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", hub.port))


@pytest.fixture
def hub_base(tmp_path, request):
    require_tool("configurable-http-proxy")
    if os.geteuid() == 0:
        request.getfixturevalue("accounts_ready")
    # users' homes and runs outside pytest's private tmp folder, where their accounts can reach them
    shared = Path(tempfile.mkdtemp(prefix="wb-life-"))
    shared.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(shared, ignore_errors=True))
    raw = yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())
    raw["culling"] = {
        "every": 1,
        "gpu": {
            "checks": 2,
            "working_hours": {"days": []},
            "metrics": {"source": "file", "path": str(tmp_path / "gpu_util.json")},
        },
    }
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(yaml.safe_dump(raw))
    port = free_port()
    started: list[HubProcess] = []

    def new_hub() -> HubProcess:
        started.append(HubProcess(tmp_path, port, profiles, shared))
        return started[-1].start()

    yield new_hub
    for hub in started:
        if hub.proc.poll() is None:
            hub.proc.terminate()  # JupyterHub's own shutdown also stops user servers
            try:
                hub.proc.wait(30)
            except subprocess.TimeoutExpired:
                hub.proc.kill()
                hub.proc.wait(10)
    for pid in leftovers(started[0]) if started else ():
        os.kill(pid, signal.SIGKILL)


def _record_exists(name: str) -> Callable[[HubProcess], bool]:
    """Whether this hub (not an earlier one on the state directory) recorded process ``name``."""

    def recorded(hub: HubProcess) -> bool:
        try:
            return json.loads((hub.state / PROCESSES_DIR / f"{name}.json").read_text())["parent"] == hub.proc.pid
        except (OSError, ValueError):
            return False

    return recorded


# when during start-up a signal arrives: fixed delays, and the steps of the start-up
AFTER_PROXY, AFTER_SERVICE = (
    _record_exists("proxy"),
    lambda hub: _record_exists("culler")(hub) or _record_exists("reports")(hub),
)
MOMENTS: list[tuple[str, float | Callable[[HubProcess], bool], int]] = [
    ("0.5 s after launch", 0.5, signal.SIGINT),
    ("1.5 s after launch", 1.5, signal.SIGTERM),
    ("the proxy started", AFTER_PROXY, signal.SIGINT),
    ("the proxy started", AFTER_PROXY, signal.SIGTERM),
    ("a service started", AFTER_SERVICE, signal.SIGINT),
    ("a service started", AFTER_SERVICE, signal.SIGTERM),
    ("3 s after launch", 3.0, signal.SIGINT),
]


def test_signals_during_start_up_leave_nothing_behind(hub_base):
    for moment, when, sig in MOMENTS:
        hub = hub_base()
        if callable(when):
            hub.wait_for(lambda hub=hub, when=when: when(hub), moment)
        else:
            time.sleep(when)
        running = RUNNING in hub.text()
        code = hub.stop(sig)
        assert code in (0, 128 + sig), (moment, sig, code, hub.text()[-2000:])
        assert "Traceback" not in hub.text(), (moment, sig, hub.text()[-3000:])
        if code == 128 + sig and not running:
            assert f"{signal.Signals(sig).name} during start-up" in hub.text()
        assert_none_left(hub)
    hub = hub_base()  # and once it runs, JupyterHub's own clean shutdown
    hub.wait_running()
    assert hub.stop(signal.SIGINT) == 0
    assert_none_left(hub)


def test_killed_hub_leaves_nothing_and_the_next_start_comes_up(hub_base):
    hub = hub_base()
    hub.wait_running()
    # a service without a URL may still be launching when the hub says it runs
    hub.wait_for(
        lambda: all(_record_exists(n)(hub) for n in ("proxy", "culler", "reports", "pipelines")),
        "four records",
        timeout=30,
    )
    assert len(leftovers(hub)) == 4  # the proxy and three services, each one process (the launcher exec'd)
    hub.proc.kill()
    hub.proc.wait(10)
    assert_none_left(hub)  # each dies with its parent, no one has to clean up

    again = hub_base()
    again.wait_running()
    assert again.answers()
    assert again.stop(signal.SIGTERM) == 0
    assert_none_left(again)


def test_next_start_reclaims_what_a_killed_hub_left(tmp_path):
    """A leftover that did not die with its hub (stopped, or its parent-death signal ignored) is
    stopped on the next start; a live hub's processes are refused, not touched; pid reuse is checked."""
    records = tmp_path / PROCESSES_DIR
    # a stand-in hub whose child ignores SIGTERM, started through the launcher and recorded
    ready = tmp_path / "ready"
    code = (
        "import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "pathlib.Path(sys.argv[1]).touch(); time.sleep(120)"
    )
    child = [sys.executable, "-c", code, str(ready)]
    script = tmp_path / "fake_hub.py"
    script.write_text(
        "import subprocess, time\nfrom workbench.hub.lifeline import launcher\n"
        f"subprocess.Popen(launcher({child!r}, name='svc', records={str(records)!r}))\ntime.sleep(120)\n"
    )
    fake_hub = subprocess.Popen([sys.executable, str(script)])
    deadline = time.monotonic() + 20
    while not ready.is_file() and time.monotonic() < deadline:
        time.sleep(0.05)
    record = json.loads((records / "svc.json").read_text())
    try:
        with pytest.raises(RuntimeError, match=rf"a hub \(pid {fake_hub.pid}\) is still running"):
            reclaim(records)
        assert process_start(record["pid"]) == record["start"]
        assert stop_started_by(records, parent=os.getpid()) == []  # not ours: left alone

        fake_hub.kill()
        fake_hub.wait(10)
        time.sleep(0.5)
        assert process_start(record["pid"]) == record["start"]  # it ignored the parent-death SIGTERM
        assert reclaim(records, timeout=0.5) == [record["pid"]]
        assert process_start(record["pid"]) is None and not (records / "svc.json").exists()
    finally:
        fake_hub.kill()
        if process_start(record["pid"]) is not None:
            os.kill(record["pid"], signal.SIGKILL)

    # a record whose pid now belongs to another process (a different start time) is not signalled
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (records / "old.json").write_text(
            json.dumps(
                {
                    "pid": bystander.pid,
                    "start": process_start(bystander.pid) - 1,
                    "parent": fake_hub.pid,
                    "parent_start": 1,
                }
            )
        )
        assert reclaim(records) == [] and bystander.poll() is None
        assert not (records / "old.json").exists()
    finally:
        bystander.kill()
        bystander.wait(10)


def test_culler_and_quota_use_the_profile_a_server_was_spawned_with(hub_base, tmp_path):
    """gpu-users get gpu-t4 by default: a server started without options is a GPU server for the
    culler (GPU idle timeout and utilisation check) and the quota, also after the hub restarts."""
    import asyncio
    import dataclasses
    from datetime import UTC, datetime, timedelta

    from workbench.hub.client import HubError, HubSession
    from workbench.hub.config import CULLER_SCOPES
    from workbench.hub.culler import GpuAwareCuller
    from workbench.hub.metrics import StaticMetrics
    from workbench.profiles import Culling, GpuCulling, WorkingHours, load_profiles

    path = tmp_path / "profiles.yaml"
    raw = yaml.safe_load(path.read_text())
    for entry in raw["profiles"]:
        entry["default"] = entry["slug"] == "gpu-t4"
    path.write_text(yaml.safe_dump(raw))
    hub = hub_base()
    hub.wait_running()
    password = "a long team passphrase"
    admin = HubSession(hub.url)
    admin.login("admin", admin_password_file(hub.state, "admin").read_text().strip())
    admin.api("POST", "/groups/gpu-users")
    kim = HubSession(hub.url)
    kim.signup("kim", password)
    admin.authorize("kim")
    kim.login("kim", password)
    admin.api("POST", "/groups/gpu-users/users", json={"users": ["kim"]})

    kim.api("POST", "/users/kim/server")  # no options
    kim.wait_ready("kim")
    with pytest.raises(
        HubError, match=r"GPU quota: .*the default server \(1 GPU\).*CUDA_VISIBLE_DEVICES, which is advisory"
    ):
        kim.api("POST", "/users/kim/servers/more", json={"profile": "gpu-t4"})

    profiles = load_profiles(path)
    never = WorkingHours(days=frozenset())
    policy = dataclasses.replace(
        profiles, culling=Culling(every=1, gpu=GpuCulling(threshold=10, checks=2, working_hours=never))
    )
    night = datetime(2026, 3, 3, 23, 0, tzinfo=UTC)
    token = admin.api("POST", "/users/admin/tokens", json={"scopes": CULLER_SCOPES, "note": "culler"})["token"]
    as_culler = HubSession(hub.url, token=token)

    def judged() -> tuple[str, int, bool]:
        server = as_culler.api("GET", "/users/kim")["servers"][""]
        culler = GpuAwareCuller(policy, StaticMetrics(99.0), now=lambda: night)
        info, _ = culler.server_profile(server)
        gpu_timeout = profiles.get("gpu-t4").idle_timeout
        stop = asyncio.run(culler.arbiter(inactive=timedelta(seconds=gpu_timeout), inactive_limit=3600, server=server))
        return info.profile, info.gpus, stop

    assert judged() == ("gpu-t4", 1, True)  # cpu-small would allow 3600 s
    state = as_culler.api("GET", "/users/kim")["servers"][""]["state"]
    assert state["spawned"] == {"profile": "gpu-t4", "gpus": 1}

    # the hub restarts; the server keeps running and keeps its profile
    assert hub.stop(signal.SIGKILL) == -signal.SIGKILL
    hub = hub_base()
    hub.wait_running()
    assert judged() == ("gpu-t4", 1, True)
    with pytest.raises(HubError, match="GPU quota"):
        kim.api("POST", "/users/kim/servers/more", json={"profile": "gpu-t4"})

    # an idle GPU outside working hours is stopped after two checks: the GPU check applies
    async def two_checks() -> None:
        culler = GpuAwareCuller(policy, StaticMetrics(1.0), now=lambda: night)
        for _ in range(2):
            await culler.check(f"{hub.url}/hub/api", token)

    asyncio.run(two_checks())
    deadline = time.monotonic() + 30
    while admin.server("kim") is not None and time.monotonic() < deadline:
        time.sleep(0.3)
    assert admin.server("kim") is None
