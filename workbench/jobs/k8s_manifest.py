"""Render a notebook run as Kubernetes objects: a ``batch/v1`` Job plus the ConfigMap it reads.

The Job's container runs the same ``workbench run`` as on a laptop, inside the curated image::

    workbench run /etc/workbench/job/<notebook> -f /etc/workbench/job/params.yaml \\
        --name <name> --runs-dir <KUBE_RUNS_MOUNT> [--timeout S] [--notify $(WORKBENCH_NOTIFY_URL)]

The notebook (outputs cleared) and the validated parameters travel in a ConfigMap, so no value is
ever quoted through a shell. Resources, node selector and tolerations come from a profile of
``hub/profiles.yaml``; the shared runs volume is mounted read-only at :data:`~workbench.runs.KUBE_RUNS_MOUNT` with
the owner's own folder (``<owner_dirname(owner)>``) mounted read-write over it, so a Job writes
only its owner's runs; the pod runs under the job runner's service account without its token;
secrets reach the container only through ``envFrom: secretRef`` (and the webhook URL through its
own Secret).
"""

from __future__ import annotations

import copy
import json
import math
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from .._checks import check_whole_number, is_whole_number
from .._redact import redact_url
from ..profiles import Profile, ProfileSet, load_profiles, parse_memory, profile_env
from ..runs.layout import KUBE_RUNS_MOUNT, RUNS_ENV, current_owner, owner_dirname

