"""The hub in local mode, end to end: real JupyterHub, configurable-http-proxy, single-user servers.

One hub for the module (``workbench hub`` on free ports); every test makes its own users. As root
(CI) the hub gives every user their own system account; otherwise it runs with ``--shared-account``.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
import yaml
from conftest import require_tool
from hub_process import local_hub

from workbench.hub.accounts import account_name
from workbench.hub.auth import admin_password_file
from workbench.hub.client import HubError, HubSession
from workbench.hub.config import CULLER_SCOPES
from workbench.profiles import load_profiles
from workbench.runs import RUNS_ENV, RunRecord, new_run_dir
from workbench.runs.layout import owner_dirname

pytestmark = [pytest.mark.hub, pytest.mark.kernel, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
ADMIN, PASSWORD = "admin", "a long team passphrase"
AS_ROOT = os.geteuid() == 0


@dataclasses.dataclass
class Hub:
    url: str
    state: Path
    runs: Path
    users: Path
    profiles_path: Path
    admin: HubSession
    log: Path

    def home(self, name: str) -> Path:
        """The working directory of ``name``'s server."""
        return self.users / (account_name(name) if AS_ROOT else owner_dirname(name))

    @property
    def profiles(self):
        return load_profiles(self.profiles_path)

    def user(self, name: str, groups: tuple[str, ...] = ()) -> HubSession:
        """Sign up through the form, approve as admin, log in through the form."""
        session = HubSession(self.url)
        session.signup(name, PASSWORD)
        self.admin.authorize(name)
        session.login(name, PASSWORD)
        for group in groups:
            self.admin.api("POST", f"/groups/{group}/users", json={"users": [name]})
        return session

    def wait_gone(self, name: str, server: str = "", timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.admin.server(name, server) is None:
                return True
            time.sleep(0.3)
        return False


@pytest.fixture(scope="module")
def hub(request):
    require_tool("configurable-http-proxy")
    if AS_ROOT:
        request.getfixturevalue("accounts_ready")
    # not under pytest's private tmp folder: the users' accounts must reach their homes and runs
    base = Path(tempfile.mkdtemp(prefix="wb-hub-"))
    base.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    raw = yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())
    # the hub's own culler: checks every second, never inside working hours, utilisation from a file
    raw["culling"] = {
        "every": 1,
        "gpu": {
            "threshold": 10,
            "checks": 2,
            "working_hours": {"days": []},
            "metrics": {"source": "file", "path": str(base / "gpu_util.json")},
        },
    }
    profiles_path = base / "profiles.yaml"
    profiles_path.write_text(yaml.safe_dump(raw))
    options = ["--gpu-devices", "0,1", "--profiles", str(profiles_path), "--culler-every", "1"]
    with local_hub(base, ADMIN, options) as running:
        for group in ("gpu-users",):
            running.admin.api("POST", f"/groups/{group}")
        yield Hub(
            url=running.url,
            state=running.state,
            runs=base / "runs",
            users=base / "users",
            profiles_path=profiles_path,
            admin=running.admin,
            log=running.log,
        )


def execute(hub: Hub, user: str, token: str, code: str, server: str = "") -> str:
    """Run ``code`` in a new kernel over the proxied websocket; the ``text/plain`` result."""
    import websocket

    base = f"{hub.url}/user/{user}/" + (f"{server}/" if server else "")
    auth = {"Authorization": f"token {token}"}
    kernel = requests.post(base + "api/kernels", headers=auth, json={"name": "python3"}, timeout=30)
    kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    ws = websocket.create_connection(
        base.replace("http://", "ws://") + f"api/kernels/{kernel_id}/channels",
        header=[f"Authorization: token {token}"],
        timeout=60,
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": user,
                        "session": uuid.uuid4().hex,
                        "msg_type": "execute_request",
                        "version": "5.3",
                        "date": datetime.now(UTC).isoformat(),
                    },
                    "parent_header": {},
                    "metadata": {},
                    "channel": "shell",
                    "buffers": [],
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                }
            )
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "execute_result":
                return msg["content"]["data"]["text/plain"]
            if msg["msg_type"] == "error":
                raise AssertionError(f"{msg['content']['ename']}: {msg['content']['evalue']}")
        raise AssertionError("no execute_result within 60 s")
    finally:
        ws.close()
        requests.delete(base + f"api/kernels/{kernel_id}", headers=auth, timeout=30)


