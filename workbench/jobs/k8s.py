"""Notebook runs as Kubernetes Jobs: ``run_k8s`` for people, and the API calls of the job gateway.

``run_k8s`` renders the objects (:mod:`workbench.jobs.k8s_manifest`) and prints them with
``dry_run``; otherwise it hands the run to the hub's job gateway (:mod:`workbench.jobs.k8s_client`),
since user pods hold no Kubernetes credentials. The gateway (:mod:`workbench.hub.gateway`) uses the
functions here with its own service account: :func:`submit`, :func:`job_status`, :func:`pod_log`,
:func:`delete_job`, :func:`owner_jobs`. Clients come from :func:`api_client` (as kubectl finds a
cluster) or :func:`credentials_client` (a mounted service-account token).

Exit status of ``run_k8s``: 0 succeeded, 1 failed or timed out, 3 the gateway or the cluster could
not be reached or refused the request, 130 interrupted (the Job keeps running).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .k8s_manifest import CONTAINER, NOTIFY_KEY, JobManifests, render_job

POLL_SECONDS = 2.0
LOG_LIMIT_BYTES = 8 * 1024 * 1024  # the log a client may page through; longer logs are cut
EXIT_OK, EXIT_FAILED, EXIT_CLUSTER, EXIT_INTERRUPTED = 0, 1, 3, 130
_WAITING_PROBLEMS = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "CrashLoopBackOff",
}


class KubernetesError(RuntimeError):
    """The cluster could not be reached, refused the credentials, or rejected a request.

    ``status`` is the API server's HTTP status (0 when it did not answer).
    """

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class JobOutcome:
    """How a Job ended: ``state`` is ``succeeded`` or ``failed``; ``summary`` is one line for people."""

    name: str
    state: str
    summary: str
    reason: str = ""
    exit_code: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.state == "succeeded"


def api_client(context: str | None = None) -> Any:
    """A ``kubernetes.client.ApiClient`` configured the way kubectl finds a cluster.

    ``$KUBECONFIG`` (one or more files), else ``~/.kube/config``, else the in-cluster service account.
    """
    try:
        from kubernetes import client, config
    except ImportError:  # pragma: no cover - the k8s extra is part of dev
        raise KubernetesError("the Kubernetes backend needs the client: pip install 'workbench[k8s]'") from None
    cfg = client.Configuration()
    kubeconfig = os.environ.get("KUBECONFIG") or ""
    default = Path("~/.kube/config").expanduser()
    in_cluster = bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    if not (kubeconfig or default.is_file() or in_cluster):
        raise KubernetesError(
            "no Kubernetes configuration found: set KUBECONFIG, create ~/.kube/config (e.g. with your "
            "cloud's get-credentials command), or run inside the cluster"
        )
    source = kubeconfig or (str(default) if default.is_file() else "the in-cluster service account")
    try:
        if kubeconfig or default.is_file():
            config.load_kube_config(config_file=source, context=context, client_configuration=cfg, persist_config=False)
        else:
            config.load_incluster_config(client_configuration=cfg)
    except Exception as exc:  # ConfigException, unreadable or malformed files: all mean "fix the config"
        raise KubernetesError(f"cannot use the Kubernetes configuration from {source}: {exc}") from None
    return client.ApiClient(cfg)


def credentials_client(directory: str | os.PathLike[str]) -> Any:
    """An ``ApiClient`` for the in-cluster API server with the service-account token in ``directory``.

    ``directory`` holds ``token`` and ``ca.crt``, as a ``kubernetes.io/service-account-token``
    Secret mounted as a volume does; the token is read again when it changes.
    """
    from kubernetes import client
    from kubernetes.config.incluster_config import InClusterConfigLoader

    folder = Path(directory)
    cfg = client.Configuration()
    try:
        InClusterConfigLoader(token_filename=str(folder / "token"), cert_filename=str(folder / "ca.crt")).load_and_set(
            cfg
        )
    except Exception as exc:  # ConfigException, missing files: the deployment is incomplete
        raise KubernetesError(f"cannot use the service-account credentials in {folder}: {exc}") from None
    return client.ApiClient(cfg)


def owner_jobs(owner: str, namespace: str, api: Any, selector: str) -> list[Any]:
    """Jobs matching label ``selector`` whose ``workbench/owner`` annotation is exactly ``owner``."""
    from kubernetes import client

    with api_call(api, "list jobs", namespace):
        found = client.BatchV1Api(api).list_namespaced_job(namespace, label_selector=selector).items
    return [j for j in found if (j.metadata.annotations or {}).get("workbench/owner") == owner]


def job_active(job: Any) -> bool:
    """Whether a Job has not ended yet (pending or running)."""
    return _job_state(job)[0] in ("pending", "running")


def _server(api: Any) -> str:
    """The API server address without any credentials in it."""
    parts = urlsplit(api.configuration.host)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _status_message(body: str | None) -> str:
    try:
        message = json.loads(body or "").get("message", "")
    except (ValueError, AttributeError):
        message = ""
    return str(message)[:300]


@contextlib.contextmanager
def api_call(api: Any, action: str, namespace: str) -> Iterator[None]:
    """Turn client and network errors into one clear :class:`KubernetesError`."""
    import urllib3
    from kubernetes.client.exceptions import ApiException

    server = _server(api)
    try:
        yield
    except ApiException as exc:
        message = _status_message(exc.body)
        detail = f": {message}" if message else ""
        if exc.status == 401:
            text = (
                f"the Kubernetes API at {server} rejected the credentials (401 Unauthorized) while trying to "
                f"{action}; refresh the token or certificate in your kubeconfig"
            )
        elif exc.status == 403:
            text = (
                f"not allowed to {action} in namespace {namespace!r} (403 Forbidden){detail}; the job "
                "gateway's Role from the workbench chart grants what it needs: install the chart in this "
                "namespace"
            )
        elif exc.status == 404:
            text = f"cannot {action}: not found in namespace {namespace!r} (404){detail}; check --namespace"
        elif exc.status == 0:
            text = f"cannot {action} on {server}: {exc.reason}"
        else:
            text = f"cannot {action} ({exc.status} {exc.reason}){detail}"
        raise KubernetesError(text, status=exc.status or 0) from None
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise KubernetesError(
            f"cannot reach the Kubernetes API at {server} ({type(reason).__name__}); check the cluster address "
            "in your kubeconfig, the VPN or network, and that the cluster is running"
        ) from None


def submit(manifests: JobManifests, api: Any) -> None:
    """Create the Job, then its ConfigMap and webhook Secret owned by it (Kubernetes deletes them with
    the Job, ``ttlSecondsAfterFinished``). The pod waits for its ConfigMap, so no object is ever
    patched; a Job whose ConfigMap or Secret cannot be created is deleted again."""
    from kubernetes import client

    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    ns, name = manifests.namespace, manifests.name
    with api_call(api, f"create job {name}", ns):
        job = batch.create_namespaced_job(ns, manifests.job)
    owner = [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": job.metadata.uid}]
    try:
        for obj in manifests.objects[:-1]:
            owned = {**obj, "metadata": {**obj["metadata"], "ownerReferences": owner}}
            kind = obj["kind"].lower()
            with api_call(api, f"create {kind} {obj['metadata']['name']}", ns):
                create = core.create_namespaced_config_map if kind == "configmap" else core.create_namespaced_secret
                create(ns, owned)
    except KubernetesError:
        with contextlib.suppress(Exception):
            delete_job(name, ns, api)
        raise


def delete_job(name: str, namespace: str, api: Any) -> None:
    """Delete Job ``name`` with its pods, ConfigMap and Secret (background garbage collection)."""
    from kubernetes import client

    with api_call(api, f"delete job {name}", namespace):
        client.BatchV1Api(api).delete_namespaced_job(name, namespace, propagation_policy="Background")


def _job_state(job: Any) -> tuple[str, str, str]:
    """(state, reason, message) of a Job: pending, running, succeeded or failed."""
    status = job.status
    for cond in (status.conditions if status else None) or []:
        if cond.status == "True" and cond.type == "Complete":
            return "succeeded", cond.reason or "", cond.message or ""
        if cond.status == "True" and cond.type == "Failed":
            return "failed", cond.reason or "", cond.message or ""
    return ("running" if status and status.active else "pending"), "", ""


def _terminated(pod: Any) -> Any:
    for cs in (pod.status.container_statuses if pod.status else None) or []:
        if cs.name == CONTAINER and cs.state and cs.state.terminated:
            return cs.state.terminated
    return None


def _pod_notes(pod: Any) -> list[str]:
    """Why a pod is not running yet, in words: unschedulable, image pull errors, missing secrets."""
    name, notes = pod.metadata.name, []
    for cond in (pod.status.conditions if pod.status else None) or []:
        if cond.type == "PodScheduled" and cond.status == "False" and cond.reason:
            notes.append(f"pod {name}: {cond.reason}: {cond.message or ''}".rstrip(": "))
    for cs in (pod.status.container_statuses if pod.status else None) or []:
        waiting = cs.state.waiting if cs.state else None
        if waiting and waiting.reason in _WAITING_PROBLEMS:
            notes.append(f"pod {name}: {waiting.reason}: {waiting.message or ''}".rstrip(": "))
    return notes


def pod_log(pod: str, namespace: str, api: Any, limit_bytes: int = LOG_LIMIT_BYTES) -> bytes:
    """The notebook container's log so far (at most ``limit_bytes``)."""
    from kubernetes import client

    with api_call(api, f"read the log of pod {pod}", namespace):
        resp = client.CoreV1Api(api).read_namespaced_pod_log(
            pod, namespace, container=CONTAINER, limit_bytes=limit_bytes, _preload_content=False
        )
    try:
        return resp.data
    finally:
        resp.release_conn()


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _outcome(job: Any, pods: list[Any], state: str, reason: str, message: str, elapsed: float) -> JobOutcome:
    name = job.metadata.name
    if state == "succeeded":
        return JobOutcome(name, state, f"job {name}: succeeded in {_duration(elapsed)}")
    ended = [t for t in (_terminated(p) for p in pods) if t is not None]
    last = ended[-1] if ended else None
    code = last.exit_code if last else None
    if reason == "DeadlineExceeded":
        deadline = job.spec.active_deadline_seconds if job.spec else None
        text = f"job {name}: timed out: it ran past its deadline of {deadline} s and Kubernetes stopped it"
    elif last is not None and last.reason == "OOMKilled":
        limit = job.spec.template.spec.containers[0].resources.limits.get("memory") if job.spec else None
        text = (
            f"job {name}: failed: the notebook ran out of memory (container OOMKilled, exit {code}, "
            f"memory limit {limit}); choose a profile with more memory or use less data"
        )
    else:
        why = f"{reason}: {message}".strip(": ") or "failed"
        text = f"job {name}: failed ({why})" + (f"; notebook container exit code {code}" if code is not None else "")
    return JobOutcome(name, "failed", text, reason=reason or (last.reason if last else ""), exit_code=code)


