"""The pipelines service in a real hub: webhook runs, users' schedules, scopes, run-as-owner.

One hub for the module (``workbench hub --pipelines-dir``, real configurable-http-proxy) with one
declared pipeline (a notebook that sleeps ``seconds``) and one broken file. As root (CI) every run
executes as its owner's system account; otherwise the hub runs with ``--shared-account``.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
import requests
from conftest import require_tool
from hub_process import local_hub

from workbench.hub.accounts import account_name, ensure_account, lookup_account, private_dir
from workbench.hub.client import HubSession
from workbench.hub.pipelines import SCHEDULES_SCOPE, TEAM_OWNER, TRIGGER_GROUP, TRIGGER_SCOPE
from workbench.runs.layout import owner_dirname
from workbench.runs.pipelines import scan_pipelines

pytestmark = [pytest.mark.hub, pytest.mark.kernel, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "tests" / "fixtures" / "notebooks" / "sleeps.ipynb"
AS_ROOT = os.geteuid() == 0
ADMIN = "admin"

PIPELINE = """\
name: nap
parameters:
  seconds: 0
steps:
  nap:
    notebook: sleeps.ipynb
    parameters:
      seconds: ${params.seconds}
schedule: "0 0 1 1 *"
webhook:
  parameters: [seconds]
