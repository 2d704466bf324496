"""Kubernetes mode: pod manifests from KubeSpawner itself, validated against the Kubernetes schemas.

No cluster: a kubeconfig pointing at an address nothing listens on lets KubeSpawner build its
client; only manifest generation runs.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest

pytest.importorskip("kubespawner")
kubernetes_validate = pytest.importorskip("kubernetes_validate")

from traitlets.config import Config  # noqa: E402

from workbench.hub import configure
from workbench.hub.kube import RUNS_MOUNT  # noqa: E402
from workbench.profiles import (
    load_profiles,  # noqa: E402
    parse_memory,  # noqa: E402
)
from workbench.runs import RUNS_ENV  # noqa: E402
from workbench.runs.layout import owner_dirname  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PROFILES = load_profiles(ROOT / "hub" / "profiles.yaml")
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
users: [{name: none, user: {token: placeholder}}]
"""


@pytest.fixture(scope="module")
def kube_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(KUBECONFIG)
    from kubernetes_asyncio.config import kube_config as kube_config_module

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kube_config_module, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))
        mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        c = Config()
        configure(c, mode="kubernetes", profiles_path=ROOT / "hub" / "profiles.yaml")
        yield c


def _user(name: str, groups: list[str]) -> SimpleNamespace:
    return SimpleNamespace(
        name=name, id=7, url=f"/user/{name}/", groups=[SimpleNamespace(name=g) for g in groups], spawners={}
    )


def _spawner(config: Config, user: SimpleNamespace, options: dict):
    from kubespawner import KubeSpawner

    spawner = KubeSpawner(config=config, user=user, _mock=True)
    spawner.user_options = options
    return spawner


async def _manifest(config: Config, user: SimpleNamespace, slug: str) -> dict:
    """The pod KubeSpawner would create: its manifest, then the configured ``modify_pod_hook``, as ``start`` does."""
    from kubernetes_asyncio.client import ApiClient

    spawner = _spawner(config, user, {"profile": slug})
    await spawner.load_user_options()
    pod = await spawner.get_pod_manifest()
    if spawner.modify_pod_hook:
        pod = spawner.modify_pod_hook(spawner, pod)
    async with ApiClient() as api:
        return api.sanitize_for_serialization(pod)