def test_state_is_private_and_bound_to_localhost(hub):
    import psutil

    for name in ("jupyterhub_cookie_secret", "proxy_token"):
        assert (hub.state / name).stat().st_mode & 0o777 == 0o600, name
    assert (hub.state / "jupyterhub.sqlite").is_file()
    port = int(hub.url.rsplit(":", 1)[1])
    listening = [c for c in psutil.net_connections("inet") if c.status == psutil.CONN_LISTEN and c.laddr.port == port]
    assert listening and {c.laddr.ip for c in listening} == {"127.0.0.1"}
    assert (
        "proxy_token" not in hub.log.read_text()
        and (hub.state / "proxy_token").read_text().strip() not in hub.log.read_text()
    )


def test_login_spawn_with_profile_and_run_code(hub):
    alice = hub.user("alice")
    alice.spawn("alice", profile="cpu-large")  # through the spawn form
    model = alice.wait_ready("alice")
    assert model["user_options"] == {"profile": "cpu-large", "spawned": {"profile": "cpu-large", "gpus": 0}}
    token = alice.new_token("alice")
    assert execute(hub, "alice", token, "1+1") == "2"

    probe = (
        "import json, os, resource; json.dumps([os.getcwd(), os.environ['WORKBENCH_PROFILE'], os.environ['MEM_LIMIT'], "
        "os.environ['CPU_LIMIT'], os.environ['OMP_NUM_THREADS'], os.environ['CUDA_VISIBLE_DEVICES'], "
        f"os.environ[{RUNS_ENV!r}], resource.getrlimit(resource.RLIMIT_AS)[0]])"
    )
    profile = hub.profiles.get("cpu-large")
    expected = [
        str(hub.home("alice")),
        "cpu-large",
        str(profile.mem_limit_bytes),
        str(profile.cpu_limit),
        str(int(profile.cpu_limit)),
        "",
        str(hub.runs),
        profile.mem_limit_bytes,
    ]
    assert json.loads(ast.literal_eval(execute(hub, "alice", token, probe))) == expected

    alice.api("DELETE", "/users/alice/server")
    assert hub.wait_gone("alice")


def test_users_are_isolated(hub):
    bob = hub.user("bob")
    bob.api("POST", "/users/bob/server", json={"profile": "cpu-small"})
    bob.wait_ready("bob")
    carl = hub.user("carl")
    carl_token = carl.new_token("carl")
    as_carl = {"Authorization": f"token {carl_token}"}

    # bob's server: carl's token and carl's cookie are both refused
    assert requests.get(f"{hub.url}/user/bob/api/status", headers=as_carl, timeout=30).status_code == 403
    assert carl.http.get(f"{hub.url}/user/bob/lab", timeout=30).status_code == 403
    bob_token = bob.new_token("bob")
    assert requests.get(
        f"{hub.url}/user/bob/api/status", headers={"Authorization": f"token {bob_token}"}, timeout=30
    ).ok
    # admin APIs and pages
    assert requests.get(f"{hub.url}/hub/api/users", headers=as_carl, timeout=30).status_code == 403
    assert requests.post(f"{hub.url}/hub/api/users/mallory", headers=as_carl, timeout=30).status_code == 403
    assert requests.delete(f"{hub.url}/hub/api/users/bob/server", headers=as_carl, timeout=30).status_code in (403, 404)
    with pytest.raises(HubError, match="403"):
        carl.api("GET", "/users")
    assert carl.http.get(f"{hub.url}/hub/admin", timeout=30).status_code == 403
    # the reports service sends anonymous visitors to the hub's login page
    anonymous = requests.get(f"{hub.url}/services/reports/", timeout=30)
    assert anonymous.url.split("?")[0] == f"{hub.url}/hub/login" and anonymous.history
    assert requests.get(f"{hub.url}/services/reports/api/runs", timeout=30, allow_redirects=False).status_code == 403

    assert hub.admin.server("bob") is not None  # carl's DELETE did nothing
    bob.api("DELETE", "/users/bob/server")
    assert hub.wait_gone("bob")


