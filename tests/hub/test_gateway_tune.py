"""The job gateway's tune submissions (``api/tunes``) through the real gateway app, a real hub
checking the tokens and kmock as the Kubernetes API: an Indexed Job from the fixed template, its
GPUs counted per pod, nothing smuggled in."""

from __future__ import annotations

import asyncio
import json

import kubernetes_validate
import pytest
import yaml

from tests.hub.test_gateway import ANA, GINA, NS, PROFILES, ROOT, _call, _jobs, gateway, hub, notebook  # noqa: F401
from workbench.cli import main
from workbench.jobs import k8s_client
from workbench.jobs.k8s_manifest import RUNS_MOUNT
from workbench.jobs.tune.k8s import SPACE_KEY
from workbench.jobs.tune.k8s_storage import STORAGE_ENV
from workbench.runs.layout import owner_dirname

pytestmark = pytest.mark.hub


def _tune_request(path, **tune) -> dict:
    return {
        "notebook": k8s_client.notebook_payload(path),
        "params": {},
        "name": "ignored: the study names the Job",
        "profile": "cpu-small",
        "gpus": 0,
        "secrets": [],
        "tune": {"space": {"lr": "loguniform(0.01,0.3)"}, "metric": "cv_auc", "study": "churn", **tune},
    }


@pytest.mark.asyncio
async def test_a_tune_request_creates_an_indexed_job_from_the_fixed_template(gateway, notebook):  # noqa: F811
    url, tokens, kmock = gateway["url"], gateway["tokens"], gateway["kmock"]
    status, body = await _call(url, "POST", "api/tunes", tokens[ANA], _tune_request(notebook, parallelism=3))
    assert status == 201, body
    job = kmock.objects["batch/v1/jobs", NS, body["name"]].history[0].raw
    for version in ("1.29", kubernetes_validate.utils.latest_version()):
        kubernetes_validate.validate(job, version, strict=True)
    assert body["name"].startswith("churn-")
    assert (job["spec"]["completionMode"], job["spec"]["parallelism"], job["spec"]["completions"]) == ("Indexed", 3, 3)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["workbench", "tune"] and container["image"] == PROFILES.get("cpu-small").image
    assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    configmap = kmock.objects["v1/configmaps", NS, body["name"]]
    assert yaml.safe_load(configmap["data"][SPACE_KEY]) == {"lr": "loguniform(0.01,0.3)"}
    assert configmap["metadata"]["ownerReferences"][0]["name"] == body["name"]


@pytest.mark.asyncio
async def test_a_tune_request_cannot_smuggle_a_pod_spec_or_dodge_the_gpu_cap(gateway, notebook):  # noqa: F811
    url, tokens, kmock = gateway["url"], gateway["tokens"], gateway["kmock"]
    attacks = [
        ({**_tune_request(notebook), "spec": {"hostPID": True}}, "unknown fields"),
        (_tune_request(notebook, template={"spec": {"hostNetwork": True}}), "unknown tune fields"),
        (_tune_request(notebook, space={"lr": "uniform(0,1)$(cat /etc/shadow)"}), "is not a number"),
        (_tune_request(notebook, study="x; rm -rf /"), "study name"),
        (_tune_request(notebook, parallelism=10_000), "parallelism must be"),
        ({**_tune_request(notebook), "tune": "all of it"}, "tune must be an object"),
    ]
    for request, message in attacks:
        status, body = await _call(url, "POST", "api/tunes", tokens[GINA], request)
        assert status == 400 and message in body["error"], (request, body)
    # one GPU per pod on two pods is two GPUs, over gina's cap of one
    two = {**_tune_request(notebook, parallelism=2), "profile": "gpu-t4", "gpus": 1}
    status, body = await _call(url, "POST", "api/tunes", tokens[GINA], two)
    assert status == 403 and "this job needs 2 GPU(s)" in body["error"], body
    assert _jobs(kmock) == []
    one = {**_tune_request(notebook, parallelism=1), "profile": "gpu-t4", "gpus": 1}
    status, body = await _call(url, "POST", "api/tunes", tokens[GINA], one)
    assert status == 201, body
    job = kmock.objects["batch/v1/jobs", NS, body["name"]].history[0].raw
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1" and json.dumps(job).count("hostPID") == 0


