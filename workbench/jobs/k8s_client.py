"""The job gateway's client: submit a notebook run from a user pod and follow it to its end.

User pods hold no Kubernetes credentials. ``workbench run --backend k8s`` sends the notebook, its
parameters and the run's choices (name, profile, GPUs, secret names, timeout, webhook) to the hub's
job gateway at ``$WORKBENCH_JOB_GATEWAY_URL`` with the user's hub token (``$JUPYTERHUB_API_TOKEN``),
then asks it for the Job's state and log until the Job ends. The gateway's refusals come back as
its own words ("profile 'gpu-a100' is not allowed for your groups ..."). Tokens are never printed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote, urlencode, urlsplit

from .._redact import redact

GATEWAY_URL_ENV = "WORKBENCH_JOB_GATEWAY_URL"
TOKEN_ENV = "JUPYTERHUB_API_TOKEN"
REQUEST_TIMEOUT_S = 60
EXIT_OK, EXIT_FAILED, EXIT_GATEWAY, EXIT_INTERRUPTED = 0, 1, 3, 130


class GatewayError(RuntimeError):
    """The gateway could not be reached or refused the request; ``status`` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class GatewayClient:
    """Calls to the job gateway (or another hub service with its JSON API) at ``url`` with hub token ``token``.

    Parameters
    ----------
    url : str
        The gateway's base URL (``$WORKBENCH_JOB_GATEWAY_URL``), e.g. ``http://hub:10102/services/job-gateway/``.
    token : str
        A hub API token carrying the gateway's submit scope (``$JUPYTERHUB_API_TOKEN`` in user pods).
    service : str
        What the service is called in error messages.
    timeout : float
        Seconds to wait for an answer.
    """

    def __init__(
        self, url: str, token: str, *, service: str = "job gateway", timeout: float = REQUEST_TIMEOUT_S
    ) -> None:
        self.url = url.rstrip("/") + "/"
        self._token = token
        self.service = service
        self.timeout = timeout

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> GatewayClient:
        """The gateway of this hub user's pod; a clear error outside one."""
        env = os.environ if environ is None else environ
        url, token = env.get(GATEWAY_URL_ENV, ""), env.get(TOKEN_ENV, "")
        if not url:
            raise GatewayError(
                0,
                f"${GATEWAY_URL_ENV} is not set: `workbench run --backend k8s` submits through the "
                "hub's job gateway, so run it in a notebook server of the hub (or use --dry-run "
                "to print the manifests)",
            )
        if not token:
            raise GatewayError(
                0,
                f"${TOKEN_ENV} is not set: the job gateway needs your hub API token "
                "(a notebook server of the hub sets it)",
            )
        return cls(url, token)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> bytes:
        """Send ``body`` as JSON with ``method`` to ``path`` below the service's URL; returns the answer's body.

        Raises :class:`GatewayError`: with the HTTP status and the service's own words when it
        refuses, with status 0 when it cannot be reached.
        """
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self._token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise GatewayError(exc.code, _error_text(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GatewayError(
                0, f"cannot reach the {self.service} at {_where(self.url)} ({reason}); check that the hub is running"
            ) from None

    def submit(self, request: dict[str, Any]) -> dict[str, Any]:
        """Submit a run; returns ``{"name", "namespace", "profile", "gpus", "summary"}``."""
        return json.loads(self.call("POST", "api/jobs", request))

    def submit_tune(self, request: dict[str, Any]) -> dict[str, Any]:
        """Submit a tuning study (an Indexed Job; ``request["tune"]`` its study); answers like :meth:`submit`."""
        return json.loads(self.call("POST", "api/tunes", request))

    def status(self, job: str) -> dict[str, Any]:
        """The Job's state, pods, notes and, once it ended, its summary (see :func:`workbench.jobs.k8s.job_status`)."""
        return json.loads(self.call("GET", f"api/jobs/{quote(job)}"))

    def log(self, job: str, pod: str, offset: int = 0) -> bytes:
        """The pod's log from byte ``offset`` on."""
        query = urlencode({"pod": pod, "offset": offset})
        return self.call("GET", f"api/jobs/{quote(job)}/log?{query}")

    def stop(self, job: str) -> None:
        """Delete the Job (and its pods)."""
        self.call("DELETE", f"api/jobs/{quote(job)}")

    def submit_pipeline(self, request: dict[str, Any]) -> dict[str, Any]:
        """Submit a pipeline (file, notebooks, parameters, mode); returns ``{"name", "kinds", "summary", ...}``."""
        return json.loads(self.call("POST", "api/pipelines", request))

    def pipeline_status(self, name: str) -> dict[str, Any]:
        """A pipeline Workflow's phase and steps (see :func:`workbench.jobs.pipeline.argo_api.workflow_status`)."""
        return json.loads(self.call("GET", f"api/pipelines/{quote(name)}"))

    def stop_pipeline(self, name: str) -> dict[str, Any]:
        """Delete the pipeline's Workflow, CronWorkflow or WorkflowTemplate and binding called ``name``."""
        return json.loads(self.call("DELETE", f"api/pipelines/{quote(name)}"))


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "") + parts.path


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        message = json.loads(exc.read() or b"{}").get("error", "")
    except (ValueError, AttributeError):
        message = ""
    return f"{exc.code} {exc.reason}" + (f": {message}" if message else "")


def notebook_payload(notebook: str | os.PathLike[str]) -> dict[str, str]:
    """A local notebook travels as its file name and text; an absolute path that does not exist
    here is a notebook inside the image."""
    path = Path(notebook)
    if path.is_file():
        return {"name": path.name, "content": path.read_text(encoding="utf-8")}
    return {"path": str(path)}


def follow(client: GatewayClient, job: str, *, poll: float = 2.0, out: IO[str] | None = None) -> dict[str, Any]:
    """Print the Job's state changes, pod notes and logs until it ends; returns its last status."""
    out = out or sys.stdout
    last_state, noted, offsets = None, set(), {}
    while True:
        status = client.status(job)
        if status["state"] != last_state:
            out.write(f"job {job}: {status['state']}\n")
            last_state = status["state"]
        for note in status.get("notes", []):
            if note not in noted:
                out.write(note + "\n")
                noted.add(note)
        for pod in status.get("pods", []):
            if pod["phase"] not in ("Running", "Succeeded", "Failed"):
                continue
            if pod["name"] not in offsets:
                out.write(f"pod {pod['name']}: {pod['phase'].lower()}; its log follows\n")
                offsets[pod["name"]] = 0
            chunk = client.log(job, pod["name"], offsets[pod["name"]])
            offsets[pod["name"]] += len(chunk)
            out.write(chunk.decode("utf-8", errors="replace"))
        out.flush()
        if "summary" in status:
            return status
        time.sleep(poll)


def submit_and_follow(
    *,
    notebook: str,
    params: dict[str, Any],
    name: str,
    gpus: int = 0,
    profile: str | None = None,
    timeout: int | None = None,
    notify: str | None = None,
    secrets: list[str] | None = None,
    poll: float = 2.0,
) -> int:
    """Submit through the gateway of this pod and follow the Job; returns the exit status of ``workbench run``."""
    request = {
        "notebook": notebook_payload(notebook),
        "params": params,
        "name": name,
        "profile": profile,
        "gpus": gpus,
        "secrets": list(secrets or []),
        "timeout": timeout,
        "notify": notify,
    }
    return follow_submission(GatewayClient.submit, request, poll=poll)


def follow_submission(
    submit: Callable[[GatewayClient, dict[str, Any]], dict[str, Any]], request: dict[str, Any], *, poll: float = 2.0
) -> int:
    """Submit ``request`` with ``submit`` (:meth:`GatewayClient.submit` or :meth:`GatewayClient.submit_tune`)
    through the gateway of this pod and follow the Job; returns the exit status of ``workbench run``."""
    job = None
    try:
        client = GatewayClient.from_env()
        created = submit(client, request)
        job = created["name"]
        print(f"submitted {created['summary']}", flush=True)
        status = follow(client, job, poll=poll)
    except GatewayError as exc:
        print(f"job gateway: {redact(str(exc))}", file=sys.stderr)
        return EXIT_GATEWAY
    except KeyboardInterrupt:
        if job is not None:
            print(f"stopped following; job {job} keeps running until it ends or reaches its deadline", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(status["summary"], flush=True)
    return EXIT_OK if status["state"] == "succeeded" else EXIT_FAILED