def job_pods(name: str, namespace: str, api: Any) -> list[Any]:
    """The pods of Job ``name``, oldest first."""
    from kubernetes import client

    with api_call(api, f"list the pods of job {name}", namespace):
        found = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    found = [p for p in found if (p.metadata.labels or {}).get("job-name") == name]  # never trust a selector alone
    return sorted(found, key=lambda p: (str(p.metadata.creation_timestamp or ""), p.metadata.name))


def read_job(name: str, namespace: str, api: Any) -> Any:
    from kubernetes import client

    with api_call(api, f"read job {name}", namespace):
        return client.BatchV1Api(api).read_namespaced_job(name, namespace)


def job_status(job: Any, pods: list[Any]) -> dict[str, Any]:
    """A Job and its pods as JSON for people and for :mod:`workbench.jobs.k8s_client`.

    ``state`` is pending, running, succeeded or failed; ``notes`` say why a pod is not running yet;
    a finished Job also has its one-line ``summary`` and the notebook container's ``exit_code``.
    """
    state, reason, message = _job_state(job)
    status: dict[str, Any] = {
        "name": job.metadata.name,
        "state": state,
        "pods": [{"name": p.metadata.name, "phase": p.status.phase if p.status else None} for p in pods],
        "notes": [note for p in pods for note in _pod_notes(p)],
    }
    if state in ("succeeded", "failed"):
        started = job.status.start_time if job.status else None
        ended = (job.status.completion_time if job.status else None) or datetime.now(UTC)
        elapsed = (ended - started).total_seconds() if started else 0.0
        outcome = _outcome(job, pods, state, reason, message, elapsed)
        status |= {"summary": outcome.summary, "reason": outcome.reason, "exit_code": outcome.exit_code}
    return status


