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
from workbench.jobs.tune.k8s import SPACE_KEY

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
    assert job["spec"]["parallelism"] == 2
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
    assert "workbench tune show churn" in out.out and gateway["tokens"][GINA] not in out.out + out.err