@pytest.mark.asyncio
async def test_workbench_tune_submits_an_indexed_job_and_follows_it(gateway, monkeypatch, capsys):  # noqa: F811
    url, kmock = gateway["url"], gateway["kmock"]
    monkeypatch.setenv("WORKBENCH_JOB_GATEWAY_URL", url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", gateway["tokens"][GINA])
    follow = k8s_client.follow
    monkeypatch.setattr(k8s_client, "follow", lambda client, job, **_: follow(client, job, poll=0.05))
    fixture = ROOT / "tests" / "fixtures" / "notebooks" / "tune.ipynb"
    argv = ["tune", str(fixture), "-s", "x=uniform(0,1)", "-p", "steps", "2", "--trials", "12", "--study", "churn"]
    argv += ["--backend", "k8s", "--parallelism", "2", "--workers", "2", "--profile", "cpu-small"]
    gateway["app"].profiles = _with_secrets("cpu-small", "optuna-{username}")
    argv += ["--storage", "secret-ref:optuna-gina-2dr-40example-2ecom/dsn"]  # her own database URL
    task = asyncio.create_task(asyncio.to_thread(main, argv))
    for _ in range(1000):  # the gateway creates the Job, then its ConfigMap
        if any(res.plural == "configmaps" for (res, _ns, _name) in kmock.objects):
            break
        await asyncio.sleep(0.02)
    (name,) = _jobs(kmock)
    job = kmock.objects["batch/v1/jobs", NS, name].history[0].raw
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    flags = dict(zip(command[3::2], command[4::2]))
    assert (flags["--study"], flags["--trials"], flags["--workers"], flags["--metric"]) == ("churn", "12", "2", "score")
    assert job["spec"]["parallelism"] == 2 and "--storage" not in command
    secret_ref = {"name": "optuna-gina-2dr-40example-2ecom", "key": "dsn"}
    assert job["spec"]["template"]["spec"]["containers"][0]["env"][-1]["valueFrom"]["secretKeyRef"] == secret_ref
    assert yaml.safe_load(kmock.objects["v1/configmaps", NS, name]["data"]["params.yaml"]) == {"steps": 2}
    kmock.objects["batch/v1/jobs", NS, name].patch(
        {
            "status": {
                "startTime": "2025-01-01T00:00:00Z",
                "completionTime": "2025-01-01T00:02:00Z",
                "succeeded": 2,
                "conditions": [{"type": "Complete", "status": "True", "reason": "Completed"}],
            }
        }
    )
    assert await asyncio.wait_for(task, 60) == 0
    out = capsys.readouterr()
    assert "workbench tune show churn (with $WORKBENCH_TUNE_STORAGE" in out.out
    assert gateway["tokens"][GINA] not in out.out + out.err


PASSWORD = "Hunter2-s3cr3t"


def _with_secrets(slug: str, *extra: str):
    """The shipped profiles with ``extra`` on profile ``slug``'s allow-list, as an admin would list them."""
    from workbench.profiles import parse_profiles

    raw = yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())
    entry = next(p for p in raw["profiles"] if p["slug"] == slug)
    entry["secrets"] = [*entry.get("secrets", []), *extra]
    return parse_profiles(raw)


def _container(kmock, name: str) -> dict:
    job = kmock.objects["batch/v1/jobs", NS, name].history[0].raw
    for version in ("1.29", kubernetes_validate.utils.latest_version()):
        kubernetes_validate.validate(job, version, strict=True)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.asyncio
async def test_a_storage_secret_on_the_allow_list_reaches_the_pods_by_reference(gateway, notebook):  # noqa: F811
    url, tokens, kmock = gateway["url"], gateway["tokens"], gateway["kmock"]
    gateway["app"].profiles = _with_secrets("cpu-small", "optuna-db")
    storage = {"secret": "optuna-db", "key": "dsn"}
    status, body = await _call(url, "POST", "api/tunes", tokens[ANA], _tune_request(notebook, storage=storage))
    assert status == 201, body
    container = _container(kmock, body["name"])
    assert container["env"][-1] == {
        "name": STORAGE_ENV,
        "valueFrom": {"secretKeyRef": {"name": "optuna-db", "key": "dsn"}},
    }
    assert "envFrom" not in container  # only the one key, not the whole Secret
    # a database URL without credentials is passed as it is
    plain = {"url": "postgresql://db.internal:5432/optuna"}
    status, body = await _call(url, "POST", "api/tunes", tokens[ANA], _tune_request(notebook, storage=plain))
    assert status == 201, body
    assert _container(kmock, body["name"])["env"][-1] == {"name": STORAGE_ENV, "value": plain["url"]}


