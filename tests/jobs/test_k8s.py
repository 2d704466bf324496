"""Kubernetes job backend: manifests checked against the Kubernetes schema (kubernetes-validate,
strict), and the job gateway's Kubernetes calls against an in-process API emulator (kmock)."""

from __future__ import annotations

import asyncio
import re
import socket
from pathlib import Path

import kubernetes_validate
import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from workbench.jobs import k8s
from workbench.jobs.k8s import run_k8s
from workbench.jobs.k8s_manifest import RUNS_MOUNT, STARTUP_GRACE_S, render_job
from workbench.runs import RUNS_ENV

ROOT = Path(__file__).resolve().parents[2]
RAW_PROFILES = yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())  # the reference: the file itself
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
NS = "team-a"
TOKEN = "kube-token-7d1f0e"
HOOK = "https://hooks.example.com/services/T000/B000/very-secret-path"
PARAMS = {
    "lr": 0.05,
    "num_leaves": 31,
    "use_gpu": False,
    "answer": "yes",
    "odd": "a: b # 'c' \"d\" $(HOME)",
    "sci": "1e3",
    "features": ["tenure", "MonthlyCharges"],
    "grid": {"depth": [3, 5]},
    "note": "naïve ✓",
}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.fixture
def notebook(tmp_path):
    nb = new_notebook(
        cells=[
            new_markdown_cell("# Train"),
            new_code_cell("lr = 0.1\nnum_leaves = 15", metadata={"tags": ["parameters"]}),
            new_code_cell(
                "print(lr * 2)", execution_count=3, outputs=[new_output("stream", name="stdout", text="0.2\n")]
            ),
        ]
    )
    path = tmp_path / "train model.ipynb"
    nbformat.write(nb, path)
    return path


