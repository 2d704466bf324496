"""Pipelines on Argo through the job gateway, tried as a hostile teammate would: a real JupyterHub
checks the tokens, the gateway runs in-process, the Kubernetes API is the kmock emulator. Every
object reaching the emulator is validated strictly against Argo's schema; following reads the
Workflow's nodes as Argo's controller writes them (success, a retried step, a failed step)."""

from __future__ import annotations

import asyncio
import json

import pytest
from argo_schema import validate as argo_validate
from pipeline_fixture import write_reference_pipeline

from tests.hub.test_gateway import ANA, GINA, NS, PROFILES, _call, gateway, hub  # noqa: F401 (fixtures)
from workbench.jobs import k8s_client
from workbench.jobs.pipeline import argo_follow
from workbench.jobs.pipeline.argo_follow import pipeline_request
from workbench.runs import KUBE_RUNS_MOUNT
from workbench.runs.layout import owner_dirname

pytestmark = pytest.mark.hub
ARGO = "argoproj.io/v1alpha1"
PLURALS = ("workflows", "cronworkflows", "workflowtemplates", "workfloweventbindings")


@pytest.fixture
def argo(gateway, monkeypatch):  # noqa: F811
    """The gateway with the emulator serving Argo's resources."""
    import pipeline_fixture

    from workbench.hub.gateway import pipelines

    monkeypatch.setattr(pipelines, "_load", lambda source, overrides: pipeline_fixture.load(source))
    for plural in PLURALS:
        gateway["kmock"].resources[f"{ARGO}/{plural}"] = {"namespaced": True}
    return gateway


@pytest.fixture
def pipeline(tmp_path):
    return write_reference_pipeline(tmp_path)


def _request(pipeline, **overrides) -> dict:
    source, loaded = pipeline
    return {**pipeline_request(source, loaded, {}), **overrides}


def _objects(kmock, plural: str = "workflows") -> dict[str, dict]:
    return {
        name: kmock.objects[f"{ARGO}/{plural}", ns, name] for (res, ns, name) in kmock.objects if res.plural == plural
    }


def _raw(obj) -> dict:
    return obj.history[0].raw


@pytest.mark.asyncio
async def test_a_pipeline_becomes_a_workflow_from_the_fixed_template(argo, pipeline):
    url, tokens, kmock = argo["url"], argo["tokens"], argo["kmock"]
    status, body = await _call(url, "POST", "api/pipelines", tokens[GINA], _request(pipeline, secrets=["kaggle-api"]))
    assert status == 201, body
    assert body["kinds"] == ["Workflow"] and body["steps"]["train-lgbm"] == "gpu-t4"
    workflow = _raw(_objects(kmock)[body["name"]])
    argo_validate(workflow)
    assert workflow["metadata"]["annotations"]["workbench/owner"] == GINA
    spec = workflow["spec"]
    assert spec["serviceAccountName"] == "workbench-job-runner" and spec["automountServiceAccountToken"] is False
    folder = owner_dirname(GINA)
    for template in spec["templates"][1:]:
        container = template["container"]
        assert container["image"] in {p.image for p in PROFILES.profiles}
        writable = [m for m in container["volumeMounts"] if not m.get("readOnly")]
        assert writable == [{"name": "runs", "mountPath": f"{KUBE_RUNS_MOUNT}/{folder}", "subPath": folder}]
    assert {r.headers.get("Authorization") for r in kmock if r.resource is not None} == {"Bearer gateway-sa-token-5c1e"}
    # calendar and webhook modes install their objects the same way
    for mode, kinds in (("calendar", ["CronWorkflow"]), ("webhook", ["WorkflowTemplate", "WorkflowEventBinding"])):
        status, body = await _call(url, "POST", "api/pipelines", tokens[GINA], _request(pipeline, mode=mode))
        assert status == 201 and body["kinds"] == kinds, body
        for kind in kinds:
            argo_validate(_raw(_objects(kmock, kind.lower() + "s")[body["name"]]))


@pytest.mark.asyncio
async def test_a_profile_outside_the_users_groups_is_refused(argo, pipeline):
    """ana is in no group: the GPU training steps are refused before anything is created."""
    status, body = await _call(argo["url"], "POST", "api/pipelines", argo["tokens"][ANA], _request(pipeline))
    assert status == 403, body
    assert body["error"] == "step 'train-lgbm': profile gpu-t4 is not allowed for your groups (allowed: gpu-users)"
    status, body = await _call(
        argo["url"], "POST", "api/pipelines", argo["tokens"][GINA], _request(pipeline, secrets=["ml-platform-s3"])
    )
    assert status == 403 and "secret 'ml-platform-s3' is not allowed on profile" in body["error"]
    assert not list(argo["kmock"].objects)