"""


@dataclasses.dataclass
class Hub:
    url: str
    base: Path
    runs: Path
    users: Path
    admin: HubSession
    admin_token: str

    @property
    def api(self) -> str:
        return f"{self.url}/services/pipelines/api"

    def home(self, name: str) -> Path:
        return self.users / (account_name(name) if AS_ROOT else owner_dirname(name))

    def token(self, user: str, scopes: list[str] | None = None, groups: tuple[str, ...] = ()) -> str:
        """A new user (made by the admin through the hub's API) and a token of theirs."""
        if self.admin.http.get(f"{self.url}/hub/api/users/{user}", timeout=10).status_code == 404:
            self.admin.api("POST", f"/users/{user}")
        for group in groups:
            self.admin.api("POST", f"/groups/{group}/users", json={"users": [user]})
        body = {"note": "test"} | ({"scopes": scopes} if scopes is not None else {})
        return self.admin.api("POST", f"/users/{user}/tokens", json=body)["token"]


def call(method: str, url: str, token: str | None = None, **kwargs) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.request(method, url, headers=headers, timeout=60, **kwargs)


def wait_launch(hub: Hub, launch_id: str, token: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        launch = call("GET", f"{hub.api}/runs/{launch_id}", token).json()
        if launch.get("state") != "running":
            return launch
        time.sleep(0.3)
    raise AssertionError(f"launch {launch_id} still running after {timeout} s")


def pipeline_run(hub: Hub, run_id: str) -> tuple:
    """The pipeline run ``run_id`` as the run registry reads it: ``(path, owner, record)``."""
    good, _ = scan_pipelines(hub.runs)
    found = [entry for entry in good if entry[2].get("run_id") == run_id]
    assert len(found) == 1, (run_id, [g[0] for g in good])
    return found[0]


@pytest.fixture(scope="module")
def hub(request):
    require_tool("configurable-http-proxy")
    if AS_ROOT:
        request.getfixturevalue("accounts_ready")
    base = Path(tempfile.mkdtemp(prefix="wb-pipelines-"))
    base.chmod(0o755)  # the runs' accounts reach the pipelines folder, their homes and runs below it
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    runs, users, pipelines = base / "runs", base / "users", base / "pipelines"
    pipelines.mkdir(mode=0o755)
    shutil.copy(NOTEBOOK, pipelines / "sleeps.ipynb")
    (pipelines / "nap.yaml").write_text(PIPELINE)
    (pipelines / "broken.yaml").write_text("name: broken\nsteps: {}\nschedule: every day\n")
    for path in pipelines.iterdir():
        path.chmod(0o644)
    ready = ("/services/pipelines/api/pipelines", 401)  # the hub and its pipelines service answer
    with local_hub(base, ADMIN, ["--pipelines-dir", str(pipelines)], ready) as running:
        yield Hub(
            url=running.url,
            base=base,
            runs=runs,
            users=users,
            admin=running.admin,
            admin_token=running.admin.new_token(ADMIN),
        )


def test_status_lists_declared_pipelines_and_reports_bad_files(hub):
    assert call("GET", f"{hub.api}/pipelines").status_code == 401
    assert call("GET", f"{hub.api}/pipelines", "not-a-token").status_code == 401
    status = call("GET", f"{hub.api}/pipelines", hub.admin_token).json()
    assert [p["name"] for p in status["pipelines"]] == ["nap"]
    nap = status["pipelines"][0]
    assert nap["schedule"] == "0 0 1 1 *" and nap["next_fire"].endswith("-01-01T00:00:00+00:00")
    assert nap["webhook"] == {"parameters": ["seconds"]}
    assert [e["file"] for e in status["errors"]] == ["broken.yaml"]
    # the status page is behind the hub's login
    page = requests.get(f"{hub.url}/services/pipelines/", timeout=10, allow_redirects=False)
    assert page.status_code == 302 and "/hub/api/oauth2/authorize" in page.headers["Location"]


def test_webhook_needs_the_scope_checks_parameters_and_records_the_trigger(hub):
    ci = hub.token("ci-bot", scopes=[TRIGGER_SCOPE], groups=(TRIGGER_GROUP,))
    unscoped = hub.token("ci-bot", scopes=["read:users:name!user"])
    ana = hub.token("ana")  # a full user token: every right of ana, who is not in the group
    url = f"{hub.api}/pipelines/nap/runs"
    body = {"parameters": {"seconds": 0}}
    assert call("POST", url, json=body).status_code == 401
    assert call("POST", url, "forged-token", json=body).status_code == 401
    for token in (unscoped, ana):
        refused = call("POST", url, token, json=body)
        assert refused.status_code == 403 and TRIGGER_SCOPE in refused.json()["error"]
    bad_type = call("POST", url, ci, json={"parameters": {"seconds": "soon"}})
    assert bad_type.status_code == 400 and "seconds" in bad_type.json()["error"]
    not_allowed = call("POST", url, ci, json={"parameters": {"other": 1}})
    assert not_allowed.status_code == 400 and "'other'" in not_allowed.json()["error"]
    assert call("POST", f"{hub.api}/pipelines/broken/runs", ci, json=body).status_code == 404

    started = call("POST", url, ci, json=body)
    assert started.status_code == 202, started.text
    launch = started.json()
    assert launch["trigger"]["kind"] == "webhook" and launch["trigger"]["by"] == "ci-bot"
    done = wait_launch(hub, launch["id"], ci)
    assert done["state"] == "succeeded", done
    assert launch["run"] is not None and launch["run"] == done["run"]  # the 202 already names the run
    assert call("GET", f"{hub.api}/runs/{launch['id']}", ana).status_code == 404  # not ana's launch
    team = hub.runs / owner_dirname(TEAM_OWNER)
    (path, owner, record) = pipeline_run(hub, done["run"])
    assert owner == TEAM_OWNER and path.parent == team and record["state"] == "succeeded"
    assert record["trigger"] == {"kind": "webhook", "by": "ci-bot", "id": launch["id"]}  # how the launch finds it
    assert record["parameters"] == {"seconds": 0}
    if AS_ROOT:
        account = lookup_account(TEAM_OWNER)
        assert account is not None and done["uid"] == account.uid != 0
        assert team.stat().st_uid == account.uid


@pytest.fixture(scope="module")
def homes(hub):
    """ana and bob, each with the notebook in their home (owned by their account as root)."""
    for user in ("ana", "bob"):
        home = hub.home(user)
        if AS_ROOT:
            account = ensure_account(user, home)
            private_dir(home, account, 0o700)
        else:
            home.mkdir(parents=True, exist_ok=True)
        shutil.copy(NOTEBOOK, home / "sleeps.ipynb")
        if AS_ROOT:
            os.chown(home / "sleeps.ipynb", account.uid, account.gid)
    return {u: hub.token(u, scopes=[SCHEDULES_SCOPE]) for u in ("ana", "bob")}


def test_users_manage_only_their_own_schedules(hub, homes):
    ana, bob = homes["ana"], homes["bob"]
    url = f"{hub.api}/schedules/ana/nightly"
    body = {"cron": "0 0 1 1 *", "notebook": "sleeps.ipynb", "parameters": {"seconds": "0"}}
    created = call("PUT", url, ana, json=body)
    assert created.status_code == 201, created.text
    assert created.json()["next_fire"].endswith("-01-01T00:00:00+00:00")
    assert call("PUT", url, ana, json=body).status_code == 200
    assert call("GET", url, ana).json()["parameters"] == {"seconds": "0"}
    # bob cannot read, replace, delete or list ana's; his list does not show it
    for method in ("GET", "PUT", "DELETE"):
        assert call(method, url, bob, json=body).status_code == 403
    assert call("PUT", f"{hub.api}/schedules/ana/planted", bob, json=body).status_code == 403
    assert call("GET", f"{hub.api}/schedules/ana", bob).status_code == 403
    assert call("GET", f"{hub.api}/schedules", bob).json()["schedules"] == []
    # without the scope, or without a token, nothing
    unscoped = hub.token("ana", scopes=["read:users:name!user"])
    assert call("GET", url, unscoped).status_code == 403 and call("GET", url).status_code == 401
    # an admin sees everyone's
    everyone = call("GET", f"{hub.api}/schedules", hub.admin_token).json()["schedules"]
    assert [(s["user"], s["name"]) for s in everyone] == [("ana", "nightly")]
    assert call("DELETE", url, ana).status_code == 204 and call("GET", url, ana).status_code == 404


def test_schedules_cannot_reach_outside_the_home(hub, homes):
    ana = homes["ana"]
    url = f"{hub.api}/schedules/ana/sneaky"
    bob_notebook = hub.home("bob") / "sleeps.ipynb"
    os.symlink(bob_notebook, hub.home("ana") / "linked.ipynb")
    cases = {
        "outside your home": {"notebook": f"../{hub.home('bob').name}/sleeps.ipynb"},
        "leads outside your home": {"notebook": "linked.ipynb"},
        "unknown field": {"notebook": "sleeps.ipynb", "runs_dir": str(hub.runs / "bob")},
        "seconds": {"notebook": "sleeps.ipynb", "parameters": {"seconds": "soon"}},
        "profile": {"notebook": "sleeps.ipynb", "profile": "no-such-profile"},
    }
    for message, fields in cases.items():
        refused = call("PUT", url, ana, json={"cron": "0 0 1 1 *", **fields})
        assert refused.status_code == 400 and message in refused.json()["error"], (message, refused.text)
    assert call("PUT", f"{hub.api}/schedules/ana/.hidden", ana, json={"cron": "0 0 1 1 *"}).status_code == 400
    assert call("GET", f"{hub.api}/schedules/ana", ana).json()["schedules"] == []


def test_a_schedule_runs_as_its_user(hub, homes):
    ana = homes["ana"]
    url = f"{hub.api}/schedules/ana/now"
    body = {"cron": "0 0 1 1 *", "notebook": "sleeps.ipynb", "parameters": {"seconds": 0}}
    assert call("PUT", url, ana, json=body).status_code == 201
    started = call("POST", url + "/runs", ana)
    assert started.status_code == 202, started.text
    assert started.json()["trigger"] == {"kind": "user", "by": "ana", "id": started.json()["id"]}
    assert call("POST", f"{hub.api}/schedules/ana/now/runs", homes["bob"]).status_code == 403
    done = wait_launch(hub, started.json()["id"], ana)
    assert done["state"] == "succeeded", done
    assert started.json()["run"] == done["run"] is not None
    runs = hub.runs / owner_dirname("ana")
    (path, owner, record) = pipeline_run(hub, done["run"])
    assert owner == "ana" and path.parent == runs
    assert record["trigger"] == {"kind": "user", "by": "ana", "id": started.json()["id"]}
    # the launch list: ana sees her launch and no one else's; an admin sees every launch
    mine = call("GET", f"{hub.api}/runs", ana).json()["launches"]
    everyone = call("GET", f"{hub.api}/runs", hub.admin_token).json()["launches"]
    assert [launch["id"] for launch in mine] == [started.json()["id"]] and mine[0]["run"] == done["run"]
    assert {launch["owner"] for launch in everyone} >= {"ana"} and len(everyone) >= len(mine)
    assert all(launch["owner"] == "ana" for launch in mine)
    if AS_ROOT:
        account = lookup_account("ana")
        assert done["uid"] == account.uid != 0
        assert {p.stat().st_uid for p in runs.rglob("*")} == {account.uid}
