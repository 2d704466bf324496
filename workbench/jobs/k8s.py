"""Run a notebook as a Kubernetes Job: submit it with the official client and follow it to the end.

``run_k8s`` renders the objects (:mod:`workbench.jobs.k8s_manifest`), prints them with ``dry_run``,
or creates them and follows the Job: state changes, scheduling problems, the pod's log as it runs,
and a last line saying how it ended. The cluster is found as kubectl finds it: ``$KUBECONFIG``,
then ``~/.kube/config``, then the pod's service account when running inside the cluster.

Exit status: 0 succeeded, 1 failed or timed out, 3 the cluster could not be reached or refused
the request, 130 interrupted (the Job keeps running).
"""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from .._redact import redact
from .k8s_manifest import CONTAINER, NOTIFY_KEY, JobManifests, manifest_summary, render_job

POLL_SECONDS = 2.0
EXIT_OK, EXIT_FAILED, EXIT_CLUSTER, EXIT_INTERRUPTED = 0, 1, 3, 130
_WAITING_PROBLEMS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
                     "CreateContainerError", "CrashLoopBackOff"}  # fmt: skip


class KubernetesError(RuntimeError):
    """The cluster could not be reached, refused the credentials, or rejected a request."""


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
def _api_call(api: Any, action: str, namespace: str) -> Iterator[None]:
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
            text = (f"the Kubernetes API at {server} rejected the credentials (401 Unauthorized) while trying to "
                    f"{action}; refresh the token or certificate in your kubeconfig")  # fmt: skip
        elif exc.status == 403:
            text = (f"not allowed to {action} in namespace {namespace!r} (403 Forbidden){detail}; ask a "
                    "cluster admin for rights to create jobs, configmaps and secrets and to read pods "
                    "and their logs")  # fmt: skip
        elif exc.status == 404:
            text = f"cannot {action}: not found in namespace {namespace!r} (404){detail}; check --namespace"
        elif exc.status == 0:
            text = f"cannot {action} on {server}: {exc.reason}"
        else:
            text = f"cannot {action} ({exc.status} {exc.reason}){detail}"
        raise KubernetesError(text) from None
    except urllib3.exceptions.HTTPError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise KubernetesError(
            f"cannot reach the Kubernetes API at {server} ({type(reason).__name__}); check the cluster address "
            "in your kubeconfig, the VPN or network, and that the cluster is running"
        ) from None