ATTACK = """
import json, os, subprocess
def probe(fn):
    try:
        fn()
        return "allowed"
    except PermissionError:
        return "PermissionError"
    except OSError as exc:
        return type(exc).__name__
def write(path):
    with open(path, "w") as fh:
        fh.write("x")
def read(path):
    with open(path, "rb") as fh:
        fh.read()
targets = json.loads({targets!r})
out = {{"uid": int(subprocess.check_output(["id", "-u"])), "euid": os.geteuid(), "groups": os.getgroups()}}
out["read"] = {{name: probe(lambda p=p: read(p)) for name, p in targets["read"].items()}}
out["write"] = {{name: probe(lambda p=p: write(p)) for name, p in targets["write"].items()}}
out["list"] = {{name: probe(lambda p=p: os.listdir(p)) for name, p in targets["list"].items()}}
out["signal"] = probe(lambda: os.kill(targets["pid"], 0))
json.dumps(out)
"""


def attack_from_kernel(hub: Hub, user: str, token: str, targets: dict) -> dict:
    """Run the probes of ``targets`` in ``user``'s kernel; what each attempt got."""
    return json.loads(ast.literal_eval(execute(hub, user, token, ATTACK.format(targets=json.dumps(targets)))))


@pytest.mark.skipif(not AS_ROOT, reason="per-user system accounts need the hub to run as root (CI runs as root)")
def test_per_user_accounts_keep_users_and_hub_state_apart(hub):
    from workbench.runs.layout import owner_dir

    mia, noah = hub.user("mia"), hub.user("noah")
    for session, name in ((mia, "mia"), (noah, "noah")):
        session.api("POST", f"/users/{name}/server", json={"profile": "cpu-small"})
    for session, name in ((mia, "mia"), (noah, "noah")):
        session.wait_ready(name)
    noah_home, noah_runs, mia_runs = hub.home("noah"), owner_dir(hub.runs, "noah"), owner_dir(hub.runs, "mia")
    assert (noah_home.stat().st_mode & 0o777, noah_runs.stat().st_mode & 0o777) == (0o700, 0o755)
    assert (hub.runs.stat().st_uid, hub.runs.stat().st_mode & 0o777) == (0, 0o755)
    noah_pid = hub.admin.server("noah")["state"]["pid"]
    proxy_pid = int((hub.state / "proxy.pid").read_text())
    secrets = {name: str(hub.state / name) for name in ("jupyterhub_cookie_secret", "jupyterhub.sqlite", "proxy_token")}
    secrets["admin_password"] = str(admin_password_file(hub.state, ADMIN))
    secrets["proxy_environ"] = f"/proc/{proxy_pid}/environ"  # the proxy's token is in its environment
    secrets["noah_server_environ"] = f"/proc/{noah_pid}/environ"  # noah's API token
    targets = {
        "read": secrets,
        "write": {
            "noah_home": str(noah_home / "planted.py"),
            "noah_runs": str(noah_runs / "planted.json"),
            "runs_root": str(hub.runs / "planted.json"),
            "own_home": str(hub.home("mia") / "mine.txt"),
            "own_runs": str(mia_runs / "mine.json"),
        },
        "list": {"noah_home": str(noah_home), "state": str(hub.state), "noah_runs": str(noah_runs)},
        "pid": noah_pid,
    }
    got = attack_from_kernel(hub, "mia", mia.new_token("mia"), targets)
    assert got["read"] == dict.fromkeys(secrets, "PermissionError"), got
    assert got["write"] == {
        "noah_home": "PermissionError",
        "noah_runs": "PermissionError",
        "runs_root": "PermissionError",
        "own_home": "allowed",
        "own_runs": "allowed",
    }, got
    assert got["list"] == {"noah_home": "PermissionError", "state": "PermissionError", "noah_runs": "allowed"}, got
    assert got["signal"] == "PermissionError", got
    noah_uid = attack_from_kernel(hub, "noah", noah.new_token("noah"), {"read": {}, "write": {}, "list": {}, "pid": 1})[
        "uid"
    ]
    assert 0 not in (got["uid"], got["euid"], noah_uid) and got["uid"] != noah_uid and 0 not in got["groups"]
    assert (mia_runs / "mine.json").stat().st_uid == got["uid"] and not (noah_runs / "planted.json").exists()
    for name in ("mia", "noah"):
        hub.admin.api("DELETE", f"/users/{name}/server")
    assert hub.wait_gone("mia") and hub.wait_gone("noah")


def test_admin_name_cannot_be_squatted(hub):
    squatter = HubSession(hub.url)
    squatter.signup(ADMIN, "the squatter's own passphrase")
    with pytest.raises(HubError, match="refused"):
        squatter.login(ADMIN, "the squatter's own passphrase")
    # a fresh name signs up unapproved: no name is approved at sign-up any more
    squatter.signup("olga", PASSWORD)
    with pytest.raises(HubError, match="refused"):
        squatter.login("olga", PASSWORD)
    HubSession(hub.url).login(ADMIN, admin_password_file(hub.state, ADMIN).read_text().strip())


