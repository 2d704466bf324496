"""The job gateway's pipeline routes: users submit a pipeline file and its notebooks, never an Argo object.

- ``POST api/pipelines`` (JSON: ``pipeline`` {name, content}, ``notebooks`` {relative path:
  content}, ``parameters`` (overrides, as ``-p``), ``mode`` (run, calendar, webhook), ``secrets``):
  the gateway loads and validates the pipeline itself, chooses each step's profile for the user's
  groups (403 outside them), checks the Secrets against each profile's allow-list and the GPUs
  against ``max_gpus_per_user``, renders the Argo objects from the one template
  (:func:`workbench.jobs.pipeline.argo.render_pipeline`: the owner's runs folder alone writable,
  the job runner's service account without its token) and creates them. 201 with their name.
- ``GET api/pipelines/<name>``: the Workflow's phase and per-step states (owner only; 404 otherwise).
- ``DELETE api/pipelines/<name>``: stop and delete the owner's Workflow, CronWorkflow or
  WorkflowTemplate with its WorkflowEventBinding of that name.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from ...jobs.k8s_manifest import pick_profile
from ...jobs.pipeline import argo_api
from ...jobs.pipeline.argo import MODES, ArgoObjects, render_pipeline
from ...profiles import Profile
from .app import Gateway, _Handler
from .parsing import Refused, bad, decode_json, json_object, name_list
from .policy import check_gpu_cap, check_secrets, choose_profile

MAX_NOTEBOOKS = 64
_FIELDS = {"pipeline", "notebooks", "parameters", "mode", "secrets"}
_DELETE_ORDER = ("Workflow", "CronWorkflow", "WorkflowEventBinding", "WorkflowTemplate")


@dataclass(frozen=True)
class PipelineRequest:
    """A pipeline submission: the file, its notebooks, overrides and the mode; no pod spec, no owner."""

    file_name: str
    content: str
    notebooks: dict[str, str]
    parameters: dict[str, Any] = field(default_factory=dict)
    mode: str = "run"
    secrets: tuple[str, ...] = ()


def _relative(path: Any) -> str:
    """A notebook's path relative to the pipeline file: no absolute path, no '..', a .ipynb file."""
    if not isinstance(path, str) or not path.endswith(".ipynb"):
        raise bad(f"notebook {path!r} must be a relative path ending in .ipynb")
    parts = PurePosixPath(path).parts
    if path.startswith("/") or "\\" in path or ".." in parts or not parts:
        raise bad(f"notebook path {path!r} must stay below the pipeline file's folder (no '/', '..' at its start)")
    return str(PurePosixPath(*parts))


def parse_pipeline_request(body: Any) -> PipelineRequest:
    """A :class:`PipelineRequest` from the JSON body, refusing unknown fields and wrong types (400)."""
    body = json_object(body, _FIELDS, "pipeline request")
    pipeline = body.get("pipeline")
    if not isinstance(pipeline, Mapping) or set(pipeline) != {"name", "content"}:
        raise bad('pipeline must be {"name": "<file>.yaml", "content": "..."}')
    name, content = pipeline["name"], pipeline["content"]
    if not isinstance(name, str) or not name.endswith((".yaml", ".yml")) or "/" in name or name.startswith("."):
        raise bad(f"pipeline name {name!r} must be a file name ending in .yaml")
    if not isinstance(content, str):
        raise bad("pipeline content must be the file's text")
    notebooks = body.get("notebooks") or {}
    if not isinstance(notebooks, Mapping) or len(notebooks) > MAX_NOTEBOOKS:
        raise bad(f"notebooks must be an object of at most {MAX_NOTEBOOKS} relative paths to notebook texts")
    shipped = {_relative(k): v for k, v in notebooks.items()}
    if not all(isinstance(v, str) for v in shipped.values()):
        raise bad("every notebook must be the notebook file's text")
    parameters = body.get("parameters") or {}
    if not isinstance(parameters, Mapping) or not all(isinstance(k, str) for k in parameters):
        raise bad("parameters must be an object of pipeline parameter names to values")
    mode = body.get("mode") or "run"
    if mode not in MODES:
        raise bad(f"mode must be one of {list(MODES)}, not {mode!r}")
    secrets = name_list(body.get("secrets"), "secrets must be a list of Secret names")
    return PipelineRequest(name, content, shipped, dict(parameters), mode, secrets)


def load_shipped(req: PipelineRequest, folder: Path) -> Any:
    """Write the shipped files below ``folder`` and load the pipeline from there; every notebook it
    names must be one of them (400 otherwise)."""
    from ...jobs.pipeline.spec import load_pipeline

    for rel, text in req.notebooks.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    source = folder / req.file_name
    source.write_text(req.content, encoding="utf-8")
    try:
        pipeline = load_pipeline(source, {k: str(v) for k, v in req.parameters.items()})
    except (ValueError, TypeError, KeyError, OSError) as exc:
        raise bad(f"{req.file_name}: {exc}") from None
    root = folder.resolve()
    for step in pipeline.steps:
        if not Path(step.notebook).resolve().is_relative_to(root):
            raise bad(f"step {step.name!r}: notebook {str(step.notebook)!r} is not one of the notebooks sent")
    return pipeline