def _cores(quantity: str) -> float:
    return int(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def _validate(obj: dict) -> None:
    for version in K8S_VERSIONS:
        kubernetes_validate.validate(obj, version, strict=True)


def _container(job: dict) -> dict:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return container


@pytest.mark.parametrize("gpus", [0, 1])
@pytest.mark.parametrize("raw", RAW_PROFILES["profiles"], ids=lambda p: p["slug"])
def test_every_profile_renders_a_schema_valid_job(raw, gpus, notebook):
    kwargs = dict(
        notebook=str(notebook),
        params=PARAMS,
        name="LGBM sweep #1",
        image="workbench/base:0.1.0",
        gpus=gpus,
        profile=raw["slug"],
        namespace=NS,
        timeout=1800,
        notify=HOOK,
        secret="kaggle-api",
        owner="ana.lopez@example.com",
    )
    if gpus and not raw.get("gpus"):
        gpu_slugs = [p["slug"] for p in RAW_PROFILES["profiles"] if p.get("gpus")]
        with pytest.raises(ValueError, match=rf"profile '{raw['slug']}' has no GPUs.*{re.escape(str(gpu_slugs))}"):
            render_job(**kwargs)
        return
    m = render_job(**kwargs)
    assert [o["kind"] for o in m.objects] == ["ConfigMap", "Secret", "Job"]
    for obj in m.objects:
        _validate(obj)
        assert obj["metadata"]["namespace"] == NS
        assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in obj["metadata"]["labels"].values())
    job, pod = m.job, m.job["spec"]["template"]["spec"]
    assert DNS_LABEL.match(m.name) and len(m.name) <= 63 and m.name.startswith("lgbm-sweep-1-")
    assert render_job(**kwargs).name != m.name

    # resources, placement: exactly what the profiles file says
    res = _container(job)["resources"]
    assert _cores(res["requests"]["cpu"]) == raw["cpu"]["guarantee"]
    assert _cores(res["limits"]["cpu"]) == raw["cpu"]["limit"]
    assert (res["requests"]["memory"], res["limits"]["memory"]) == (raw["memory"]["guarantee"], raw["memory"]["limit"])
    expected_gpus = raw.get("gpus", 0)
    assert res["limits"].get(RAW_PROFILES["gpu_resource"]) == (str(expected_gpus) if expected_gpus else None)
    assert pod.get("nodeSelector", {}) == (raw.get("node_selector") or {})
    assert pod.get("tolerations", []) == (raw.get("tolerations") or [])

    # the container runs `workbench run` on the shipped notebook and parameters file
    cmd = _container(job)["command"]
    mounts: dict[str, str] = {}
    for mount in _container(job)["volumeMounts"]:
        mounts.setdefault(mount["name"], mount["mountPath"])
    assert cmd[:2] == ["workbench", "run"]
    assert cmd[cmd.index("--name") + 1] == "LGBM sweep #1" and cmd[cmd.index("--runs-dir") + 1] == RUNS_MOUNT
    assert cmd[cmd.index("--timeout") + 1] == "1800"
    params_path, nb_path = Path(cmd[cmd.index("-f") + 1]), Path(cmd[2])
    assert str(params_path.parent) == mounts["job"] == str(nb_path.parent)
    assert yaml.safe_load(m.config_map["data"][params_path.name]) == PARAMS
    shipped = nbformat.reads(m.config_map["data"][nb_path.name], as_version=4)
    original = nbformat.read(notebook, as_version=4)
    assert [c.source for c in shipped.cells] == [c.source for c in original.cells]
    assert original.cells[2].outputs and not shipped.cells[2].outputs
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert mounts["runs"] == RUNS_MOUNT and volumes["runs"]["persistentVolumeClaim"]["claimName"] == "workbench-runs"
    # the team's runs read-only; only the owner's folder is writable, and it is where `workbench run` writes
    writable = [m for m in _container(job)["volumeMounts"] if not m.get("readOnly")]
    assert writable == [
        {"name": "runs", "mountPath": f"{RUNS_MOUNT}/ana.lopez@example.com", "subPath": "ana.lopez@example.com"}
    ]
    assert pod["serviceAccountName"] == "workbench-job-runner"
    assert volumes["job"]["configMap"]["name"] == m.config_map["metadata"]["name"] == m.name

    # secrets by reference only; the webhook URL lives in its own Secret
    env = {e["name"]: e for e in _container(job)["env"]}
    assert env[RUNS_ENV]["value"] == RUNS_MOUNT
    threads = str(max(1, int(raw["cpu"]["limit"])))
    assert env["WORKBENCH_PROFILE"]["value"] == raw["slug"]
    assert env["OMP_NUM_THREADS"]["value"] == env["MKL_NUM_THREADS"]["value"] == threads
    assert ("CUDA_VISIBLE_DEVICES" in env) == (not raw.get("gpus"))  # CPU profiles see no GPU
    assert _container(job)["envFrom"] == [{"secretRef": {"name": "kaggle-api"}}]
    assert m.notify_secret["stringData"] == {"WORKBENCH_NOTIFY_URL": HOOK}
    assert env["WORKBENCH_NOTIFY_URL"]["valueFrom"]["secretKeyRef"]["name"] == m.notify_secret["metadata"]["name"]
    assert cmd[cmd.index("--notify") + 1] == "$(WORKBENCH_NOTIFY_URL)"
    assert HOOK not in yaml.safe_dump(job) and HOOK not in m.to_yaml() and HOOK in m.to_yaml(redact=False)

    # hardening and lifecycle
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 1000,
        "runAsGroup": 100,
        "fsGroup": 100,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    sc = _container(job)["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["restartPolicy"] == "Never" and pod["automountServiceAccountToken"] is False
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == 1800 + STARTUP_GRACE_S
    assert spec["backoffLimit"] >= 0 and spec["ttlSecondsAfterFinished"] > 0


def test_profile_choice_and_bad_input_are_rejected_before_any_call(notebook, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")  # any API call would fail differently
    base = dict(notebook=str(notebook), params={"lr": 0.1}, name="t", image="img:1")
    gpu_slugs = [p["slug"] for p in RAW_PROFILES["profiles"] if p.get("gpus")]
    default = next(p["slug"] for p in RAW_PROFILES["profiles"] if p.get("default"))
    assert render_job(**base).job["metadata"]["labels"]["workbench/profile"] == default
    assert render_job(**base, gpus=1).job["metadata"]["labels"]["workbench/profile"] == gpu_slugs[0]
    limits = _container(render_job(**base, profile=gpu_slugs[0]).job)["resources"]["limits"]
    assert limits["nvidia.com/gpu"] == "1"  # a GPU profile brings its GPU
    assert _container(render_job(**{**base, "image": ""}).job)["image"] == RAW_PROFILES["profiles"][0]["image"]
    cases = [
        (dict(profile="huge"), r"no profile 'huge'; profiles are \['cpu-small'.*profile="),
        (dict(gpus=2), r"no profile offers 2 GPUs"),
        (dict(profile=gpu_slugs[0], gpus=2), r"offers 1 GPU\(s\), not 2"),
        (dict(namespace="Team_A"), r"namespace 'Team_A' is not a valid Kubernetes name.*namespace="),
        (dict(secret="my secret"), r"secret 'my secret' is not a valid"),
        (dict(notebook="missing.ipynb"), r"notebook 'missing.ipynb' not found"),
        (dict(params={"lr": object()}), r"parameter 'lr' holds a object"),
        (dict(params={"not a name": 1}), r"'not a name' is not a Python identifier"),
        (dict(timeout=0), r"timeout must be a positive"),
        (dict(image="bad image"), r"not a container image reference"),
        (dict(notify="ftp://hooks.example.com/secret-path"), r"notify URL ftp://hooks.example.com/… must be an http"),
    ]
    for override, message in cases:
        with pytest.raises(ValueError, match=message) as err:
            run_k8s(**{**base, **override})
        assert "secret-path" not in str(err.value)
    bad = notebook.with_name("bad.ipynb")
    bad.write_text("not json")
    with pytest.raises(ValueError, match="is not a Jupyter notebook"):
        render_job(**{**base, "notebook": str(bad)})
    in_image = render_job(**{**base, "notebook": "/opt/notebooks/$HOME/train.ipynb", "name": "cost $(HOME) $$"})
    cmd = _container(in_image.job)["command"]
    assert list(in_image.config_map["data"]) == ["params.yaml"]
    # the kubelet turns $$ into $ and expands $(VAR): what the notebook run receives stays literal
    assert cmd[2] == "/opt/notebooks/$$HOME/train.ipynb" and cmd[cmd.index("--name") + 1] == "cost $$(HOME) $$$$"


# --- the job gateway's Kubernetes calls, against the API emulator -----------------------------


@pytest.fixture
def cluster(kmock, tmp_path, monkeypatch):
    """kmock as a cluster with the core resources declared, reached through a real kubeconfig file."""
    for resource in ("v1/pods", "v1/configmaps", "v1/secrets", "batch/v1/jobs"):
        kmock.resources[resource] = {"namespaced": True}
    # the API server assigns a uid to what it creates
    kmock["post", kmock.resource("batch/v1/jobs")] << (
        lambda request: {**request.data, "metadata": {**request.data["metadata"], "uid": "job-uid-1"}}
    )
    _write_kubeconfig(tmp_path, monkeypatch, str(kmock.url).rstrip("/"))
    return kmock


def _write_kubeconfig(tmp_path, monkeypatch, server):
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "dev",
        "clusters": [{"name": "dev", "cluster": {"server": server}}],
        "users": [{"name": "ana", "user": {"token": TOKEN}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "ana", "namespace": NS}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("WORKBENCH_NOTIFY_URL", raising=False)


def _pod(job, phase, **status):
    meta = {
        "name": f"{job}-x7k2p",
        "namespace": NS,
        "labels": {"job-name": job},
        "creationTimestamp": "2025-01-01T00:00:00Z",
    }
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "status": {"phase": phase, **status}}


def _terminated(reason, code):
    return {
        "containerStatuses": [
            {
                "name": "notebook",
                "image": "i",
                "imageID": "",
                "ready": False,
                "restartCount": 0,
                "state": {"terminated": {"reason": reason, "exitCode": code}},
            }
        ]
    }


def _manifests(notebook, **kwargs):
    call = dict(
        notebook=str(notebook),
        params={"lr": 0.2},
        name="churn lgbm",
        image="workbench/base:0.1.0",
        namespace=NS,
        timeout=600,
        owner="ana",
    )
    return render_job(**{**call, **kwargs})


@pytest.mark.asyncio
async def test_dry_run_prints_yaml_and_makes_no_api_call(cluster, notebook, capsys, monkeypatch):
    monkeypatch.setenv("WORKBENCH_NOTIFY_URL", HOOK)  # the webhook setting local runs use, too
    rc = await asyncio.to_thread(
        run_k8s,
        notebook=str(notebook),
        params={"lr": 0.2},
        name="churn lgbm",
        image="workbench/base:0.1.0",
        namespace=NS,
        dry_run=True,
        gpus=1,
    )
    out = capsys.readouterr().out
    assert rc == 0 and len(cluster) == 0
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["ConfigMap", "Secret", "Job"]
    for doc in docs:
        _validate(doc)
    assert "hooks.example.com" in out and "very-secret-path" not in out
    assert _container(docs[2])["resources"]["limits"]["nvidia.com/gpu"] == "1"


@pytest.mark.asyncio
async def test_submit_creates_the_job_then_objects_it_owns(cluster, notebook):
    m = _manifests(notebook, notify=HOOK, secret="kaggle-api")
    await asyncio.to_thread(lambda: k8s.submit(m, k8s.api_client()))
    created = [(r.method.value, r.resource.plural) for r in cluster if r.method.value == "POST"]
    assert created == [("POST", "jobs"), ("POST", "configmaps"), ("POST", "secrets")]
    assert not [r for r in cluster if r.method.value in ("PATCH", "PUT")]  # the gateway needs no patch right
    owner = [{"apiVersion": "batch/v1", "kind": "Job", "name": m.name, "uid": "job-uid-1"}]
    for resource, name in (("v1/configmaps", m.name), ("v1/secrets", f"{m.name}-notify"), ("batch/v1/jobs", m.name)):
        stored = cluster.objects[resource, NS, name].history[0].raw
        _validate(stored)
        if resource != "batch/v1/jobs":
            assert stored["metadata"]["ownerReferences"] == owner
    assert cluster.objects["v1/secrets", NS, f"{m.name}-notify"]["stringData"] == {"WORKBENCH_NOTIFY_URL": HOOK}
    assert {r.headers.get("Authorization") for r in cluster} == {f"Bearer {TOKEN}"}


@pytest.mark.asyncio
async def test_a_refused_configmap_deletes_the_job_again(cluster, notebook):
    message = 'configmaps is forbidden: User "system:serviceaccount:team-a:workbench-job-gateway" cannot create'
    (
        cluster["post", cluster.resource("v1/configmaps")].override
        << 403
        << {"kind": "Status", "message": message, "code": 403}
    )
    m = _manifests(notebook)
    with pytest.raises(k8s.KubernetesError, match=r"403 Forbidden.*cannot create") as err:
        await asyncio.to_thread(lambda: k8s.submit(m, k8s.api_client()))
    assert f"namespace '{NS}'" in str(err.value)
    assert cluster.objects["batch/v1/jobs", NS, m.name].deleted


async def _status(cluster, name):
    def read():
        api = k8s.api_client()
        return k8s.job_status(k8s.read_job(name, NS, api), k8s.job_pods(name, NS, api))

    return await asyncio.to_thread(read)


@pytest.mark.asyncio
async def test_job_status_explains_scheduling_memory_and_deadline(cluster, notebook):
    m = _manifests(notebook, profile="cpu-small")
    await asyncio.to_thread(lambda: k8s.submit(m, k8s.api_client()))
    job, pods = cluster.objects["batch/v1/jobs", NS, m.name], ("v1/pods", NS, f"{m.name}-x7k2p")
    cluster.objects[pods] = _pod(
        m.name,
        "Pending",
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory.",
            }
        ],
    )
    status = await _status(cluster, m.name)
    assert status["state"] == "pending" and "summary" not in status
    assert any("Insufficient memory" in note for note in status["notes"])
    cluster.objects[pods] = _pod(m.name, "Failed", **_terminated("OOMKilled", 137))
    job.patch(
        {
            "status": {
                "failed": 1,
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "PodFailurePolicy",
                        "message": "Container notebook exited 137",
                    }
                ],
            }
        }
    )
    status = await _status(cluster, m.name)
    assert status["state"] == "failed" and status["exit_code"] == 137
    assert "ran out of memory" in status["summary"] and "OOMKilled" in status["summary"] and "4G" in status["summary"]
    job.patch(
        {
            "status": {
                "conditions": [
                    {
                        "type": "Failed",
                        "status": "True",
                        "reason": "DeadlineExceeded",
                        "message": "Job was active longer than specified deadline",
                    }
                ]
            }
        }
    )
    status = await _status(cluster, m.name)
    assert f"timed out: it ran past its deadline of {600 + STARTUP_GRACE_S} s" in status["summary"]