def test_login_throttling(hub):
    hub.user("pete"), hub.user("quinn")
    guesser = HubSession(hub.url)
    for _ in range(4):
        with pytest.raises(HubError):
            guesser.login("pete", "wrong guess 123")
    guesser.login("pete", PASSWORD)  # under the limit: the right password works and resets the count
    guesser = HubSession(hub.url)
    for _ in range(5):
        with pytest.raises(HubError):
            guesser.login("pete", "wrong guess 123")
    with pytest.raises(HubError, match="refused"):
        guesser.login("pete", PASSWORD)  # blocked for login_block_seconds, right password or not
    xsrf = guesser._form_xsrf("/hub/login")
    page = guesser.http.post(
        f"{hub.url}/hub/login", data={"username": "pete", "password": PASSWORD, "_xsrf": xsrf}, timeout=30
    )
    assert "Too many failed logins for pete" in page.text
    HubSession(hub.url).login("quinn", PASSWORD)  # other users are not affected


def test_reset_admin_password(hub):
    path = admin_password_file(hub.state, ADMIN)
    old = path.read_text().strip()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "workbench",
            "hub",
            "--state-dir",
            str(hub.state),
            "--admin",
            ADMIN,
            "--reset-admin-password",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    new = path.read_text().strip()
    assert new != old and path.stat().st_mode & 0o777 == 0o600
    assert new not in proc.stdout + proc.stderr and str(path) in proc.stdout  # not a terminal: not shown
    with pytest.raises(HubError, match="refused"):
        HubSession(hub.url).login(ADMIN, old)
    fresh = HubSession(hub.url)
    fresh.login(ADMIN, new)
    assert fresh.api("GET", f"/users/{ADMIN}")["admin"] is True


def test_gpu_quota(hub):
    carol = hub.user("carol", groups=("gpu-users",))
    assert hub.profiles.max_gpus_per_user == 1
    carol.api("POST", "/users/carol/servers/gpu1", json={"profile": "gpu-t4"})
    carol.wait_ready("carol", "gpu1")
    state = hub.admin.server("carol", "gpu1")["state"]
    assert state["gpu_devices"] in (["0"], ["1"])

    with pytest.raises(HubError, match=r"GPU quota: profile 'gpu-t4' needs 1 GPU.*at most 1.*'gpu1' \(1 GPU\)"):
        carol.api("POST", "/users/carol/servers/gpu2", json={"profile": "gpu-t4"})
    assert hub.admin.server("carol", "gpu2") is None
    carol.api("POST", "/users/carol/servers/cpu", json={"profile": "cpu-small"})
    carol.wait_ready("carol", "cpu")

    dave = hub.user("dave")
    with pytest.raises(HubError, match=r"profile 'gpu-t4' is only for members of \['gpu-users'\]"):
        dave.api("POST", "/users/dave/server", json={"profile": "gpu-t4"})
    for name in ("gpu1", "cpu"):
        carol.api("DELETE", f"/users/carol/servers/{name}")
        assert hub.wait_gone("carol", name)


class _Webhook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        self.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def webhook():
    _Webhook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", _Webhook.received
    server.shutdown()