@pytest.mark.asyncio
async def test_a_storage_secret_off_the_profile_or_of_another_user_is_refused(gateway, notebook):  # noqa: F811
    url, tokens, kmock = gateway["url"], gateway["tokens"], gateway["kmock"]
    gateway["app"].profiles = _with_secrets("cpu-small", "optuna-{username}")
    attacks = [
        (ANA, "hub-secret", "not allowed on profile cpu-small"),  # the hub's own
        (ANA, "ml-platform-s3", "not allowed on profile cpu-small"),  # another profile's
        (ANA, "optuna-gina-2dr-40example-2ecom", "allowed: kaggle-api, optuna-ana"),  # gina's, by her escaped name
        (GINA, "optuna-ana", "allowed: kaggle-api, optuna-gina-2dr-40example-2ecom"),  # ana's
        (GINA, "optuna-{username}", "not a Kubernetes Secret name"),  # the pattern itself
    ]
    for user, secret, message in attacks:
        request = _tune_request(notebook, storage={"secret": secret})
        status, body = await _call(url, "POST", "api/tunes", tokens[user], request)
        assert status in (400, 403) and message in body["error"], (user, secret, body)
    assert _jobs(kmock) == []
    for user, own in ((ANA, "optuna-ana"), (GINA, "optuna-gina-2dr-40example-2ecom")):  # each their own
        request = _tune_request(notebook, storage={"secret": own})
        status, body = await _call(url, "POST", "api/tunes", tokens[user], request)
        assert status == 201, body
        assert _container(kmock, body["name"])["env"][-1]["valueFrom"]["secretKeyRef"]["name"] == own


@pytest.mark.asyncio
async def test_a_tune_request_cannot_smuggle_env_or_a_foreign_journal(gateway, notebook, caplog):  # noqa: F811
    url, tokens, kmock = gateway["url"], gateway["tokens"], gateway["kmock"]
    gateway["app"].profiles = _with_secrets("cpu-small", "optuna-db")
    ana_journal = f"{RUNS_MOUNT}/{owner_dirname(ANA)}/study-churn/study.journal"
    attacks = [
        ({"secret": "optuna-db", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}, "and nothing else"),
        ({"url": f"postgresql://ana:{PASSWORD}@db/optuna"}, "holds a password"),
        ({"url": f"postgresql://db/optuna?password={PASSWORD}"}, "holds a password"),
        ({"url": ana_journal}, "shared runs volume"),  # ana's study, from gina's pods
        ({"url": f"sqlite:///{ana_journal}"}, "shared runs volume"),
        ({"url": f"file://{ana_journal}"}, "shared runs volume"),
    ]
    for storage, message in attacks:
        status, body = await _call(url, "POST", "api/tunes", tokens[GINA], _tune_request(notebook, storage=storage))
        assert status == 400 and message in body["error"] and PASSWORD not in body["error"], (storage, body)
    smuggled = [
        ({**_tune_request(notebook), "env": [{"name": STORAGE_ENV, "value": ana_journal}]}, "unknown fields"),
        (_tune_request(notebook, env=[{"name": STORAGE_ENV, "value": ana_journal}]), "unknown tune fields"),
        (_tune_request(notebook, storage_secret="optuna-db"), "unknown tune fields"),
        ({**_tune_request(notebook), "volumes": [{"hostPath": {"path": "/"}}]}, "unknown fields"),
    ]
    for request, message in smuggled:
        status, body = await _call(url, "POST", "api/tunes", tokens[GINA], request)
        assert status == 400 and message in body["error"], (request, body)
    assert _jobs(kmock) == []
    assert PASSWORD not in caplog.text
    # left out, the journal is gina's own: her folder alone is writable and the pod runs as her
    status, body = await _call(url, "POST", "api/tunes", tokens[GINA], _tune_request(notebook))
    assert status == 201, body
    container = _container(kmock, body["name"])
    assert STORAGE_ENV not in {e["name"] for e in container["env"]} and "--storage" not in container["command"]
    writable = [m["mountPath"] for m in container["volumeMounts"] if m["name"] == "runs" and not m.get("readOnly")]
    assert writable == [f"{RUNS_MOUNT}/{owner_dirname(GINA)}"]
    assert {e["name"]: e.get("value") for e in container["env"]}["LOGNAME"] == GINA