@pytest.mark.parametrize("slug", [p.slug for p in PROFILES.profiles])
def test_pod_manifest_per_profile(kube_config, slug):
    profile = PROFILES.get(slug)
    user = _user("alice", list(profile.groups))
    pod = asyncio.run(_manifest(kube_config, user, slug))
    kubernetes_validate.validate(pod, kubernetes_validate.utils.latest_version(), strict=True)

    (container,) = pod["spec"]["containers"]
    assert container["image"] == profile.image
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert float(limits["cpu"]) == profile.cpu_limit and float(requests["cpu"]) == profile.cpu_guarantee
    assert parse_memory(limits["memory"]) == parse_memory(profile.mem_limit)
    assert parse_memory(requests["memory"]) == parse_memory(profile.mem_guarantee)
    if profile.gpus:
        assert limits["nvidia.com/gpu"] == str(profile.gpus)
    else:
        assert "nvidia.com/gpu" not in limits
    assert (pod["spec"].get("nodeSelector") or {}) == profile.node_selector
    for toleration in profile.tolerations:
        assert toleration in pod["spec"]["tolerations"]

    security = container["securityContext"]
    assert security["runAsUser"] == 1000 and security["runAsNonRoot"] is True
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"]["drop"] == ["ALL"]
    assert pod["spec"]["securityContext"]["fsGroup"] == 100

    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes[mounts["/home/jovyan"]["name"]]["persistentVolumeClaim"]["claimName"] == "claim-alice"
    # the team's runs read-only, the user's own folder read-write over them
    shared, own = mounts[RUNS_MOUNT], mounts[f"{RUNS_MOUNT}/alice"]
    assert shared["readOnly"] is True and "subPath" not in shared
    assert own["subPath"] == "alice" and not own.get("readOnly") and own["name"] == shared["name"]
    assert volumes[shared["name"]]["persistentVolumeClaim"]["claimName"] == "workbench-runs"
    writable = [
        m["mountPath"]
        for m in container["volumeMounts"]
        if m["mountPath"].startswith(RUNS_MOUNT) and not m.get("readOnly")
    ]
    assert writable == [f"{RUNS_MOUNT}/alice"]
    # no Kubernetes credentials: no token volume, none mounted
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert not [v for v in pod["spec"]["volumes"] if "projected" in v or "kube-api-access" in v["name"]]
    assert not [m for m in container["volumeMounts"] if "serviceaccount" in m["mountPath"]]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env[RUNS_ENV] == RUNS_MOUNT and env["WORKBENCH_PROFILE"] == slug
    threads = str(max(1, int(profile.cpu_limit)))
    assert [env[v] for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")] == [threads] * 3
    assert env["WORKBENCH_JOB_GATEWAY_URL"] == "http://hub:10102/services/job-gateway/"


def test_runs_folder_of_an_unusual_user_name(kube_config):
    """The read-write folder is the runs layout's owner folder, escaped one-to-one."""
    name = "ana.lopez+ml@example.com"
    pod = asyncio.run(_manifest(kube_config, _user(name, []), "cpu-small"))
    (container,) = pod["spec"]["containers"]
    own = [m for m in container["volumeMounts"] if m.get("subPath")]
    assert own == [{"name": "runs", "mountPath": f"{RUNS_MOUNT}/{owner_dirname(name)}", "subPath": owner_dirname(name)}]
    assert owner_dirname(name) != name and "/" not in own[0]["subPath"]
    kubernetes_validate.validate(pod, kubernetes_validate.utils.latest_version(), strict=True)


def test_a_service_account_does_not_bring_a_token(kube_config):
    """z2jh sets singleuser.serviceAccountName; with a service account KubeSpawner would mount its token by default."""
    config = Config(kube_config)
    config.KubeSpawner.service_account = "workbench-notebook"
    pod = asyncio.run(_manifest(config, _user("alice", []), "cpu-small"))
    assert pod["spec"]["serviceAccountName"] == "workbench-notebook"
    assert pod["spec"]["automountServiceAccountToken"] is False


def test_profiles_are_filtered_by_group(kube_config):
    async def visible(groups: list[str]) -> tuple[list[str], str]:
        spawner = _spawner(kube_config, _user("bob", groups), {})
        entries = spawner.profile_list(spawner)
        return [e["slug"] for e in entries], await spawner._render_options_form_dynamically(spawner)

    outsider, form = asyncio.run(visible([]))
    assert outsider == [p.slug for p in PROFILES.for_groups([])]
    assert "gpu-t4" not in outsider and "gpu-t4" not in form and "cpu-small" in form
    member, form = asyncio.run(visible(["gpu-users"]))
    assert "gpu-t4" in member and "gpu-a100" not in member and "gpu-t4" in form

    async def forced() -> None:
        await _spawner(kube_config, _user("bob", []), {"profile": "gpu-a100"}).load_user_options()

    with pytest.raises(ValueError, match="No such profile: gpu-a100"):
        asyncio.run(forced())


def test_kubernetes_config_registers_services_and_quota(kube_config):
    names = {s["name"] for s in kube_config.JupyterHub.services}
    assert names == {"culler", "reports", "job-gateway"}
    gateway = next(s for s in kube_config.JupyterHub.services if s["name"] == "job-gateway")
    launched = gateway["command"][gateway["command"].index("--") + 1 :]  # started through workbench.hub.launch
    assert gateway["url"] == "http://hub:10102" and launched[1:3] == ["-m", "workbench.hub.gateway"]
    roles = {r["name"]: r for r in kube_config.JupyterHub.load_roles}
    assert "custom:workbench-jobs:submit" in roles["user"]["scopes"]
    assert roles["workbench-job-gateway"]["services"] == ["job-gateway"]
    assert set(roles["workbench-job-gateway"]["scopes"]) == {"read:users:name", "read:users:groups", "read:servers"}
    assert "custom:workbench-jobs:submit" in kube_config.JupyterHub.custom_scopes
    assert "custom:workbench-jobs:submit" in kube_config.Spawner.server_token_scopes
    reports = next(s for s in kube_config.JupyterHub.services if s["name"] == "reports")
    assert reports["url"] == "http://hub:10101" and "--ip" in reports["command"]
    culler = next(s for s in kube_config.JupyterHub.services if s["name"] == "culler")
    assert culler["command"][culler["command"].index("--mode") + 1] == "kubernetes"
    assert callable(kube_config.Spawner.pre_spawn_hook)
    assert kube_config.JupyterHub.spawner_class == "kubespawner.KubeSpawner"


def test_spawn_without_options_records_and_starts_the_groups_default(tmp_path):
    """gpu-users get gpu-t4 by default: the pre-spawn hook records it, and the pod KubeSpawner builds is that profile."""
    import yaml
    from kubernetes_asyncio.client import ApiClient
    from kubernetes_asyncio.config import kube_config as kube_config_module

    raw = yaml.safe_load((ROOT / "hub" / "profiles.yaml").read_text())
    for entry in raw["profiles"]:
        entry["default"] = entry["slug"] == "gpu-t4"
    (tmp_path / "profiles.yaml").write_text(yaml.safe_dump(raw))
    (tmp_path / "config").write_text(KUBECONFIG)

    async def spawn(groups: list[str]) -> tuple[dict, dict]:
        spawner = _spawner(c, _user("kim", groups), {})
        spawner.run_pre_spawn_hook()
        await spawner.load_user_options()
        async with ApiClient() as api:
            return spawner.user_options, api.sanitize_for_serialization(await spawner.get_pod_manifest())

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(kube_config_module, "KUBE_CONFIG_DEFAULT_LOCATION", str(tmp_path / "config"))
        mp.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        c = Config()
        configure(c, mode="kubernetes", profiles_path=tmp_path / "profiles.yaml")
        options, pod = asyncio.run(spawn(["gpu-users"]))
        assert options == {"profile": "gpu-t4", "spawned": {"profile": "gpu-t4", "gpus": 1}}
        assert pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        options, pod = asyncio.run(spawn([]))
        assert options["spawned"] == {"profile": "cpu-small", "gpus": 0}
        assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"]["limits"]