def step_profiles(
    gw: Gateway, pipeline: Any, groups: list[str], secrets: tuple[str, ...], user: str | None = None
) -> dict[str, Profile]:
    """Each step's profile, open to ``groups`` (403), with ``secrets`` on its allow-list (403)."""
    chosen = {}
    for step in pipeline.steps:
        try:
            profile = choose_profile(gw.profiles, step.profile, 0, groups)
        except Refused as exc:
            raise Refused(exc.status, f"step {step.name!r}: {exc.reason}") from None
        check_secrets(profile, secrets, user)
        chosen[step.name] = profile
    return chosen


class PipelinesHandler(_Handler):
    async def post(self) -> None:
        await self._run(self._submit)

    async def _submit(self) -> None:
        req = parse_pipeline_request(decode_json(self.request.body))
        gw = self.gateway
        async with gw.lock(self.user):
            model = await gw.hub_user(self.user)
            groups = list(model.get("groups") or [])
            with tempfile.TemporaryDirectory(prefix="pipeline-gateway-") as tmp:
                pipeline = load_shipped(req, Path(tmp))
                profiles = step_profiles(gw, pipeline, groups, req.secrets, self.user)
                wanted = 0
                for profile in profiles.values():
                    try:
                        wanted = max(wanted, pick_profile(gw.profiles, profile.slug, 0)[1])
                    except ValueError as exc:
                        raise Refused(403, str(exc)) from None
                if wanted:
                    resource = gw.profiles.profiles[0].gpu_resource
                    check_gpu_cap(gw.profiles, wanted, await gw.held_gpus(self.user, model, groups, resource))
                objects = self._render(pipeline, req, {k: p.slug for k, p in profiles.items()})
            await gw.kube(argo_api.create, list(objects.objects), gw.api)
        self.set_status(201)
        kinds = [o["kind"] for o in objects.objects]
        self.finish(
            {
                "name": objects.name,
                "namespace": objects.namespace,
                "mode": objects.mode,
                "kinds": kinds,
                "steps": {k: p.slug for k, p in profiles.items()},
                "summary": f"{' + '.join(kinds)} {objects.namespace}/{objects.name}: {len(profiles)} steps",
            }
        )

    def _render(self, pipeline: Any, req: PipelineRequest, slugs: dict[str, str]) -> ArgoObjects:
        gw = self.gateway
        try:
            return render_pipeline(
                pipeline,
                mode=req.mode,
                profiles=gw.profiles,
                owner=self.user,
                namespace=gw.namespace,
                secrets=req.secrets,
                runs_pvc=gw.runs_pvc,
                service_account=gw.job_service_account,
                executor_service_account=gw.executor_service_account,
                step_profiles=slugs,
            )
        except ValueError as exc:
            raise Refused(400, str(exc)) from None


class PipelineHandler(_Handler):
    async def get(self, name: str) -> None:
        await self._run(self._status, name)

    async def delete(self, name: str) -> None:
        await self._run(self._delete, name)

    async def _own(self, kind: str, name: str) -> dict[str, Any] | None:
        gw = self.gateway
        obj = await gw.kube(argo_api.read, kind, name, gw.namespace, gw.api)
        return obj if argo_api.owner_of(obj) == self.user else None

    async def _status(self, name: str) -> None:
        workflow = await self._own("Workflow", name)
        if workflow is None:
            raise Refused(404, f"you have no pipeline run {name!r} in namespace {self.gateway.namespace!r}")
        self.finish(argo_api.workflow_status(workflow))

    async def _delete(self, name: str) -> None:
        gw = self.gateway
        deleted = []
        for kind in _DELETE_ORDER:
            if await self._own(kind, name) is not None:
                await gw.kube(argo_api.delete, kind, name, gw.namespace, gw.api)
                deleted.append(kind)
        if not deleted:
            raise Refused(404, f"you have no pipeline {name!r} in namespace {gw.namespace!r}")
        self.set_status(202)
        self.finish({"name": name, "deleted": deleted})


def pipeline_routes(prefix: str, kwargs: dict[str, Any]) -> list[tuple[str, type, dict[str, Any]]]:
    """The routes above, below the service ``prefix``."""
    name = r"api/pipelines/([a-z0-9](?:[-a-z0-9]*[a-z0-9])?)"
    return [(prefix + "api/pipelines", PipelinesHandler, kwargs), (prefix + name, PipelineHandler, kwargs)]