JOB_MOUNT = "/etc/workbench/job"
RUNS_MOUNT = KUBE_RUNS_MOUNT
JOB_SERVICE_ACCOUNT = "workbench-job-runner"  # created by the workbench chart; holds no rights
PARAMS_KEY = "params.yaml"
NOTIFY_KEY = "WORKBENCH_NOTIFY_URL"
CONTAINER = "notebook"
RUN_UID, RUN_GID = 1000, 100
DEFAULT_DEADLINE_S = 24 * 3600  # a job without a timeout still ends, so it never holds a GPU forever
STARTUP_GRACE_S = 600  # scheduling and image pull, on top of the notebook's own timeout
TTL_AFTER_FINISHED_S = 3 * 24 * 3600
BACKOFF_LIMIT = 2  # retries for node failures only: a failing notebook fails the Job at once
CONFIGMAP_MAX_BYTES = 1_000_000  # Kubernetes caps a ConfigMap at 1 MiB

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_CONFIG_KEY = re.compile(r"[^-._a-zA-Z0-9]+")
_QUANTITY = re.compile(r"^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_LABEL_VALUE = re.compile(r"[^a-z0-9_.-]+")


@dataclass(frozen=True, repr=False)
class JobManifests:
    """The objects one Kubernetes notebook run creates, in creation order.

    ``notify_secret`` holds the webhook URL in clear; :meth:`to_yaml` redacts it by default.
    """

    job: dict[str, Any]
    config_map: dict[str, Any]
    notify_secret: dict[str, Any] | None = field(default=None)

    @property
    def name(self) -> str:
        return self.job["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.job["metadata"]["namespace"]

    @property
    def objects(self) -> list[dict[str, Any]]:
        """ConfigMap, Secret (when notifying) and Job: the order to create them in."""
        return [self.config_map, *([self.notify_secret] if self.notify_secret else []), self.job]

    def to_yaml(self, redact: bool = True) -> str:
        """All objects as one multi-document YAML stream; the webhook URL is redacted unless asked."""
        docs = []
        for obj in self.objects:
            if redact and obj is self.notify_secret:
                data = obj["stringData"]
                obj = {**obj, "stringData": {k: redact_url(v) for k, v in data.items()}}
            docs.append(obj)
        return dump_yaml(docs)

    def __repr__(self) -> str:
        return f"JobManifests(name={self.name!r}, namespace={self.namespace!r}, objects={len(self.objects)})"


class _BlockDumper(yaml.SafeDumper):
    """Safe YAML with multi-line strings (the notebook, the params file) as readable ``|`` blocks."""

    def ignore_aliases(self, data: Any) -> bool:  # plain manifests, no YAML anchors
        return True


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _str_representer)


def dump_yaml(docs: Sequence[Mapping[str, Any]]) -> str:
    """Manifests as one multi-document YAML stream, multi-line strings as readable ``|`` blocks."""
    return yaml.dump_all(list(docs), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=120)


def job_name(name: str) -> str:
    """A fresh DNS-1123 label (at most 63 characters) for a run called ``name``: ``<slug>-<6 hex>``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:56].strip("-") or "run"
    return f"{slug}-{secrets.token_hex(3)}"


def label_value(value: str) -> str:
    """A valid label value (at most 63 characters, alphanumeric at both ends)."""
    return _LABEL_VALUE.sub("-", value.lower())[:63].strip("-_.") or "unknown"


def check_name(kind: str, value: str, pattern: re.Pattern[str], max_len: int, option: str) -> None:
    if not isinstance(value, str) or not pattern.match(value) or len(value) > max_len:
        raise ValueError(
            f"{kind} {value!r} is not a valid Kubernetes name: use at most {max_len} lowercase letters, "
            f"digits and '-' (starting and ending with a letter or digit); fix {option}"
        )


def _cpu(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{math.ceil(value * 1000)}m"


def _memory(value: str) -> str:
    text = str(value).strip()
    return text if _QUANTITY.match(text) else str(parse_memory(text))


def pick_profile(profiles: ProfileSet, slug: str | None, gpus: int) -> tuple[Profile, int]:
    """The profile to run on and how many GPUs to request from it.

    Without ``slug``: the default profile when no GPU is asked for, else the first GPU profile with
    enough GPUs. With a GPU profile, ``gpus=0`` means the profile's own count.
    """
    check_whole_number(gpus, "gpus", 0)
    gpu_slugs = [p.slug for p in profiles.profiles if p.gpus > 0]
    if slug is None:
        if gpus == 0:
            profile = next((p for p in profiles.profiles if p.default), profiles.profiles[0])
        else:
            candidates = [p for p in profiles.profiles if p.gpus >= gpus]
            if not candidates:
                raise ValueError(f"no profile offers {gpus} GPUs; GPU profiles are {gpu_slugs} (pass profile=...)")
            profile = candidates[0]
    else:
        try:
            profile = profiles.get(slug)
        except KeyError as exc:
            raise ValueError(f"{exc.args[0]}; pass one of them as profile=...") from None
    wanted = gpus or profile.gpus
    if wanted and not profile.gpus:
        raise ValueError(
            f"profile {profile.slug!r} has no GPUs, so gpus={wanted} cannot be scheduled on it; "
            f"choose a GPU profile: {gpu_slugs}"
        )
    if wanted > profile.gpus:
        raise ValueError(f"profile {profile.slug!r} offers {profile.gpus} GPU(s), not {wanted}; lower gpus=")
    if wanted > profiles.max_gpus_per_user:
        raise ValueError(f"at most {profiles.max_gpus_per_user} GPU(s) per user are allowed, not {wanted}")
    return profile, wanted


def notebook_files(notebook: str | Path) -> tuple[str, dict[str, str]]:
    """Where the container finds the notebook, and the ConfigMap entries that carry it.

    A local notebook is shipped (outputs cleared); an absolute path that does not exist here is
    taken as a path inside the image.
    """
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        if path.is_absolute():
            return str(path), {}
        raise ValueError(
            f"notebook {str(notebook)!r} not found; give a local notebook (it is shipped with the job) "
            "or an absolute path to a notebook inside the image"
        )
    try:
        nb = nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for unreadable files
        raise ValueError(f"{path} is not a Jupyter notebook ({exc.__class__.__name__}: {exc})") from None
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    key = _CONFIG_KEY.sub("-", path.name).strip("-.") or "notebook.ipynb"
    return f"{JOB_MOUNT}/{key}", {key: nbformat.writes(nb)}


def params_yaml(params: Mapping[str, Any]) -> str:
    if not isinstance(params, Mapping):
        raise ValueError(f"params must be a mapping of parameter names to values, got {type(params).__name__}")
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise ValueError(f"parameter name {key!r} is not a Python identifier; notebook parameters are variables")
        try:
            yaml.safe_dump(value)
        except yaml.YAMLError:
            raise ValueError(
                f"parameter {key!r} holds a {type(value).__name__}, which cannot travel to the job; "
                "pass plain Python values (numbers, strings, booleans, lists, dicts)"
            ) from None
    return yaml.safe_dump(dict(params), sort_keys=False, allow_unicode=True)


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"notify URL {redact_url(url)} must be an http(s) URL with a host")


def render_job(
    *,
    notebook: str | Path,
    params: Mapping[str, Any],
    name: str,
    image: str,
    gpus: int = 0,
    profile: str | None = None,
    namespace: str = "default",
    timeout: int | None = None,
    notify: str | None = None,
    runs_pvc: str = "workbench-runs",
    secret: str | Sequence[str] | None = None,
    profiles: ProfileSet | str | Path | None = None,
    owner: str | None = None,
    service_account: str = JOB_SERVICE_ACCOUNT,
) -> JobManifests:
    """The Kubernetes objects that run ``notebook`` with ``params`` as a Job; nothing is sent anywhere.

    ``profiles`` is a loaded :class:`ProfileSet` or a path (default: ``load_profiles()``); ``image``
    falls back to the profile's image when empty. ``secret`` names one Secret or several, each
    handed to the container with ``envFrom``; ``owner`` (default: :func:`current_owner`) decides
    the runs folder the Job may write.

    .. code-block:: python

        m = render_job(notebook="notebooks/train.ipynb", params={"lr": 0.05}, name="lgbm",
                       image="workbench/base:0.1.0", profile="cpu-large")
        print(m.to_yaml())
    """
    profile_set = profiles if isinstance(profiles, ProfileSet) else load_profiles(profiles)
    chosen, n_gpus = pick_profile(profile_set, profile, gpus)
    secret_names = [secret] if isinstance(secret, str) else list(secret or ())
    image = _check_job_inputs(chosen, name, image, namespace, runs_pvc, secret_names, service_account, timeout, notify)
    owner = owner or current_owner()
    nb_path, nb_files = notebook_files(notebook)
    job = job_name(name)
    data = _config_data(params, nb_files)
    shown = Path(notebook).name if nb_files else nb_path  # a shipped notebook by its file name, never a local path
    meta = _metadata(job, namespace, name, owner, chosen.slug, shown)
    command = _command(nb_path, name, timeout)
    env = environment(chosen, owner)
    notify_secret = None
    if notify is not None:
        notify_secret = _notify_secret(meta, notify)
        env.append({"name": NOTIFY_KEY, "valueFrom": {"secretKeyRef": {"name": f"{job}-notify", "key": NOTIFY_KEY}}})
        command += ["--notify", f"$({NOTIFY_KEY})"]  # expanded by the kubelet, never stored in the spec
    container = _container_spec(chosen, n_gpus, image, command, env, owner_dirname(owner), secret_names)
    pod_spec = _pod_spec(chosen, container, service_account, runs_pvc, job)
    job_obj = _job_object(meta, pod_spec, timeout)
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data}
    fresh = copy.deepcopy  # no object shares a nested dict with another
    return JobManifests(job=fresh(job_obj), config_map=fresh(config_map), notify_secret=fresh(notify_secret))


def _check_job_inputs(
    chosen: Profile,
    name: str,
    image: str,
    namespace: str,
    runs_pvc: str,
    secret_names: list[str],
    service_account: str,
    timeout: int | None,
    notify: str | None,
) -> str:
    """Every name, the image, the timeout and the webhook URL checked; returns the image to run."""
    check_name("namespace", namespace, DNS_LABEL, 63, "namespace=")
    check_name("runs volume claim", runs_pvc, DNS_SUBDOMAIN, 253, "runs_pvc=")
    for secret_name in secret_names:
        check_name("secret", secret_name, DNS_SUBDOMAIN, 253, "secret=")
    check_name("service account", service_account, DNS_SUBDOMAIN, 253, "service_account=")
    image = (image or chosen.image).strip()
    if not image or any(ch.isspace() for ch in image):
        raise ValueError(f"image {image!r} is not a container image reference; pass image='REPO/NAME:TAG'")
    if timeout is not None and not is_whole_number(timeout, 1):
        raise ValueError(f"timeout must be a positive whole number of seconds, got {timeout!r}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("the run needs a name (name=...)")
    if notify is not None:
        _check_url(notify)
    return image


def _config_data(params: Mapping[str, Any], nb_files: dict[str, str]) -> dict[str, str]:
    """The ConfigMap's entries: the parameters file and the shipped notebook, within a ConfigMap's size."""
    data = {PARAMS_KEY: params_yaml(params), **nb_files}
    size = sum(len(v.encode()) for v in data.values())
    if size > CONFIGMAP_MAX_BYTES:
        raise ValueError(
            f"notebook and parameters take {size:,} bytes, over the {CONFIGMAP_MAX_BYTES:,} a ConfigMap holds; "
            "move large data out of the notebook or bake the notebook into the image"
        )
    return data


def _metadata(job: str, namespace: str, name: str, owner: str, profile_slug: str, shown: str) -> dict[str, Any]:
    """Name, namespace, labels (for selectors) and annotations (the exact run name, owner, notebook)."""
    labels = {
        "app.kubernetes.io/name": "workbench",
        "app.kubernetes.io/component": "notebook-job",
        "app.kubernetes.io/managed-by": "workbench",
        "workbench/run-name": label_value(name),
        "workbench/owner": label_value(owner),
        "workbench/profile": profile_slug,
    }
    annotations = {"workbench/run-name": name, "workbench/owner": owner, "workbench/notebook": shown}
    return {"name": job, "namespace": namespace, "labels": labels, "annotations": annotations}


def _command(nb_path: str, name: str, timeout: int | None) -> list[str]:
    """The container's ``workbench run`` command line."""
    # The kubelet expands $(VAR) in commands; "$$" keeps a user's "$" literal.
    literal = [arg.replace("$", "$$") for arg in (nb_path, name)]
    command = [
        "workbench",
        "run",
        literal[0],
        "-f",
        f"{JOB_MOUNT}/{PARAMS_KEY}",
        "--name",
        literal[1],
        "--runs-dir",
        RUNS_MOUNT,
    ]
    if timeout is not None:
        command += ["--timeout", str(timeout)]
    return command


def environment(chosen: Profile, owner: str) -> list[dict[str, Any]]:
    """The container's variables: the profile's (:func:`~workbench.profiles.profile_env`), the runs root, the owner."""
    env_values = profile_env(chosen)
    env_values |= {RUNS_ENV: RUNS_MOUNT, "PYTHONUNBUFFERED": "1", "LOGNAME": owner, "USER": owner}
    return [{"name": k, "value": v} for k, v in env_values.items()]


def _notify_secret(meta: dict[str, Any], notify: str) -> dict[str, Any]:
    """The Secret holding the webhook URL, named after the Job."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {**meta, "name": f"{meta['name']}-notify"},
        "stringData": {NOTIFY_KEY: notify},
    }


def container_resources(chosen: Profile, n_gpus: int) -> dict[str, Any]:
    """The profile's requests and limits, with ``n_gpus`` of its GPU resource."""
    resources: dict[str, Any] = {
        "requests": {"cpu": _cpu(chosen.cpu_guarantee), "memory": _memory(chosen.mem_guarantee)},
        "limits": {"cpu": _cpu(chosen.cpu_limit), "memory": _memory(chosen.mem_limit)},
    }
    if n_gpus:
        resources["limits"][chosen.gpu_resource] = str(n_gpus)
    return resources


def runs_mounts(owner_folder: str, volume: str = "runs") -> list[dict[str, Any]]:
    """The runs volume read-only, with the owner's own folder mounted read-write over it."""
    return [
        {"name": volume, "mountPath": RUNS_MOUNT, "readOnly": True},
        {"name": volume, "mountPath": f"{RUNS_MOUNT}/{owner_folder}", "subPath": owner_folder},
    ]


def container_security() -> dict[str, Any]:
    """No privilege escalation, no capabilities, never root."""
    return {"allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


def pod_security() -> dict[str, Any]:
    """The pod runs as the notebook user (``RUN_UID``/``RUN_GID``) with the runtime's seccomp profile."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_UID,
        "runAsGroup": RUN_GID,
        "fsGroup": RUN_GID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def secret_env(secret_names: Sequence[str]) -> list[dict[str, Any]]:
    """``envFrom`` entries handing each Secret's keys to the container."""
    return [{"secretRef": {"name": s}} for s in secret_names]


def placement(chosen: Profile) -> dict[str, Any]:
    """The profile's ``nodeSelector`` and ``tolerations`` (only those it sets)."""
    parts: dict[str, Any] = {}
    if chosen.node_selector:
        parts["nodeSelector"] = dict(chosen.node_selector)
    if chosen.tolerations:
        parts["tolerations"] = [dict(t) for t in chosen.tolerations]
    return parts


def _container_spec(
    chosen: Profile,
    n_gpus: int,
    image: str,
    command: list[str],
    env: list[dict[str, Any]],
    owner_folder: str,
    secret_names: list[str],
) -> dict[str, Any]:
    """The notebook container: the profile's resources, no privileges, the owner's runs folder writable."""
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": env,
        "resources": container_resources(chosen, n_gpus),
        "securityContext": container_security(),
        "volumeMounts": [*runs_mounts(owner_folder), {"name": "job", "mountPath": JOB_MOUNT, "readOnly": True}],
    }
    if secret_names:
        container["envFrom"] = secret_env(secret_names)
    return container


def _pod_spec(
    chosen: Profile, container: dict[str, Any], service_account: str, runs_pvc: str, job: str
) -> dict[str, Any]:
    """The pod: non-root, no service account token, the runs volume and the job's ConfigMap."""
    return {
        "restartPolicy": "Never",
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security(),
        "containers": [container],
        "volumes": [
            {"name": "runs", "persistentVolumeClaim": {"claimName": runs_pvc}},
            {"name": "job", "configMap": {"name": job}},
        ],
        **placement(chosen),
    }


def _job_object(meta: dict[str, Any], pod_spec: dict[str, Any], timeout: int | None) -> dict[str, Any]:
    """The ``batch/v1`` Job: a deadline, cleanup after it finishes, retries for node failures only."""
    deadline = timeout + STARTUP_GRACE_S if timeout is not None else DEFAULT_DEADLINE_S
    template_meta = {"labels": meta["labels"], "annotations": meta["annotations"]}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": BACKOFF_LIMIT,
            # A notebook that fails fails the Job; only evictions and preemptions are retried.
            "podFailurePolicy": {
                "rules": [
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
                    {
                        "action": "FailJob",
                        "onExitCodes": {"containerName": CONTAINER, "operator": "NotIn", "values": [0]},
                    },
                ]
            },
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED_S,
            "template": {"metadata": template_meta, "spec": pod_spec},
        },
    }


def manifest_summary(manifests: JobManifests) -> str:
    """One line naming what will run where (for logs; holds no secret)."""
    container = manifests.job["spec"]["template"]["spec"]["containers"][0]
    limits = json.dumps(container["resources"]["limits"], separators=(",", ":"))
    return f"job {manifests.namespace}/{manifests.name}: image {container['image']}, limits {limits}"