def test_gpu_culler_notifies_in_working_hours_and_stops_outside(hub, webhook):
    import asyncio

    from workbench.hub.culler import GpuAwareCuller, WebhookNotifier
    from workbench.hub.metrics import StaticMetrics
    from workbench.profiles import Culling, GpuCulling, WorkingHours

    url, received = webhook
    erin = hub.user("erin", groups=("gpu-users",))
    erin.api("POST", "/users/erin/server", json={"profile": "gpu-t4"})
    erin.wait_ready("erin")
    # a token with exactly the culler service's scopes
    token = hub.admin.api("POST", f"/users/{ADMIN}/tokens", json={"scopes": CULLER_SCOPES, "note": "culler"})["token"]
    api = f"{hub.url}/hub/api"
    hours = WorkingHours(days=frozenset(range(7)))  # 08:00-19:00 UTC every day
    profiles = dataclasses.replace(
        hub.profiles, culling=Culling(every=1, gpu=GpuCulling(threshold=10, checks=2, working_hours=hours))
    )
    day, night = datetime(2026, 3, 3, 10, 0, tzinfo=UTC), datetime(2026, 3, 3, 22, 0, tzinfo=UTC)

    async def checks(metrics, now, n):
        culler = GpuAwareCuller(profiles, metrics, notify=WebhookNotifier(url), now=lambda: now)
        for _ in range(n):
            await culler.check(api, token)
        return culler

    # busy GPU: left alone, day and night
    asyncio.run(checks(StaticMetrics(85.0), day, 3))
    asyncio.run(checks(StaticMetrics(85.0), night, 3))
    assert hub.admin.server("erin")["ready"] and received == []

    # idle GPU in working hours: one notification after 2 checks, the server keeps running
    async def daytime():
        culler = GpuAwareCuller(profiles, StaticMetrics(2.0), notify=WebhookNotifier(url), now=lambda: day)
        await culler.check(api, token)
        assert received == []
        await culler.check(api, token)
        assert len(received) == 1
        await culler.check(api, token)

    asyncio.run(daytime())
    assert len(received) == 1 and hub.admin.server("erin")["ready"]
    note = received[0]
    assert (note["user"], note["server"], note["profile"], note["idle_checks"], note["utilisation"]) == (
        "erin",
        "",
        "gpu-t4",
        2,
        2.0,
    )

    # idle GPU outside working hours: stopped after 2 checks
    async def nighttime():
        culler = GpuAwareCuller(profiles, StaticMetrics(2.0), now=lambda: night)
        await culler.check(api, token)
        assert hub.admin.server("erin") is not None
        await culler.check(api, token)

    asyncio.run(nighttime())
    assert hub.wait_gone("erin", timeout=30)
    assert len(received) == 1


def test_culler_service_stops_idle_gpu_server(hub):
    frank = hub.user("frank", groups=("gpu-users",))
    grace = hub.user("grace", groups=("gpu-users",))
    frank.api("POST", "/users/frank/servers/train", json={"profile": "gpu-t4"})
    grace.api("POST", "/users/grace/server", json={"profile": "gpu-t4"})
    frank.wait_ready("frank", "train")
    grace.wait_ready("grace")
    # the hub's culler service reads this file every second (working hours: never)
    (hub.state.parent / "gpu_util.json").write_text(json.dumps({"frank/train": 1.0, "grace/": 95.0}))
    assert hub.wait_gone("frank", "train", timeout=45), hub.log.read_text()[-3000:]
    time.sleep(3)
    assert hub.admin.server("grace")["ready"]
    (hub.state.parent / "gpu_util.json").write_text("{}")
    grace.api("DELETE", "/users/grace/server")
    assert hub.wait_gone("grace")


@pytest.fixture(scope="module")
def sample_runs(hub):
    good, good_id = new_run_dir(hub.runs, "churn-lgbm", owner="alice")
    RunRecord(
        path=good,
        run_id=good_id,
        name="churn-lgbm",
        notebook="train.ipynb",
        state="succeeded",
        owner="alice",
        start="2026-03-03T10:00:00.000Z",
        end="2026-03-03T10:05:00.000Z",
        duration_s=300.0,
    ).write_status()
    (good / "metrics.json").write_text(json.dumps({"cv_auc": 0.81234, "n_rows": 7043, "fold_auc": [0.8, 0.82]}))
    (good / "report.html").write_text(
        "<html><body><h1>Churn report</h1><script>document.title='ran'</script></body></html>"
    )
    bad, bad_id = new_run_dir(hub.runs, "broken-run", owner="bob")
    RunRecord(
        path=bad,
        run_id=bad_id,
        name="broken-run",
        notebook="train.ipynb",
        state="failed",
        owner="bob",
        start="2026-03-04T09:00:00.000Z",
    ).write_status()
    return good, bad


@pytest.fixture(scope="module")
def malformed_runs(hub, sample_runs):
    """Runs mallory left to break the index for everyone: a list, a number for a date, a symlink to hub state."""
    runs = {}
    for name, status in [("as-list", "[]"), ("start-number", '{"state": "succeeded", "start": 5}'), ("linked", None)]:
        path, _ = new_run_dir(hub.runs, name, owner="mallory")
        if status is None:
            (path / "status.json").symlink_to(hub.state / "jupyterhub_cookie_secret")
        else:
            (path / "status.json").write_text(status)
        runs[name] = path
    return runs