def submit(manifests: JobManifests, api: Any) -> None:
    """Create the ConfigMap, the webhook Secret and the Job; the first two are then owned by the Job,
    so Kubernetes deletes them with it (``ttlSecondsAfterFinished``)."""
    from kubernetes import client

    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    ns, name = manifests.namespace, manifests.name
    with _api_call(api, f"create configmap {name}", ns):
        core.create_namespaced_config_map(ns, manifests.config_map)
    try:
        if manifests.notify_secret is not None:
            with _api_call(api, f"create secret {name}-notify", ns):
                core.create_namespaced_secret(ns, manifests.notify_secret)
        with _api_call(api, f"create job {name}", ns):
            job = batch.create_namespaced_job(ns, manifests.job)
    except KubernetesError:
        _delete_quietly(core, manifests)
        raise
    uid = job.metadata.uid if job.metadata else None
    if uid:
        owner = {"metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid}]}}
        with _api_call(api, f"set the owner of configmap {name}", ns):
            core.patch_namespaced_config_map(name, ns, owner)
        if manifests.notify_secret is not None:
            with _api_call(api, f"set the owner of secret {name}-notify", ns):
                core.patch_namespaced_secret(f"{name}-notify", ns, owner)


def _delete_quietly(core: Any, manifests: JobManifests) -> None:
    with contextlib.suppress(Exception):
        core.delete_namespaced_config_map(manifests.name, manifests.namespace)
    if manifests.notify_secret is not None:
        with contextlib.suppress(Exception):
            core.delete_namespaced_secret(f"{manifests.name}-notify", manifests.namespace)


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


def _stream_logs(core: Any, pod: str, namespace: str, out: IO[str]) -> None:
    """Copy the container's log to ``out`` until the container ends."""
    from kubernetes.client.exceptions import ApiException

    try:
        resp = core.read_namespaced_pod_log(pod, namespace, container=CONTAINER, follow=True, _preload_content=False)
    except ApiException as exc:
        out.write(f"pod {pod}: log unavailable ({exc.status} {_status_message(exc.body) or exc.reason})\n")
        return
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    try:
        for chunk in resp.stream(8192):
            out.write(decoder.decode(chunk))
            out.flush()
        out.write(decoder.decode(b"", final=True))
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
        text = (f"job {name}: failed: the notebook ran out of memory (container OOMKilled, exit {code}, "
                f"memory limit {limit}); choose a profile with more memory or use less data")  # fmt: skip
    else:
        why = f"{reason}: {message}".strip(": ") or "failed"
        text = f"job {name}: failed ({why})" + (f"; notebook container exit code {code}" if code is not None else "")
    return JobOutcome(name, "failed", text, reason=reason or (last.reason if last else ""), exit_code=code)


def follow_job(
    name: str, namespace: str, api: Any, *, poll: float | None = None, out: IO[str] | None = None
) -> JobOutcome:
    """Follow Job ``name`` until it succeeds or fails, writing progress and the pod's log to ``out``."""
    from kubernetes import client

    out = out or sys.stdout
    poll = POLL_SECONDS if poll is None else poll
    core, batch = client.CoreV1Api(api), client.BatchV1Api(api)
    started, last_state, noted, logged = time.monotonic(), None, set(), set()
    while True:
        with _api_call(api, f"read job {name}", namespace):
            job = batch.read_namespaced_job(name, namespace)
        state, reason, message = _job_state(job)
        if state != last_state:
            out.write(f"job {name}: {state}\n")
            out.flush()
            last_state = state
        with _api_call(api, f"list the pods of job {name}", namespace):
            found = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
        pods = sorted(found, key=lambda p: (str(p.metadata.creation_timestamp or ""), p.metadata.name))
        for pod in pods:
            pod_name, phase = pod.metadata.name, pod.status.phase if pod.status else None
            if pod_name in logged:
                continue
            if phase in ("Running", "Succeeded", "Failed"):
                out.write(f"pod {pod_name}: {phase.lower()}; its log follows\n")
                _stream_logs(core, pod_name, namespace, out)
                logged.add(pod_name)
            for note in _pod_notes(pod):
                if note not in noted:
                    out.write(note + "\n")
                    noted.add(note)
        if state in ("succeeded", "failed"):
            return _outcome(job, pods, state, reason, message, time.monotonic() - started)
        time.sleep(poll)


def run_k8s(
    *,
    notebook: str,
    params: dict,
    name: str,
    image: str,
    gpus: int = 0,
    profile: str | None = None,
    namespace: str = "default",
    timeout: int | None = None,
    dry_run: bool = False,
    notify: str | None = None,
    runs_pvc: str = "workbench-runs",
    secret: str | None = None,
) -> int:
    """Run ``notebook`` with ``params`` as a Kubernetes Job in ``image``; returns the exit status.

    With ``dry_run`` the objects are printed as YAML (webhook URL redacted) and nothing is sent.
    ``notify`` defaults to ``$WORKBENCH_NOTIFY_URL``, as for local runs.
    Otherwise they are created and the Job is followed to its end; the run directory appears on the
    shared runs volume (``runs_pvc``). Bad arguments raise ``ValueError`` before any API call.

    >>> run_k8s(notebook="notebooks/train.ipynb", params={"lr": 0.05}, name="lgbm",
    ...         image="workbench/base:0.1.0", profile="cpu-large", dry_run=True)
    0
    """
    notify = notify or os.environ.get(NOTIFY_KEY) or None
    manifests = render_job(notebook=notebook, params=params, name=name, image=image, gpus=gpus,
                           profile=profile, namespace=namespace, timeout=timeout, notify=notify,
                           runs_pvc=runs_pvc, secret=secret)  # fmt: skip
    if dry_run:
        sys.stdout.write(manifests.to_yaml())
        return EXIT_OK
    api = None
    try:
        api = api_client()
        submit(manifests, api)
        print(f"submitted {manifest_summary(manifests)}; results go to volume {runs_pvc!r}", flush=True)
        outcome = follow_job(manifests.name, manifests.namespace, api)
    except KubernetesError as exc:
        print(f"kubernetes: {redact(str(exc))}", file=sys.stderr)
        return EXIT_CLUSTER
    except KeyboardInterrupt:
        ns, job = manifests.namespace, manifests.name
        print(f"stopped following; job {ns}/{job} keeps running (follow: kubectl logs -f job/{job} -n {ns}; "
              f"stop: kubectl delete job {job} -n {ns})", file=sys.stderr)  # fmt: skip
        return EXIT_INTERRUPTED
    finally:
        if api is not None:
            api.close()
    print(outcome.summary, flush=True)
    return EXIT_OK if outcome.succeeded else EXIT_FAILED