@pytest.mark.asyncio
async def test_a_pod_spec_host_path_or_another_owners_folder_cannot_be_smuggled_in(argo, pipeline, tmp_path):
    url, token, kmock = argo["url"], argo["tokens"][GINA], argo["kmock"]
    for extra in (
        {"workflow": {"spec": {"hostPID": True}}},
        {"podSpecPatch": '{"containers":[{"name":"main","securityContext":{"privileged":true}}]}'},
        {"owner": ANA},
        {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
    ):
        status, body = await _call(url, "POST", "api/pipelines", token, {**_request(pipeline), **extra})
        assert status == 400 and "unknown fields" in body["error"], body
    request = _request(pipeline)
    for path in ("../outside.ipynb", "/etc/passwd.ipynb", "a/../../b.ipynb"):
        status, body = await _call(url, "POST", "api/pipelines", token, {**request, "notebooks": {path: "{}"}})
        assert status == 400 and "notebook" in body["error"], body
    # a step that names a file the request did not ship (here the gateway's own files) is refused
    source, _ = pipeline
    text = source.read_text().replace("train.ipynb", "/etc/hostname.ipynb", 1)
    status, body = await _call(
        url, "POST", "api/pipelines", token, {**request, "pipeline": {"name": source.name, "content": text}}
    )
    assert status == 400, body
    # parameters reach notebooks only as parameters: another owner's folder stays read-only
    status, body = await _call(
        url, "POST", "api/pipelines", token, {**request, "parameters": {"runs_dir": f"{KUBE_RUNS_MOUNT}/{ANA}"}}
    )
    if status == 201:
        spec = _raw(_objects(kmock)[body["name"]])["spec"]
        mounts = [m for t in spec["templates"][1:] for m in t["container"]["volumeMounts"] if not m.get("readOnly")]
        assert {m["subPath"] for m in mounts} == {owner_dirname(GINA)}
        assert "hostPath" not in json.dumps(spec) and "privileged" not in json.dumps(spec)
    else:
        assert status == 400, body


@pytest.mark.asyncio
async def test_only_the_owner_reads_and_stops_a_pipeline(argo, pipeline):
    url, tokens, kmock = argo["url"], argo["tokens"], argo["kmock"]
    status, body = await _call(url, "POST", "api/pipelines", tokens[GINA], _request(pipeline))
    name = body["name"]
    for method in ("GET", "DELETE"):
        status, body = await _call(url, method, f"api/pipelines/{name}", tokens[ANA])
        assert status == 404 and "you have no pipeline" in body["error"] and name in body["error"]
    assert not _objects(kmock)[name].deleted
    # an Argo object someone else made (not a workbench pipeline) is nobody's to read or stop here
    kmock.objects[f"{ARGO}/workflows", NS, "foreign-wf"] = {
        "apiVersion": ARGO,
        "kind": "Workflow",
        "metadata": {"name": "foreign-wf", "namespace": NS, "annotations": {"workbench/owner": GINA}},
    }
    for method in ("GET", "DELETE"):
        status, _ = await _call(url, method, "api/pipelines/foreign-wf", tokens[GINA])
        assert status == 404
    status, body = await _call(url, "GET", f"api/pipelines/{name}", tokens[GINA])
    assert status == 200 and body["phase"] == "Pending" and body["finished"] is False
    status, body = await _call(url, "DELETE", f"api/pipelines/{name}", tokens[GINA])
    assert status == 202 and body["deleted"] == ["Workflow"] and _objects(kmock)[name].deleted


def _node(wf: str, display: str, kind: str, phase: str, **extra) -> tuple[str, dict]:
    node_id = f"{wf}-{abs(hash(display)) % 10**8}"
    return node_id, {
        "id": node_id,
        "name": f"{wf}.{display}",
        "displayName": display,
        "type": kind,
        "phase": phase,
        **extra,
    }


def _nodes(wf: str, states: dict[str, tuple[str, ...]], messages: dict[str, str]) -> dict:
    """Argo's node tree: the DAG, and per step a Retry node whose children are the attempts' Pod nodes."""
    nodes = dict([_node(wf, wf, "DAG", "Running")])
    for step, attempts in states.items():
        children = []
        for i, phase in enumerate(attempts):
            node_id, node = _node(wf, f"{step}({i})", "Pod", phase, message=messages.get(f"{step}({i})", ""))
            nodes[node_id] = node
            children.append(node_id)
        node_id, node = _node(wf, step, "Retry", attempts[-1], children=children, message=messages.get(step, ""))
        nodes[node_id] = node
    return nodes


async def _follow(argo, pipeline, monkeypatch, capsys, script) -> tuple[int, str, str]:
    """Run ``submit_and_follow`` as a user pod would, while ``script`` plays Argo's controller."""
    monkeypatch.setenv("WORKBENCH_JOB_GATEWAY_URL", argo["url"])
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", argo["tokens"][GINA])
    task = asyncio.create_task(asyncio.to_thread(argo_follow.submit_and_follow, _request(pipeline), poll=0.05))
    for _ in range(1000):
        if _objects(argo["kmock"]):
            break
        await asyncio.sleep(0.02)
    (name,) = _objects(argo["kmock"])
    for status in script(name):
        argo["kmock"].objects[f"{ARGO}/workflows", NS, name].patch({"status": status})
        await asyncio.sleep(0.3)
    rc = await asyncio.wait_for(task, 60)
    out = capsys.readouterr()
    return rc, out.out, out.err


@pytest.mark.asyncio
async def test_following_a_run_with_a_retry_to_success(argo, pipeline, monkeypatch, capsys):
    def script(wf):
        start = {"phase": "Running", "startedAt": "2025-01-01T00:00:00Z"}
        yield {**start, "nodes": _nodes(wf, {"train-lgbm": ("Running",)}, {})}
        oom = {"train-lgbm(0)": "OOMKilled (exit code 137)"}
        yield {**start, "nodes": _nodes(wf, {"train-lgbm": ("Failed", "Running")}, oom)}
        steps = ("train-lgbm", "train-logreg", "train-extratrees", "stack", "explain", "submission")
        states = {s: ("Succeeded",) for s in steps} | {"train-lgbm": ("Failed", "Succeeded")}
        yield {
            "phase": "Succeeded",
            "startedAt": start["startedAt"],
            "finishedAt": "2025-01-01T00:04:10Z",
            "nodes": _nodes(wf, states, oom),
        }

    rc, out, err = await _follow(argo, pipeline, monkeypatch, capsys, script)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("submitted Workflow team-a/")
    assert "step train-lgbm: running" in lines
    assert "step train-lgbm: retry 1 (OOMKilled (exit code 137))" in lines
    assert lines.count("step train-lgbm: running") == 1  # one line per change, not per poll
    assert "step submission: succeeded" in lines
    assert lines[-1].endswith(": succeeded in 4m10s")
    assert argo["tokens"][GINA] not in out + err


@pytest.mark.asyncio
async def test_following_a_failed_step_exits_1_with_its_message(argo, pipeline, monkeypatch, capsys):
    def script(wf):
        states = {s: ("Succeeded",) for s in ("train-lgbm", "train-logreg", "train-extratrees")}
        states |= {"stack": ("Failed",)}
        nodes = _nodes(wf, states, {"stack(0)": "Error (exit code 1)"})
        for step in ("explain", "submission"):
            node_id, node = _node(wf, step, "Omitted", "Omitted", message="omitted: depends condition not met")
            nodes[node_id] = node
        yield {"phase": "Failed", "message": "child failed", "nodes": nodes}

    rc, out, err = await _follow(argo, pipeline, monkeypatch, capsys, script)
    assert rc == 1, err
    assert "step stack: failed: Error (exit code 1)" in out.splitlines()
    assert out.splitlines()[-1].endswith(": failed; failed: stack (Error (exit code 1)); skipped: explain, submission")


@pytest.mark.asyncio
async def test_gateway_refusals_reach_the_user(argo, pipeline, monkeypatch, capsys):
    monkeypatch.setenv("WORKBENCH_JOB_GATEWAY_URL", argo["url"])
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", argo["tokens"][ANA])
    rc = await asyncio.to_thread(argo_follow.submit_and_follow, _request(pipeline), poll=0.05)
    assert rc == k8s_client.EXIT_GATEWAY
    assert capsys.readouterr().err.strip() == (
        "job gateway: 403 Forbidden: step 'train-lgbm': profile gpu-t4 is not allowed for your groups (allowed: gpu-users)"
    )