@pytest.mark.asyncio
async def test_rejected_credentials_give_a_clear_error_without_the_token(kmock, notebook, tmp_path, monkeypatch):
    _write_kubeconfig(tmp_path, monkeypatch, str(kmock.url).rstrip("/"))
    kmock << 401 << {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Unauthorized", "code": 401}
    with pytest.raises(k8s.KubernetesError, match=r"rejected the credentials \(401 Unauthorized\)") as err:
        await asyncio.to_thread(lambda: k8s.submit(_manifests(notebook), k8s.api_client()))
    assert TOKEN not in str(err.value)


def test_unreachable_cluster_and_missing_configuration(notebook, tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _write_kubeconfig(tmp_path, monkeypatch, f"http://127.0.0.1:{port}")
    with pytest.raises(k8s.KubernetesError, match=f"cannot reach the Kubernetes API at http://127.0.0.1:{port}"):
        k8s.submit(_manifests(notebook), k8s.api_client())
    (tmp_path / "broken").write_text("clusters: [not closed")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "broken"))
    with pytest.raises(k8s.KubernetesError, match="cannot use the Kubernetes configuration from"):
        k8s.api_client()
    monkeypatch.delenv("KUBECONFIG")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    with pytest.raises(k8s.KubernetesError, match="no Kubernetes configuration found: set KUBECONFIG"):
        k8s.api_client()
    with pytest.raises(k8s.KubernetesError, match=f"cannot use the service-account credentials in {tmp_path}"):
        k8s.credentials_client(tmp_path)