def test_reports_index_survives_malformed_runs(hub, sample_runs, malformed_runs):
    good, bad = sample_runs
    reader = hub.user("kim")
    page = reader.http.get(f"{hub.url}/services/reports/", timeout=30)
    assert page.status_code == 200 and good.name in page.text and bad.name in page.text
    for name, path in malformed_runs.items():
        assert f'data-run="{path.name}"' in page.text, name
    api = reader.http.get(f"{hub.url}/services/reports/api/runs", timeout=30)
    assert api.status_code == 200
    states = {r["run"]: r["state"] for r in api.json()}
    assert states[good.name] == "succeeded" and states[bad.name] == "failed"
    assert {states[p.name] for p in malformed_runs.values()} == {"invalid"}
    secret = (hub.state / "jupyterhub_cookie_secret").read_text().strip()
    assert secret not in page.text and secret not in api.text


def test_reports_service(hub, sample_runs):
    good, bad = sample_runs
    reader = hub.user("ivy")
    page = reader.http.get(f"{hub.url}/services/reports/", timeout=30)
    assert page.status_code == 200 and "Team reports" in page.text
    assert good.name in page.text and bad.name in page.text
    assert "cv_auc = 0.8123" in page.text and "n_rows = 7043" in page.text and "fold_auc" not in page.text
    assert page.text.index(bad.name) < page.text.index(good.name)  # newest first
    report = reader.http.get(f"{hub.url}/services/reports/runs/alice/{good.name}/report.html", timeout=30)
    assert report.status_code == 200 and "<h1>Churn report</h1>" in report.text
    assert "sandbox" in report.headers["Content-Security-Policy"]
    assert reader.http.get(f"{hub.url}/services/reports/runs/bob/{bad.name}/report.html", timeout=30).status_code == 404
    assert (
        reader.http.get(f"{hub.url}/services/reports/runs/..%2F..%2Fstate/report.html", timeout=30).status_code == 404
    )
    rows = reader.http.get(f"{hub.url}/services/reports/api/runs", timeout=30).json()
    assert {(r["run"], r["state"], r["owner"]) for r in rows} >= {
        (good.name, "succeeded", "alice"),
        (bad.name, "failed", "bob"),
    }
    mine = reader.http.get(f"{hub.url}/services/reports/api/runs?owner=bob", timeout=30).json()
    assert [r["run"] for r in mine] == [bad.name]


# ------------------------------------------------------------- the reports service, attacked


def _report_url(hub: Hub, run: str) -> str:
    return f"{hub.url}/services/reports/runs/{run}/report.html"


@pytest.fixture(scope="module")
def attack(hub):
    """Runs in the per-owner layout, another run's parameters, and a secret outside the runs root."""
    tag = uuid.uuid4().hex
    secret = hub.state.parent / "secret.txt"
    secret.write_text(f"OUTSIDE-SECRET-{tag}")
    outside = hub.state.parent / "outside-run"
    outside.mkdir(exist_ok=True)
    (outside / "report.html").write_text(f"<p>OUTSIDE-REPORT-{tag}</p>")
    mallory = hub.runs / owner_dirname("mallory")
    run, _ = new_run_dir(hub.runs, "swap", owner="mallory")
    (run / "report.html").write_text("<p>mallory's own report</p>")
    other, _ = new_run_dir(hub.runs, "private", owner="alice")
    (other / "params.json").write_text(json.dumps({"api_key": f"OTHER-RUN-PARAMS-{tag}"}))
    return SimpleNamespace(
        run=run,
        other_params=other / "params.json",
        secret=secret,
        outside=outside,
        mallory=mallory,
        leaks=(f"OUTSIDE-SECRET-{tag}", f"OUTSIDE-REPORT-{tag}", f"OTHER-RUN-PARAMS-{tag}"),
    )


def _leaked(text: str, attack) -> list[str]:
    return [marker for marker in attack.leaks if marker in text]


