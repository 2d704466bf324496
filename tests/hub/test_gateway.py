"""The job gateway, tried as a hostile teammate would: a real JupyterHub checks the tokens, the
gateway runs in-process (tornado), the Kubernetes API is the kmock emulator.

The hub is configured with the gateway's own scope, role and service scopes from
``workbench.hub.config``; users and tokens (with and without the submit scope) are made through
its REST API. Every Job that reaches the emulator is validated strictly against the Kubernetes schema.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import kubernetes_validate
import nbformat
import pytest
import pytest_asyncio
import yaml
from conftest import require_tool
from hub_process import stop_process, wait_until_up
from kmock import subresource
from nbformat.v4 import new_code_cell, new_notebook

from workbench.hub.config import (
    GATEWAY,
    GATEWAY_SCOPE,
    GATEWAY_SERVICE_SCOPES,
    SERVER_TOKEN_SCOPES,
    free_port,
)
from workbench.hub.gateway.app import Gateway, make_app
from workbench.hub.gateway.policy import Refused, check_gpu_cap, server_gpus
from workbench.jobs import k8s_client
from workbench.jobs.k8s import api_client
from workbench.jobs.k8s_manifest import JOB_SERVICE_ACCOUNT, RUNS_MOUNT
from workbench.profiles import load_profiles
from workbench.runs.layout import owner_dirname

pytestmark = pytest.mark.hub
ROOT = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(ROOT / "hub" / "profiles.yaml")
NS = "team-a"
SA_TOKEN = "gateway-sa-token-5c1e"
SERVICE_TOKEN = "gateway-service-token-" + "7" * 20
SETUP_TOKEN = "setup-service-token-" + "3" * 20
GINA = "gina-r@example.com"  # in gpu-users; an unusual name, so the runs folder is escaped
ANA = "ana"  # in no group
LOG = subresource("log")


# The single-user server: a stand-in process that keeps the token the hub gave it (as a notebook
# server's kernel sees $JUPYTERHUB_API_TOKEN) and answers HTTP so the hub counts it as running.
STAND_IN_SERVER = """
import http.server, os, pathlib, urllib.parse
token = pathlib.Path(os.environ["TOKEN_DIR"]) / os.environ["JUPYTERHUB_USER"]
token.write_text(os.environ["JUPYTERHUB_API_TOKEN"])
token.chmod(0o600)
url = urllib.parse.urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"])
http.server.HTTPServer((url.hostname, url.port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def _hub_config(base: Path, port: int, hub_port: int, api_port: int) -> Path:
    (base / "server.py").write_text(STAND_IN_SERVER)
    (base / "tokens").mkdir(mode=0o700)
    config = f"""
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.JupyterHub.db_url = "sqlite:///{base / "hub.sqlite"}"
c.JupyterHub.cookie_secret_file = "{base / "cookie_secret"}"
c.JupyterHub.pid_file = "{base / "hub.pid"}"
c.ConfigurableHTTPProxy.pid_file = "{base / "proxy.pid"}"
c.Authenticator.allowed_users = {{"{ANA}", "{GINA}"}}
c.JupyterHub.load_groups = {{"gpu-users": {{"users": ["{GINA}"]}}}}
c.JupyterHub.services = [{{"name": "{GATEWAY}", "api_token": "{SERVICE_TOKEN}"}},
                         {{"name": "setup", "api_token": "{SETUP_TOKEN}"}}]
c.JupyterHub.custom_scopes = {{"{GATEWAY_SCOPE}": {{"description": "submit Jobs"}}}}
c.JupyterHub.load_roles = [
    {{"name": "user", "scopes": ["self", "{GATEWAY_SCOPE}"]}},
    {{"name": "workbench-job-gateway", "scopes": {GATEWAY_SERVICE_SCOPES!r}, "services": ["{GATEWAY}"]}},
    {{"name": "setup", "scopes": ["admin:users", "tokens", "servers", "read:servers"], "services": ["setup"]}},
]
c.Spawner.server_token_scopes = {SERVER_TOKEN_SCOPES!r}
c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
c.SimpleLocalProcessSpawner.home_dir_template = "{base / "homes"}/{{username}}"
c.Spawner.cmd = ["{sys.executable}", "{base / "server.py"}"]
c.Spawner.environment = {{"TOKEN_DIR": "{base / "tokens"}"}}
c.Spawner.http_timeout = c.Spawner.start_timeout = 60
"""
    path = base / "jupyterhub_config.py"
    path.write_text(config)
    return path


def _hub_api(url: str, method: str, path: str, token: str, body: dict | None = None) -> dict:
    req = urllib.request.Request(
        f"{url}/hub/api{path}",
        method=method,
        data=json.dumps(body).encode() if body else None,
        headers={"Authorization": f"token {token}"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    """A real JupyterHub (with configurable-http-proxy) that knows the gateway service and two users."""
    require_tool("configurable-http-proxy")
    base = tmp_path_factory.mktemp("gateway-hub")
    port, hub_port = free_port(), free_port()
    config = _hub_config(base, port, hub_port, free_port())
    log = base / "hub.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=base,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(proc, log, lambda: _hub_api(url, "GET", "/", SETUP_TOKEN) is not None)
        # ana's token inherits her roles (so the 'user' role must grant the scope); gina's asks for it alone
        tokens = {
            ANA: _hub_api(url, "POST", f"/users/{ANA}/tokens", SETUP_TOKEN, {"note": "inherits"})["token"],
            GINA: _hub_api(
                url, "POST", f"/users/{GINA}/tokens", SETUP_TOKEN, {"scopes": [GATEWAY_SCOPE], "note": "gateway test"}
            )["token"],
        }
        tokens["no-scope"] = _hub_api(
            url,
            "POST",
            f"/users/{GINA}/tokens",
            SETUP_TOKEN,
            {"scopes": ["read:users:name!user"], "note": "no submit scope"},
        )["token"]
        yield {"url": url, "api": f"http://127.0.0.1:{hub_port}/hub/api", "tokens": tokens, "base": base}
    finally:
        stop_process(proc)


@pytest_asyncio.fixture
async def gateway(hub, kmock, tmp_path, monkeypatch):
    """The gateway app on a free port, its Kubernetes client pointed at kmock with its own token."""
    from jupyterhub.services.auth import HubAuth
    from tornado.httpserver import HTTPServer

    for resource in ("v1/pods", "v1/configmaps", "v1/secrets", "batch/v1/jobs"):
        kmock.resources[resource] = {"namespaced": True}
    kmock["post", kmock.resource("batch/v1/jobs")] << (
        lambda request: {**request.data, "metadata": {**request.data["metadata"], "uid": "job-uid-1"}}
    )
    kubeconfig = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "gw",
        "clusters": [{"name": "gw", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "users": [{"name": "gw", "user": {"token": SA_TOKEN}}],
        "contexts": [{"name": "gw", "context": {"cluster": "gw", "user": "gw", "namespace": NS}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(kubeconfig))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    api = api_client()
    auth = HubAuth(api_url=hub["api"], api_token=SERVICE_TOKEN, cache_max_age=0)
    gw = Gateway(profiles=PROFILES, namespace=NS, api=api, hub_auth=auth)
    server = HTTPServer(make_app(gw))
    sock_port = free_port()
    server.listen(sock_port, address="127.0.0.1")
    yield {
        "url": f"http://127.0.0.1:{sock_port}/services/job-gateway/",
        "kmock": kmock,
        "tokens": hub["tokens"],
        "hub": hub,
        "app": gw,
    }
    server.stop()
    api.close()


@pytest.fixture
def notebook(tmp_path):
    nb = new_notebook(cells=[new_code_cell("lr = 0.1", metadata={"tags": ["parameters"]}), new_code_cell("print(lr)")])
    path = tmp_path / "train.ipynb"
    nbformat.write(nb, path)
    return path


def _request(notebook: Path, **overrides) -> dict:
    return {
        "notebook": k8s_client.notebook_payload(notebook),
        "params": {"lr": 0.2},
        "name": "churn lgbm",
        "profile": "cpu-small",
        "gpus": 0,
        "secrets": [],
        "timeout": 600,
        "notify": None,
        **overrides,
    }


async def _call(url: str, method: str, path: str, token: str | None, body: dict | None = None) -> tuple[int, dict]:
    """One request to the gateway from a worker thread (the gateway and kmock share this event loop)."""

    def call() -> tuple[int, dict]:
        headers = {"Content-Type": "application/json"} | ({"Authorization": f"token {token}"} if token else {})
        req = urllib.request.Request(
            url + path, method=method, headers=headers, data=json.dumps(body).encode() if body is not None else None
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    return await asyncio.to_thread(call)


def _jobs(kmock) -> list[str]:
    return [name for (res, _ns, name) in kmock.objects if res.plural == "jobs"]


def _running_gpu_job(owner: str, name: str = "earlier-run-a1b2c3") -> dict:
    container = {"name": "notebook", "image": "workbench/gpu:0.1.0", "resources": {"limits": {"nvidia.com/gpu": "1"}}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": NS,
            "annotations": {"workbench/owner": owner},
            "labels": {"app.kubernetes.io/component": "notebook-job", "app.kubernetes.io/managed-by": "workbench"},
        },
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
        "status": {"active": 1},
    }


@pytest.mark.asyncio
async def test_requests_without_a_valid_token_or_the_scope_are_refused(gateway, notebook):
    url, kmock = gateway["url"], gateway["kmock"]
    cases = [
        (None, "no hub token"),
        ("not-a-real-token", "does not accept this token"),
        (SERVICE_TOKEN, "not a user's token"),  # the gateway's own service token is no user's
        (gateway["tokens"]["no-scope"], f"lacks the {GATEWAY_SCOPE} scope"),
    ]
    for token, message in cases:
        status, body = await _call(url, "POST", "api/jobs", token, _request(notebook))
        assert status == 403 and message in body["error"], (token and token[:8], body)
        status, body = await _call(url, "GET", "api/jobs/some-job-abc123", token)
        assert status == 403
    assert _jobs(kmock) == []
    assert not [r for r in kmock if r.method.value == "POST"]


@pytest.mark.asyncio
async def test_a_profile_outside_the_users_groups_is_refused(gateway, notebook):
    url, tokens = gateway["url"], gateway["tokens"]
    status, body = await _call(url, "POST", "api/jobs", tokens[ANA], _request(notebook, profile="gpu-t4"))
    assert status == 403 and body["error"] == "profile gpu-t4 is not allowed for your groups (allowed: gpu-users)"
    status, body = await _call(url, "POST", "api/jobs", tokens[GINA], _request(notebook, profile="gpu-a100"))
    assert status == 403 and "(allowed: ml-platform)" in body["error"]
    # asking for a GPU without naming a profile does not pick one outside the groups either
    status, body = await _call(url, "POST", "api/jobs", tokens[ANA], _request(notebook, profile=None, gpus=1))
    assert status == 403 and "offers 1 GPU(s)" in body["error"]
    assert _jobs(gateway["kmock"]) == []


@pytest.mark.asyncio
async def test_a_secret_off_the_allow_list_is_refused(gateway, notebook):
    url, tokens = gateway["url"], gateway["tokens"]
    for secret in ("hub-secret", "ml-platform-s3"):  # the hub's own, and another profile's
        status, body = await _call(
            url, "POST", "api/jobs", tokens[ANA], _request(notebook, secrets=["kaggle-api", secret])
        )
        assert (
            status == 403
            and f"secret {secret!r} is not allowed on profile cpu-small (allowed: kaggle-api)" in body["error"]
        )
    assert _jobs(gateway["kmock"]) == []


@pytest.mark.asyncio
async def test_a_gpu_over_the_cap_is_refused(gateway, notebook):
    url, tokens, kmock = gateway["url"], gateway["tokens"], gateway["kmock"]
    kmock.objects["batch/v1/jobs", NS, "earlier-run-a1b2c3"] = _running_gpu_job(GINA)
    kmock.objects["batch/v1/jobs", NS, "anas-run-d4e5f6"] = _running_gpu_job(ANA, "anas-run-d4e5f6")  # not gina's
    status, body = await _call(url, "POST", "api/jobs", tokens[GINA], _request(notebook, profile="gpu-t4"))
    assert status == 403, body
    assert (
        "may hold at most 1 (max_gpus_per_user) and already hold 1 in: job 'earlier-run-a1b2c3' (1 GPU)"
        in body["error"]
    )
    assert sorted(_jobs(kmock)) == ["anas-run-d4e5f6", "earlier-run-a1b2c3"]
    # once that Job has ended, the same request goes through
    kmock.objects["batch/v1/jobs", NS, "earlier-run-a1b2c3"].patch(
        {"status": {"active": 0, "conditions": [{"type": "Complete", "status": "True"}]}}
    )
    status, body = await _call(url, "POST", "api/jobs", tokens[GINA], _request(notebook, profile="gpu-t4"))
    assert status == 201, body


@pytest.mark.asyncio
async def test_a_notebook_servers_token_submits_and_its_gpu_counts(gateway, notebook):
    """A server started on a GPU profile: its own $JUPYTERHUB_API_TOKEN carries the submit scope, and
    the gateway, asking the real hub, counts that server's GPU against the cap."""
    hub, url, kmock = gateway["hub"], gateway["url"], gateway["kmock"]
    user = GINA

    def spawn() -> str:
        _hub_api(hub["url"], "POST", f"/users/{user}/server", SETUP_TOKEN, {"profile": "gpu-t4"})
        deadline = time.monotonic() + 60
        while not _hub_api(hub["url"], "GET", f"/users/{user}", SETUP_TOKEN)["servers"].get("", {}).get("ready"):
            assert time.monotonic() < deadline, "the stand-in server did not start"
            time.sleep(0.2)
        return (hub["base"] / "tokens" / user).read_text()

    def stop() -> None:
        _hub_api(hub["url"], "DELETE", f"/users/{user}/server", SETUP_TOKEN)
        deadline = time.monotonic() + 60
        while _hub_api(hub["url"], "GET", f"/users/{user}", SETUP_TOKEN)["servers"]:
            assert time.monotonic() < deadline, "the stand-in server did not stop"
            time.sleep(0.2)

    server_token = await asyncio.to_thread(spawn)
    try:
        assert server_token not in gateway["tokens"].values()
        status, body = await _call(url, "POST", "api/jobs", server_token, _request(notebook, profile="gpu-t4"))
        assert status == 403, body
        assert "already hold 1 in: the default server (1 GPU)" in body["error"]
        assert _jobs(kmock) == []
        status, body = await _call(url, "POST", "api/jobs", server_token, _request(notebook, profile="cpu-small"))
        assert status == 201, body
    finally:
        await asyncio.to_thread(stop)


def test_servers_count_towards_the_gpu_cap():
    """The hub's user model: servers with the profile they were started with; stopped ones hold nothing."""
    servers = {
        "": {"user_options": {"profile": "gpu-t4"}},
        "cpu": {"user_options": {"profile": "cpu-large"}},
        "old": {"user_options": {"profile": "gpu-t4"}, "stopped": True},
    }
    held = server_gpus(servers, PROFILES, ["gpu-users"])
    assert held == {"the default server": 1}
    with pytest.raises(Refused, match=r"already hold 1 in: the default server \(1 GPU\)") as err:
        check_gpu_cap(PROFILES, 1, held)
    assert err.value.status == 403
    check_gpu_cap(PROFILES, 0, held)  # CPU jobs are never capped


def test_the_secrets_allow_list_is_a_list_of_names():
    from workbench.profiles import parse_profiles

    raw = yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())
    assert PROFILES.get("cpu-small").secrets == ("kaggle-api",)
    for bad in ("kaggle-api", ["Kaggle API"], [3]):
        raw["profiles"][0]["secrets"] = bad
        with pytest.raises(ValueError, match="secrets must be a list of Kubernetes Secret names"):
            parse_profiles(raw)


@pytest.mark.asyncio
async def test_a_pod_spec_cannot_be_smuggled_in(gateway, notebook):
    url, token = gateway["url"], gateway["tokens"][ANA]
    for extra in (
        {"spec": {"hostPID": True}},
        {"image": "evil/root:latest"},
        {"serviceAccountName": "hub"},
        {"volumes": [{"hostPath": {"path": "/"}}]},
    ):
        status, body = await _call(url, "POST", "api/jobs", token, {**_request(notebook), **extra})
        assert status == 400 and "unknown fields" in body["error"]
    status, body = await _call(
        url, "POST", "api/jobs", token, {**_request(notebook), "notebook": {"path": "relative.ipynb"}}
    )
    assert status == 400 and "absolute path" in body["error"]
    assert _jobs(gateway["kmock"]) == []


@pytest.mark.asyncio
async def test_a_good_request_creates_the_job_from_the_fixed_template(gateway, notebook):
    url, tokens, kmock = gateway["url"], gateway["tokens"], gateway["kmock"]
    status, body = await _call(url, "POST", "api/jobs", tokens[GINA], _request(notebook, secrets=["kaggle-api"]))
    assert status == 201, body
    name = body["name"]
    job = kmock.objects["batch/v1/jobs", NS, name].history[0].raw
    for version in ("1.29", kubernetes_validate.utils.latest_version()):
        kubernetes_validate.validate(job, version, strict=True)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    text = json.dumps(job)
    assert "privileged" not in text and "hostPath" not in text and "hostNetwork" not in text
    assert pod["serviceAccountName"] == JOB_SERVICE_ACCOUNT != "hub" and pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["image"] == PROFILES.get("cpu-small").image
    assert container["envFrom"] == [{"secretRef": {"name": "kaggle-api"}}]
    folder = owner_dirname(GINA)
    assert folder != GINA
    writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
    assert writable == [{"name": "runs", "mountPath": f"{RUNS_MOUNT}/{folder}", "subPath": folder}]
    assert {"name": "runs", "mountPath": RUNS_MOUNT, "readOnly": True} in container["volumeMounts"]
    assert job["metadata"]["annotations"]["workbench/owner"] == GINA
    assert job["metadata"]["annotations"]["workbench/notebook"] == "train.ipynb"  # not the gateway's scratch path
    # the ConfigMap follows the Job and is owned by it; every call used the gateway's own token
    configmap = kmock.objects["v1/configmaps", NS, name]
    assert configmap["metadata"]["ownerReferences"][0]["name"] == name
    assert [(r.method.value, r.resource.plural) for r in kmock if r.method.value == "POST"] == [
        ("POST", "jobs"),
        ("POST", "configmaps"),
    ]
    assert {r.headers.get("Authorization") for r in kmock} == {f"Bearer {SA_TOKEN}"}


@pytest.mark.asyncio
async def test_only_the_owner_sees_logs_and_stops_a_job(gateway, notebook):
    url, tokens, kmock = gateway["url"], gateway["tokens"], gateway["kmock"]
    status, body = await _call(url, "POST", "api/jobs", tokens[GINA], _request(notebook))
    name = body["name"]
    for method, path in (
        ("GET", f"api/jobs/{name}"),
        ("GET", f"api/jobs/{name}/log?pod={name}-x"),
        ("DELETE", f"api/jobs/{name}"),
    ):
        status, body = await _call(url, method, path, tokens[ANA])
        assert status == 404 and f"you have no job {name!r}" in body["error"]
    assert not kmock.objects["batch/v1/jobs", NS, name].deleted
    status, body = await _call(url, "GET", "api/jobs/never-made-abc123", tokens[GINA])
    assert status == 404 and "you have no job 'never-made-abc123'" in body["error"]
    # a pod outside the Job (the hub's) is not readable through the Job's log route
    kmock.objects["v1/pods", NS, "hub-5d9f"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hub-5d9f", "namespace": NS},
    }
    status, body = await _call(url, "GET", f"api/jobs/{name}/log?pod=hub-5d9f", tokens[GINA])
    assert status == 404 and "has no pod 'hub-5d9f'" in body["error"]
    assert not [r for r in kmock if r.resource is not None and r.resource.plural == "pods" and "log" in str(r.url)]
    status, body = await _call(url, "DELETE", f"api/jobs/{name}", tokens[GINA])
    assert status == 202 and kmock.objects["batch/v1/jobs", NS, name].deleted


@pytest.mark.asyncio
async def test_workbench_run_submits_through_the_gateway_and_follows_to_success(gateway, notebook, monkeypatch, capsys):
    """``run_k8s`` from a user pod: hub token and gateway URL from the environment, no kubeconfig."""
    from workbench.jobs.k8s import run_k8s

    url, kmock = gateway["url"], gateway["kmock"]
    monkeypatch.setenv("WORKBENCH_JOB_GATEWAY_URL", url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", gateway["tokens"][GINA])
    monkeypatch.setattr(k8s_client, "submit_and_follow", _fast(k8s_client.submit_and_follow))
    kmock["get", LOG] << b"Executing notebook\ncv_auc 0.8461\n"
    task = asyncio.create_task(
        asyncio.to_thread(
            run_k8s,
            notebook=str(notebook),
            params={"lr": 0.2},
            name="churn",
            profile="cpu-small",
            secret=["kaggle-api"],
        )
    )
    for _ in range(1000):
        if _jobs(kmock):
            break
        await asyncio.sleep(0.02)
    (job,) = _jobs(kmock)
    kmock.objects["v1/pods", NS, f"{job}-x7k2p"] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "status": {"phase": "Running"},
        "metadata": {
            "name": f"{job}-x7k2p",
            "namespace": NS,
            "labels": {"job-name": job},
            "creationTimestamp": "2025-01-01T00:00:00Z",
        },
    }
    for _ in range(1000):
        if len(kmock[LOG]):
            break
        await asyncio.sleep(0.02)
    kmock.objects["batch/v1/jobs", NS, job].patch(
        {
            "status": {
                "startTime": "2025-01-01T00:00:00Z",
                "completionTime": "2025-01-01T00:01:05Z",
                "succeeded": 1,
                "conditions": [{"type": "Complete", "status": "True", "reason": "Completed"}],
            }
        }
    )
    rc = await asyncio.wait_for(task, 60)
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "cv_auc 0.8461" in out.out and out.out.count("cv_auc") == 1
    assert out.out.strip().splitlines()[-1] == f"job {job}: succeeded in 1m05s"
    assert gateway["tokens"][GINA] not in out.out + out.err


def _fast(fn):
    def call(**kwargs):
        return fn(**kwargs, poll=0.05)

    return call


@pytest.mark.asyncio
async def test_gateway_refusals_reach_the_user_as_sentences(gateway, notebook, monkeypatch, capsys):
    from workbench.jobs.k8s import run_k8s

    monkeypatch.setenv("WORKBENCH_JOB_GATEWAY_URL", gateway["url"])
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", gateway["tokens"][ANA])
    rc = await asyncio.to_thread(run_k8s, notebook=str(notebook), params={}, name="t", profile="gpu-a100")
    err = capsys.readouterr().err
    assert rc == 3
    assert err.strip() == (
        "job gateway: 403 Forbidden: profile gpu-a100 is not allowed for your groups (allowed: ml-platform)"
    )
    monkeypatch.delenv("WORKBENCH_JOB_GATEWAY_URL")
    assert run_k8s(notebook=str(notebook), params={}, name="t") == 3
    assert "$WORKBENCH_JOB_GATEWAY_URL is not set" in capsys.readouterr().err


def test_unreachable_gateway(notebook, monkeypatch, capsys):
    from workbench.jobs.k8s import run_k8s

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("WORKBENCH_JOB_GATEWAY_URL", f"http://127.0.0.1:{port}/services/job-gateway/")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret-token-value")
    assert run_k8s(notebook=str(notebook), params={}, name="t") == 3
    err = capsys.readouterr().err
    assert f"cannot reach the job gateway at http://127.0.0.1:{port}/services/job-gateway/" in err
    assert "secret-token-value" not in err


def test_service_entry_point_refuses_to_start_without_its_setting(tmp_path, monkeypatch, capsys):
    from workbench.hub.gateway.service import main

    monkeypatch.delenv("JUPYTERHUB_SERVICE_URL", raising=False)
    assert main(["--profiles", str(ROOT / "hub" / "profiles.yaml")]) == 2
    assert "runs as a JupyterHub service" in capsys.readouterr().err
    monkeypatch.setenv("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10102")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    assert main(["--profiles", str(ROOT / "hub" / "profiles.yaml"), "--credentials", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot use the service-account credentials in {tmp_path}" in err and "job-gateway token Secret" in err
