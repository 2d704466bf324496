"""The job gateway: a hub service that creates notebook Jobs for users whose pods hold no Kubernetes rights.

Routes, below the service prefix (``/services/job-gateway/``), each authenticated by a hub API
token (``Authorization: token ...``) that carries :data:`~.policy.SUBMIT_SCOPE`:

- ``POST api/jobs``: submit (JSON: notebook, params, name, profile, gpus, secrets, timeout, notify);
  201 with the Job's name. Checked first: the profile is open to the user's groups, every secret is
  on the profile's allow-list, the GPUs fit ``max_gpus_per_user`` counted over the user's servers
  (hub API) and running Jobs (Kubernetes API). The Job comes from the one template
  (:func:`workbench.jobs.k8s_manifest.render_job`) with the profile's image, the job runner's
  service account and the owner's runs folder.
- ``POST api/pipelines``, ``GET``/``DELETE api/pipelines/<name>``: pipelines on Argo Workflows,
  from a pipeline file and its notebooks (:mod:`.pipelines`).
- ``GET api/jobs/<name>``: state, pods, notes, summary; ``GET api/jobs/<name>/log?pod=&offset=``:
  the log of one of its pods; ``DELETE api/jobs/<name>``: stop it. Only for the Job's owner
  (another user's Job is 404, as if it did not exist).

Errors are JSON ``{"error": "..."}`` with 400 (bad request), 403 (not allowed), 404, 413 (a body
over :data:`.parsing.MAX_BODY_BYTES`, refused before the token is checked), 502 (the cluster refused).

``POST api/tunes`` submits a tuning study the same way, as an Indexed Job (:mod:`.tunes`).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tornado import web

from ..._redact import redact
from ...jobs import k8s
from ...jobs.k8s_manifest import JOB_SERVICE_ACCOUNT, pick_profile, render_job
from ...jobs.pipeline.argo import EXECUTOR_SERVICE_ACCOUNT
from ...profiles import ProfileSet
from ..services import hub_user_model
from .parsing import SERVER_BODY_CAP, Refused, check_size, decode_json
from .policy import (
    SUBMIT_SCOPE,
    JobRequest,
    check_gpu_cap,
    check_secrets,
    choose_profile,
    parse_request,
    server_gpus,
)

JOB_SELECTOR = "app.kubernetes.io/component=notebook-job,app.kubernetes.io/managed-by=workbench"


@dataclass
class Gateway:
    """What the gateway works with: the profiles, where Jobs go, and its two clients.

    ``api`` is a Kubernetes ``ApiClient`` with the gateway's own service account; ``hub_auth`` a
    ``jupyterhub.services.auth.HubAuth`` (its ``api_url`` and ``api_token`` are the service's).
    """

    profiles: ProfileSet
    namespace: str
    api: Any
    hub_auth: Any
    runs_pvc: str = "workbench-runs"
    job_service_account: str = JOB_SERVICE_ACCOUNT
    executor_service_account: str = EXECUTOR_SERVICE_ACCOUNT
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def lock(self, user: str) -> asyncio.Lock:
        """One submission at a time per user, so two requests cannot both fit under the GPU cap."""
        return self._locks.setdefault(user, asyncio.Lock())

    async def hub_user(self, name: str) -> dict[str, Any]:
        """The user's model from the hub (groups, servers with their ``user_options``)."""
        return await hub_user_model(self.hub_auth, name, Refused)

    async def held_gpus(self, user: str, model: dict[str, Any], groups: list[str], resource: str) -> dict[str, int]:
        """GPUs the user's servers (from their hub ``model``) and running Jobs hold now, by where they are held."""
        held = server_gpus(model.get("servers") or {}, self.profiles, groups)
        for job in await self.kube(k8s.owner_jobs, user, self.namespace, self.api, JOB_SELECTOR):
            gpus = job_gpus(job, resource)
            if gpus and k8s.job_active(job):
                held[f"job {job.metadata.name!r}"] = gpus
        return held

    async def kube(self, fn: Any, *args: Any) -> Any:
        """A blocking Kubernetes call off the event loop; cluster errors become 502."""
        try:
            return await asyncio.to_thread(fn, *args)
        except k8s.KubernetesError as exc:
            raise Refused(502, f"kubernetes: {redact(str(exc))}") from None


def job_gpus(job: Any, resource: str) -> int:
    """GPUs a Job's pod asks for."""
    containers = job.spec.template.spec.containers if job.spec and job.spec.template.spec else []
    per_pod = sum(int((c.resources.limits or {}).get(resource, 0)) for c in containers if c.resources)
    pods = (job.spec.parallelism if job.spec else None) or 1  # an Indexed Job's pods run side by side
    return per_pod * pods


class _Handler(web.RequestHandler):
    def initialize(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.user = ""

    def prepare(self) -> None:
        try:  # before asking the hub about the token: an oversized body costs the gateway nothing more
            check_size(self.request.body)
        except Refused as exc:
            self._refuse(exc)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        reason = exc.reason if isinstance(exc, Refused) else self._reason
        self.finish({"error": reason})

    def _refuse(self, exc: Refused) -> None:
        self.set_status(exc.status)
        self.finish({"error": exc.reason})

    async def _authenticate(self) -> None:
        match = self.gateway.hub_auth.auth_header_pat.match(self.request.headers.get("Authorization", ""))
        if not match:
            raise Refused(403, "no hub token: send 'Authorization: token <your $JUPYTERHUB_API_TOKEN>'")
        model = await self.gateway.hub_auth.user_for_token(match.group(1), sync=False)
        if not model or model.get("kind", "user") != "user" or not model.get("name"):
            raise Refused(403, "the hub does not accept this token (expired, revoked, or not a user's token)")
        if SUBMIT_SCOPE not in (model.get("scopes") or []):
            raise Refused(
                403,
                f"this token lacks the {SUBMIT_SCOPE} scope; use the token of your notebook server "
                "($JUPYTERHUB_API_TOKEN) or request a token with that scope",
            )
        self.user = model["name"]

    async def _own_job(self, name: str) -> Any:
        """Job ``name`` if it is a notebook Job of this user; 404 otherwise."""
        gw = self.gateway
        try:
            job = await asyncio.to_thread(k8s.read_job, name, gw.namespace, gw.api)
        except k8s.KubernetesError as exc:
            if exc.status != 404:
                raise Refused(502, f"kubernetes: {redact(str(exc))}") from None
            job = None
        meta = job.metadata if job is not None else None
        labels, notes = (meta.labels or {}, meta.annotations or {}) if meta else ({}, {})
        if (
            not meta
            or labels.get("app.kubernetes.io/component") != "notebook-job"
            or notes.get("workbench/owner") != self.user
        ):
            raise Refused(404, f"you have no job {name!r} in namespace {gw.namespace!r}")
        return job

    async def _run(self, action: Any, *args: Any) -> None:
        try:
            await self._authenticate()
            await action(*args)
        except Refused as exc:
            self._refuse(exc)


class JobsHandler(_Handler):
    async def post(self) -> None:
        await self._run(self._submit)

    async def _submit(self) -> None:
        req = self.parse(decode_json(self.request.body))
        gw = self.gateway
        async with gw.lock(self.user):
            model = await gw.hub_user(self.user)
            groups = list(model.get("groups") or [])
            profile = choose_profile(gw.profiles, req.profile, req.gpus, groups)
            check_secrets(profile, self.secrets(req), self.user)
            try:
                _, wanted = pick_profile(gw.profiles, profile.slug, req.gpus)
            except ValueError as exc:
                raise Refused(400, str(exc)) from None
            wanted *= self.pods(req)
            check_gpu_cap(gw.profiles, wanted, await gw.held_gpus(self.user, model, groups, profile.gpu_resource))
            manifests = self.render(req, profile.slug)
            await gw.kube(k8s.submit, manifests, gw.api)
        container = manifests.job["spec"]["template"]["spec"]["containers"][0]
        summary = (
            f"job {manifests.namespace}/{manifests.name} on profile {profile.slug} "
            f"(image {container['image']}, limits {json.dumps(container['resources']['limits'])})"
        )
        self.set_status(201)
        self.finish(
            {
                "name": manifests.name,
                "namespace": manifests.namespace,
                "profile": profile.slug,
                "gpus": wanted,
                "summary": summary,
            }
        )

    def parse(self, body: Any) -> JobRequest:
        """The submission from the request body (400 when malformed)."""
        return parse_request(body)

    def secrets(self, req: JobRequest) -> tuple[str, ...]:
        """Every Secret the Job's pods receive (each must be on the profile's allow-list)."""
        return req.secrets

    def pods(self, req: JobRequest) -> int:
        """Pods the Job runs at once (its GPUs count that many times)."""
        return 1

    def render(self, req: JobRequest, slug: str) -> Any:
        """The Job's manifests from the fixed template."""
        return _render(self.gateway, req, slug, self.user)


def _render(gw: Gateway, req: JobRequest, slug: str, owner: str, render: Any = render_job) -> Any:
    """The Job from the fixed template; the user's choices are only its parameters."""
    with tempfile.TemporaryDirectory(prefix="job-gateway-") as tmp:
        notebook = req.notebook_path
        if req.notebook_content:
            notebook = str(Path(tmp) / req.notebook_name)
            Path(notebook).write_text(req.notebook_content, encoding="utf-8")
        try:
            return render(
                notebook=notebook,
                params=req.params,
                name=req.name,
                image="",
                gpus=req.gpus,
                profile=slug,
                namespace=gw.namespace,
                timeout=req.timeout,
                notify=req.notify,
                runs_pvc=gw.runs_pvc,
                secret=list(req.secrets),
                profiles=gw.profiles,
                owner=owner,
                service_account=gw.job_service_account,
            )
        except ValueError as exc:
            raise Refused(400, str(exc)) from None


class JobHandler(_Handler):
    async def get(self, name: str) -> None:
        await self._run(self._job_status, name)

    async def delete(self, name: str) -> None:
        await self._run(self._stop_job, name)

    async def _job_status(self, name: str) -> None:
        gw = self.gateway
        job = await self._own_job(name)
        pods = await gw.kube(k8s.job_pods, name, gw.namespace, gw.api)
        self.finish(k8s.job_status(job, pods))

    async def _stop_job(self, name: str) -> None:
        gw = self.gateway
        await self._own_job(name)
        await gw.kube(k8s.delete_job, name, gw.namespace, gw.api)
        self.set_status(202)
        self.finish({"name": name, "state": "stopping"})


class LogHandler(_Handler):
    async def get(self, name: str) -> None:
        await self._run(self._read_log, name)

    async def _read_log(self, name: str) -> None:
        gw = self.gateway
        await self._own_job(name)
        pod = self.get_argument("pod", "")
        try:
            offset = max(0, int(self.get_argument("offset", "0")))
        except ValueError:
            raise Refused(400, "offset must be a whole number of bytes") from None
        pods = {p.metadata.name for p in await gw.kube(k8s.job_pods, name, gw.namespace, gw.api)}
        if pod not in pods:
            raise Refused(404, f"job {name!r} has no pod {pod!r}; its pods are {sorted(pods)}")
        data = await gw.kube(k8s.pod_log, pod, gw.namespace, gw.api)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(data[offset:])


from .tunes import TunesHandler  # noqa: E402 - it builds on JobsHandler above


def make_app(gateway: Gateway, prefix: str = "/services/job-gateway/") -> web.Application:
    """The tornado application serving the gateway's routes below ``prefix``."""
    from .pipelines import pipeline_routes

    prefix = "/" + prefix.strip("/") + "/"
    kwargs = {"gateway": gateway}
    job = r"api/jobs/([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)"
    return web.Application(
        [
            (prefix + "api/jobs", JobsHandler, kwargs),
            (prefix + "api/tunes", TunesHandler, kwargs),
            (prefix + job + "/log", LogHandler, kwargs),
            (prefix + job, JobHandler, kwargs),
            *pipeline_routes(prefix, kwargs),
        ]
    )


def listen(app: web.Application, port: int, address: str) -> Any:
    """Serve ``app`` on ``address:port``: a body over :data:`.parsing.MAX_BODY_BYTES` is refused with
    a sentence (413), one over :data:`.parsing.SERVER_BODY_CAP` dropped unread. Returns the server."""
    return app.listen(port, address=address, max_body_size=SERVER_BODY_CAP)