def test_a_user_pods_cli_never_uses_a_kubeconfig(tmp_path, workbench_cli):
    """A kubeconfig whose credential plugin fails and echoes its token: outside a hub server the CLI
    neither runs the plugin nor prints the token; Jobs go through the job gateway only."""
    import os
    import subprocess

    plugin = {
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "command": "sh",
        "args": ["-c", f"echo 'login failed for --token {TOKEN}' >&2; touch {tmp_path}/plugin-ran; exit 1"],
    }
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "dev",
        "clusters": [{"name": "dev", "cluster": {"server": f"http://127.0.0.1:9/?token={TOKEN}"}}],
        "users": [{"name": "ana", "user": {"exec": plugin}}],
        "contexts": [{"name": "dev", "context": {"cluster": "dev", "user": "ana", "namespace": NS}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    drop = ("KUBERNETES_SERVICE_HOST", "WORKBENCH_NOTIFY_URL", "WORKBENCH_JOB_GATEWAY_URL", "JUPYTERHUB_API_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env["KUBECONFIG"] = str(tmp_path / "kubeconfig")
    job = Path(__file__).parents[1] / "fixtures" / "notebooks" / "job.ipynb"
    done = subprocess.run(
        [*workbench_cli, "run", str(job), "--backend", "k8s"], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 3, done.stderr
    assert "$WORKBENCH_JOB_GATEWAY_URL is not set" in done.stderr
    assert not (tmp_path / "plugin-ran").exists() and "login failed" not in done.stderr
    assert TOKEN not in done.stderr + done.stdout
