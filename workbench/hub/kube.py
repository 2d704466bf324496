"""Kubernetes mode: KubeSpawner settings and ``profile_list`` from the same profiles file.

Each user gets a pod from the curated image of the profile they pick, a persistent volume for
their home, the shared runs volume read-only at :data:`~workbench.runs.KUBE_RUNS_MOUNT` with their own folder
(``<owner_dirname(user)>``) mounted read-write over it, and a restricted security context (uid
1000, non-root, no privilege escalation, all capabilities dropped). User pods hold no Kubernetes
credentials (no service-account token); they submit Jobs through the job gateway, whose address
they find in ``$WORKBENCH_JOB_GATEWAY_URL``. ``profile_list`` is a callable that shows a user only
the profiles of their groups; KubeSpawner refuses any other slug.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..profiles import Profile, ProfileSet, profile_env
from ..runs.layout import KUBE_RUNS_MOUNT, RUNS_ENV, owner_dirname
from .quota import user_groups

RUNS_MOUNT = KUBE_RUNS_MOUNT
HOME = "/home/jovyan"
GATEWAY_URL_ENV = "WORKBENCH_JOB_GATEWAY_URL"

SECURITY_CONTEXT = {
    "runAsUser": 1000,
    "runAsGroup": 100,
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def profile_entry(profile: Profile) -> dict[str, Any]:
    """One KubeSpawner ``profile_list`` entry: image, resources, GPUs and placement."""
    override: dict[str, Any] = {
        "image": profile.image,
        "cpu_limit": profile.cpu_limit,
        "cpu_guarantee": profile.cpu_guarantee,
        "mem_limit": profile.mem_limit_bytes,
        "mem_guarantee": profile.mem_guarantee_bytes,
        "environment": profile_env(profile),
    }
    if profile.gpus:
        override["extra_resource_limits"] = {profile.gpu_resource: str(profile.gpus)}
    else:
        # CPU profiles must not see GPUs the NVIDIA runtime would otherwise expose
        override["environment"]["NVIDIA_VISIBLE_DEVICES"] = "void"
    if profile.node_selector:
        override["node_selector"] = dict(profile.node_selector)
    if profile.tolerations:
        override["tolerations"] = [dict(t) for t in profile.tolerations]
    return {
        "display_name": profile.display_name,
        "slug": profile.slug,
        "description": profile.description,
        "default": profile.default,
        "kubespawner_override": override,
    }


def profile_list(profiles: ProfileSet) -> Callable[[Any], list[dict[str, Any]]]:
    """``KubeSpawner.profile_list``: the profiles open to the spawning user's groups.

    Exactly one entry is marked default (the user's default profile), as KubeSpawner expects.
    """

    def for_spawner(spawner: Any) -> list[dict[str, Any]]:
        groups = user_groups(spawner)
        allowed = profiles.for_groups(groups)
        if not allowed:
            return []
        default = profiles.select(None, groups).slug
        return [{**profile_entry(p), "default": p.slug == default} for p in allowed]

    return for_spawner


def own_runs_mount(spawner: Any, pod: Any) -> Any:
    """``KubeSpawner.modify_pod_hook``: mount the user's own runs folder read-write over the read-only runs volume.

    The folder is both the ``subPath`` and the mount point below :data:`RUNS_MOUNT`, so the mount
    point exists in the read-only volume as soon as the kubelet creates the sub-path.
    """
    from kubernetes_asyncio.client import V1VolumeMount

    folder = owner_dirname(spawner.user.name)
    container = pod.spec.containers[0]
    container.volume_mounts = [
        *(container.volume_mounts or []),
        V1VolumeMount(name="runs", mount_path=f"{RUNS_MOUNT}/{folder}", sub_path=folder),
    ]
    return pod


def kubespawner_config(
    profiles: ProfileSet,
    *,
    runs_pvc: str = "workbench-runs",
    storage_capacity: str = "10Gi",
    storage_class: str | None = None,
    namespace: str | None = None,
    gateway_url: str | None = None,
) -> dict[str, Any]:
    """Settings for ``c.KubeSpawner`` (apply with ``for k, v in ...items(): setattr(c.KubeSpawner, k, v)``).

    ``gateway_url`` is the job gateway's address, given to user pods as ``$WORKBENCH_JOB_GATEWAY_URL``.
    """
    environment = {RUNS_ENV: RUNS_MOUNT}
    if gateway_url:
        environment[GATEWAY_URL_ENV] = gateway_url
    config: dict[str, Any] = {
        "profile_list": profile_list(profiles),
        "image": profiles.profiles[0].image,
        "uid": 1000,
        "gid": 100,
        "fs_gid": 100,
        "allow_privilege_escalation": False,
        "container_security_context": dict(SECURITY_CONTEXT),
        "pod_security_context": {"fsGroup": 100, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "storage_pvc_ensure": True,
        "storage_capacity": storage_capacity,
        "storage_access_modes": ["ReadWriteOnce"],
        "pvc_name_template": "claim-{user_server}",
        "volumes": [
            {"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}},
            {"name": "runs", "persistentVolumeClaim": {"claimName": runs_pvc}},
        ],
        "volume_mounts": [
            {"name": "home", "mountPath": HOME},
            {"name": "runs", "mountPath": RUNS_MOUNT, "readOnly": True},
        ],
        "modify_pod_hook": own_runs_mount,
        # no Kubernetes credentials in user pods, whatever service account the pod runs under
        "automount_service_account_token": False,
        "working_dir": HOME,
        "environment": environment,
        "default_url": "/lab",
    }
    if storage_class:
        config["storage_class"] = storage_class
    if namespace:
        config["namespace"] = namespace
    return config