def run_k8s(
    *,
    notebook: str,
    params: dict,
    name: str,
    image: str | None = None,
    gpus: int = 0,
    profile: str | None = None,
    namespace: str = "default",
    timeout: int | None = None,
    dry_run: bool = False,
    notify: str | None = None,
    runs_pvc: str = "workbench-runs",
    secret: str | list[str] | None = None,
) -> int:
    """Run ``notebook`` with ``params`` as a Kubernetes Job; returns the exit status.

    With ``dry_run`` the objects are rendered here and printed as YAML (webhook URL redacted);
    nothing is sent. Otherwise the request goes to the hub's job gateway
    (``$WORKBENCH_JOB_GATEWAY_URL``, authenticated by ``$JUPYTERHUB_API_TOKEN``), which checks it,
    renders the same template with the profile's image in its namespace, creates the Job, and is
    then asked for the Job's state and log until it ends. ``notify`` defaults to
    ``$WORKBENCH_NOTIFY_URL``, as for local runs. Bad arguments raise ``ValueError`` before any call.

    Parameters
    ----------
    notebook : str
        Path of the notebook to run.
    params : dict
        Notebook parameters (checked against its parameters cell).
    name : str
        Run name, also the prefix of the Kubernetes object names.
    image : str, optional
        Container image; the profile's image when not given.
    gpus : int, default 0
        Number of GPUs the Job requests.
    profile : str, optional
        Slug of a compute profile of ``hub/profiles.yaml``.
    namespace : str, default "default"
        Namespace of the rendered objects (``dry_run``).
    timeout : int, optional
        Seconds the whole run may take.
    dry_run : bool, default False
        Print the objects instead of sending them.
    notify : str, optional
        Webhook URL told when the run ends.
    runs_pvc : str, default "workbench-runs"
        PersistentVolumeClaim holding the runs folder.
    secret : str or list of str, optional
        Secrets handed to the container with ``envFrom``.

    Returns
    -------
    int
        0 when the run succeeded (or was only printed), else non-zero.

    Raises
    ------
    ValueError
        On bad arguments, before any call.

    Examples
    --------
    >>> from workbench.notebooks import notebook_path
    >>> run_k8s(
    ...     notebook=str(notebook_path("train")),
    ...     params={"learning_rate": 0.05},
    ...     name="lgbm",
    ...     image="workbench/base:0.1.0",
    ...     profile="cpu-large",
    ...     dry_run=True,
    ... )
    apiVersion: v1
    kind: ConfigMap
    ...
    kind: Job
    ...
    0
    """
    notify = notify or os.environ.get(NOTIFY_KEY) or None
    manifests = render_job(
        notebook=notebook,
        params=params,
        name=name,
        image=image or "",
        gpus=gpus,
        profile=profile,
        namespace=namespace,
        timeout=timeout,
        notify=notify,
        runs_pvc=runs_pvc,
        secret=secret,
    )
    if dry_run:
        sys.stdout.write(manifests.to_yaml())
        return EXIT_OK
    from .k8s_client import submit_and_follow

    secrets = [secret] if isinstance(secret, str) else list(secret or ())
    return submit_and_follow(
        notebook=notebook,
        params=params,
        name=name,
        gpus=gpus,
        profile=profile,
        timeout=timeout,
        notify=notify,
        secrets=secrets,
    )