def test_reports_serve_per_owner_layout_with_strict_headers(hub, attack):
    reader = hub.user("kit")
    report = reader.http.get(_report_url(hub, f"{attack.mallory.name}/{attack.run.name}"), timeout=30)
    assert report.status_code == 200 and report.text == "<p>mallory's own report</p>"
    policy = {d.split()[0]: d.split()[1:] for d in report.headers["Content-Security-Policy"].split("; ")}
    assert policy["default-src"] == ["'none'"] and policy["sandbox"] == []  # sandboxed: scripts, forms, same origin off
    assert policy["form-action"] == ["'none'"] and "connect-src" not in policy and "script-src" not in policy
    assert policy["style-src"] == ["'unsafe-inline'"] and policy["img-src"] == ["data:"]
    assert report.headers["X-Content-Type-Options"] == "nosniff" and report.headers["Referrer-Policy"] == "no-referrer"
    index = reader.http.get(f"{hub.url}/services/reports/", timeout=30)
    assert index.status_code == 200
    index_policy = index.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in index_policy and "default-src 'none'" in index_policy
    assert index.headers["X-Frame-Options"] == "DENY" and index.headers["Referrer-Policy"] == "no-referrer"
    assert index.headers["X-Content-Type-Options"] == "nosniff"
    missing = reader.http.get(_report_url(hub, f"{attack.mallory.name}/no-such-run"), timeout=30)
    assert missing.status_code == 404 and "default-src 'none'" in missing.headers["Content-Security-Policy"]
    api = reader.http.get(f"{hub.url}/services/reports/api/runs", timeout=30)
    assert api.status_code == 200 and api.headers["X-Content-Type-Options"] == "nosniff"


def test_reports_refuse_symlinks_fifos_and_parent_references(hub, attack):
    reader = hub.user("lou")
    served: dict[str, int] = {}

    def fetch(label: str, run: str) -> None:
        response = reader.http.get(_report_url(hub, run), timeout=15)
        assert not _leaked(response.text, attack), f"{label} served what lies outside the run"
        served[label] = response.status_code

    owner = attack.mallory.name
    for label, target in (("report -> secret", attack.secret), ("report -> other run's params", attack.other_params)):
        run, _ = new_run_dir(hub.runs, "link", owner="mallory")
        (run / "report.html").symlink_to(target)
        fetch(label, f"{owner}/{run.name}")
    (attack.mallory / "20260101-000000-linked-abcdef").symlink_to(attack.outside, target_is_directory=True)
    fetch("run folder -> outside", f"{owner}/20260101-000000-linked-abcdef")
    (hub.runs / "eve").symlink_to(attack.outside.parent, target_is_directory=True)
    fetch("owner folder -> outside", f"eve/{attack.outside.name}")
    fifo_run, _ = new_run_dir(hub.runs, "fifo", owner="mallory")
    os.mkfifo(fifo_run / "report.html")
    fetch("fifo report", f"{owner}/{fifo_run.name}")
    folder_run, _ = new_run_dir(hub.runs, "folder", owner="mallory")
    (folder_run / "report.html").mkdir()
    fetch("report is a folder", f"{owner}/{folder_run.name}")
    for i, run in enumerate(
        (
            "..%2Foutside-run",
            "%2E%2E%2Foutside-run",
            f"{owner}%2F..%2F..%2Foutside-run",
            f"{owner}/..%2F..%2Foutside-run",
            "%2Fsrv",
            "a/b/c",
            f"{owner}/{attack.run.name}%00",
        )
    ):
        fetch(f"parent reference {i}", run)
    assert served == dict.fromkeys(served, 404), served
    # a report directly in an owner folder is not a run's
    (attack.mallory / "report.html").write_text("<p>loose</p>")
    assert reader.http.get(_report_url(hub, attack.mallory.name), timeout=15).status_code == 404


def test_reports_symlink_swap_race_never_serves_outside(hub, attack):
    """A teammate swaps their report between a file and symlinks while the service reads it."""
    reader = hub.user("max")
    report, good = attack.run / "report.html", "<p>mallory's own report</p>"
    targets = [None, attack.secret, attack.other_params]
    swaps, stop = [0], threading.Event()

    def swapper() -> None:
        deadline = time.monotonic() + 20
        while swaps[0] < 3000 and time.monotonic() < deadline and not stop.is_set():
            target = targets[swaps[0] % 3]
            tmp = attack.run / f".swap-{swaps[0]}"
            if target is None:
                tmp.write_text(good)
            else:
                tmp.symlink_to(target)
            os.replace(tmp, report)  # atomic: the name is always a file or a symlink
            swaps[0] += 1
            time.sleep(0.001)

    thread = threading.Thread(target=swapper, daemon=True)
    statuses: dict[int, int] = {}
    leaks, wrong = [], []
    thread.start()
    try:
        while thread.is_alive():
            response = reader.http.get(_report_url(hub, f"{attack.mallory.name}/{attack.run.name}"), timeout=15)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            leaks += _leaked(response.text, attack)
            if response.status_code == 200 and response.text != good:
                wrong.append(response.text[:200])
    finally:
        stop.set()
        thread.join()
        report.unlink(missing_ok=True)
        report.write_text(good)
    print(f"{swaps[0]} swaps, responses {statuses}")
    assert swaps[0] >= 1000 and sum(statuses.values()) >= 50, (swaps, statuses)
    assert leaks == [] and wrong == []
    assert set(statuses) <= {200, 404} and statuses.get(200) and statuses.get(404)


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.browser
def test_browser_login_spawn_run_cell_and_read_report(hub, sample_runs, tmp_path):
    chromium = require_tool("chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    good, _ = sample_runs
    hub.user("judy")
    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(90_000)
            page.goto(f"{hub.url}/hub/login")
            page.fill("#username_input", "judy")
            page.fill("#password_input", PASSWORD)
            page.click("#login_submit, input[type=submit], button[type=submit]")
            page.goto(f"{hub.url}/hub/spawn")
            page.check("#profile-cpu-small")
            page.click("#spawn_form button[type=submit]")
            page.wait_for_url("**/user/judy/lab**", timeout=120_000)
            try:
                kernel_socket = lambda ws: "/api/kernels/" in ws.url and "/channels" in ws.url  # noqa: E731
                with page.expect_websocket(kernel_socket, timeout=120_000):
                    page.click('.jp-LauncherCard[data-category="Notebook"]')
                page.get_by_text("Python 3 (ipykernel) | Idle").wait_for()
                editor = page.locator(".jp-Notebook .jp-Cell .cm-content").first
                editor.click()
                page.keyboard.type("1+1")
                page.keyboard.press("Shift+Enter")
                output = page.locator(".jp-OutputArea-output").first
                output.wait_for()
                assert output.inner_text().strip() == "2"
            except Exception:
                page.screenshot(path=str(tmp_path / "failure.png"))
                print(f"screenshot of the failure: {tmp_path / 'failure.png'}")
                raise
            shot = tmp_path / "jupyterlab.png"
            page.screenshot(path=str(shot))
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000

            page.goto(f"{hub.url}/services/reports/")
            page.click(f'tr[data-run="{good.name}"] a.report')
            page.wait_for_url(f"**/runs/alice/{good.name}/report.html")
            assert page.locator("h1").inner_text() == "Churn report"
        finally:
            browser.close()
    hub.admin.api("DELETE", "/users/judy/server")
    assert hub.wait_gone("judy")


def _report_with_everything(tmp_path: Path) -> bytes:
    """A real report (nbconvert, as ``workbench run`` writes it): a figure, an explain-style image, a script."""
    import base64
    import io

    import matplotlib

    matplotlib.use("agg")
    import matplotlib.pyplot as plt
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    from workbench.jobs.report import render_report

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    html = (
        f'<img id="explain-figure" alt="figure" src="data:image/png;base64,{png}"/>'
        '<p id="styled" style="color: rgb(200, 0, 0)">styled</p>'
        "<script>document.title = 'script ran'</script><form id=f action='https://example.invalid/'></form>"
    )
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Report"),
            new_code_cell(
                "fig",
                outputs=[
                    new_output("display_data", data={"image/png": png}),
                    new_output("display_data", data={"text/html": html, "text/plain": "figure"}),
                ],
            ),
        ]
    )
    nbformat.validate(nb)
    return render_report(nb, tmp_path / "report.html", title="csp check").read_bytes()


@pytest.mark.browser
def test_report_policy_keeps_reports_rendering_and_stops_scripts(tmp_path):
    """The reports' Content-Security-Policy in a real browser: styles and data: images on, scripts off."""
    chromium = require_tool("chromium")
    playwright = pytest.importorskip("playwright.sync_api")
    from workbench.hub.reports.app import REPORT_CSP

    body = _report_with_everything(tmp_path)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Security-Policy", REPORT_CSP)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{server.server_port}/report.html")
                widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.complete && i.naturalWidth)")
                styled = page.eval_on_selector("#styled", "e => getComputedStyle(e).color")
                stylesheet = page.eval_on_selector(".jp-Cell", "e => getComputedStyle(e).paddingTop")
                title = page.title()
            finally:
                browser.close()
    finally:
        server.shutdown()
    assert len(widths) == 2 and all(w and w > 0 for w in widths), widths  # the figure and the explain image
    assert styled == "rgb(200, 0, 0)" and stylesheet not in ("", "0px")  # inline styles and the report's stylesheet
    assert title == "csp check"  # the report's script did not run
