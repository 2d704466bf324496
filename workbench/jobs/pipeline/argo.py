"""Render a pipeline as Argo Workflows objects: a ``Workflow`` (run now), a ``CronWorkflow``
(calendar mode) or a ``WorkflowTemplate`` plus a ``WorkflowEventBinding`` (webhook mode).

One DAG template, one task per step; each step is a container template running the same
``workbench run`` as on a laptop, in the profile's curated image::

    workbench run /etc/workbench/job/<step>.ipynb -f /etc/workbench/job/<step>.params.yaml \\
        --name <step> --runs-dir /srv/workbench/runs --run-dir-file /tmp/workbench-run \\
        [-p NAME '{{inputs.parameters.NAME}}' ...] [--timeout S]

The notebook (outputs cleared) and its fixed parameters travel inside the object as raw
artifacts, so nothing is quoted through a shell and nothing else must exist in the cluster. A
parameter that refers to upstream runs (``${steps.train.run}``, ``${steps.train.runs}``) becomes
an Argo input parameter: every step writes its run directory to the output parameter ``run``,
and the downstream task receives ``{{tasks.<step>.outputs.parameters.run}}`` (a JSON list of them
for ``.runs``). The pod parts are those of a notebook Job (:mod:`workbench.jobs.k8s_manifest`):
the profile's resources, node selector and tolerations, the runs volume read-only with only the
owner's folder writable, Secrets through ``envFrom``, no service-account token in the notebook's
container (Argo's executor uses its own account). ``retries`` becomes ``retryStrategy``,
``timeout`` ``activeDeadlineSeconds``; GPU steps of one owner take a mutex, so they never hold more
GPUs at once than one step asks for.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...profiles import Profile, ProfileSet, load_profiles
from ...runs.layout import current_owner, owner_dirname
from ..k8s_manifest import (
    DEFAULT_DEADLINE_S,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    JOB_MOUNT,
    JOB_SERVICE_ACCOUNT,
    RUNS_MOUNT,
    STARTUP_GRACE_S,
    TTL_AFTER_FINISHED_S,
    check_name,
    container_resources,
    container_security,
    dump_yaml,
    environment,
    job_name,
    label_value,
    notebook_files,
    params_yaml,
    pick_profile,
    placement,
    pod_security,
    runs_mounts,
    secret_env,
)
from .spec import PipelineError, expansion_key, references, resolve

API_VERSION = "argoproj.io/v1alpha1"
MODES = ("run", "calendar", "webhook")
RUN_OUTPUT = "/tmp/workbench-run"  # each step writes its run directory here: the output parameter "run"
EXECUTOR_SERVICE_ACCOUNT = "workbench-argo-executor"  # Argo's wait container reports results with it
COMPONENT = "pipeline"
MAX_OBJECT_BYTES = 1_000_000  # an object stays well under etcd's request limit
ENTRYPOINT = "pipeline"


@dataclass(frozen=True, repr=False)
class ArgoObjects:
    """The Argo objects of one pipeline, in creation order; ``mode`` is ``run``, ``calendar`` or ``webhook``."""

    mode: str
    objects: tuple[dict[str, Any], ...]

    @property
    def name(self) -> str:
        return self.objects[0]["metadata"]["name"]

    @property
    def namespace(self) -> str:
        return self.objects[0]["metadata"]["namespace"]

    def to_yaml(self) -> str:
        """All objects as one multi-document YAML stream (notebooks as readable ``|`` blocks)."""
        return dump_yaml(self.objects)

    def __repr__(self) -> str:
        kinds = ", ".join(o["kind"] for o in self.objects)
        return f"ArgoObjects(name={self.name!r}, mode={self.mode!r}, kinds=[{kinds}])"


@dataclass(frozen=True)
class ArgoTarget:
    """Where the objects go and whose they are: everything a user does not choose about a step's pod."""

    owner: str
    namespace: str = "default"
    runs_pvc: str = "workbench-runs"
    service_account: str = JOB_SERVICE_ACCOUNT
    executor_service_account: str = EXECUTOR_SERVICE_ACCOUNT
    secrets: tuple[str, ...] = ()
    image: str = ""  # overrides the profiles' images (a dry run's choice; the gateway never sets it)

    def check(self) -> None:
        """Every name a valid Kubernetes name (ValueError naming the option otherwise)."""
        check_name("namespace", self.namespace, DNS_LABEL, 63, "namespace=")
        check_name("runs volume claim", self.runs_pvc, DNS_SUBDOMAIN, 253, "runs_pvc=")
        check_name("service account", self.service_account, DNS_SUBDOMAIN, 253, "service_account=")
        check_name("executor service account", self.executor_service_account, DNS_SUBDOMAIN, 253, "executor=")
        for secret in self.secrets:
            check_name("secret", secret, DNS_SUBDOMAIN, 253, "--secret")
        if any(ch.isspace() for ch in self.image):
            raise ValueError(f"image {self.image!r} is not a container image reference; pass REPO/NAME:TAG")


def render_pipeline(
    pipeline: Any,
    *,
    mode: str = "run",
    profiles: ProfileSet | str | None = None,
    owner: str | None = None,
    namespace: str = "default",
    secrets: Sequence[str] = (),
    image: str = "",
    runs_pvc: str = "workbench-runs",
    service_account: str = JOB_SERVICE_ACCOUNT,
    executor_service_account: str = EXECUTOR_SERVICE_ACCOUNT,
    step_profiles: Mapping[str, str] | None = None,
) -> ArgoObjects:
    """The Argo objects that run ``pipeline`` (a loaded :class:`~workbench.jobs.pipeline.spec.Pipeline`).

    ``mode="run"``: one ``Workflow``; ``"calendar"``: a ``CronWorkflow`` on the pipeline's
    ``schedule``; ``"webhook"``: a ``WorkflowTemplate`` and the ``WorkflowEventBinding`` that
    starts it when Argo Server's events endpoint receives the pipeline's event. Nothing is sent.
    ``step_profiles`` maps step names to the profile each runs on (the job gateway's choice for
    the user's groups); by default a step runs on its own ``profile`` or the default profile.

    Example
    -------
    >>> from pathlib import Path
    >>> from workbench.jobs.pipeline import load_pipeline
    >>> pipeline = load_pipeline(Path(__file__).parents[3] / "notebooks" / "pipeline.yaml")
    >>> objs = render_pipeline(pipeline, mode="run", owner="ana")
    >>> [t["name"] for t in objs.objects[0]["spec"]["templates"][0]["dag"]["tasks"]][-3:]
    ['stack', 'explain', 'submission']
    """
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    profile_set = profiles if isinstance(profiles, ProfileSet) else load_profiles(profiles)
    target = ArgoTarget(
        owner=owner or current_owner(),
        namespace=namespace,
        runs_pvc=runs_pvc,
        service_account=service_account,
        executor_service_account=executor_service_account,
        secrets=tuple(secrets),
        image=image.strip(),
    )
    target.check()
    name = job_name(pipeline.name)
    meta = _metadata(name, pipeline, target)
    spec = workflow_spec(pipeline, profile_set, target, step_profiles or {}, mode)
    if mode == "run":
        objects = [{"apiVersion": API_VERSION, "kind": "Workflow", "metadata": meta, "spec": spec}]
    elif mode == "calendar":
        objects = [_cron_workflow(pipeline, meta, spec)]
    else:
        objects = _webhook_objects(pipeline, meta, spec)
    size = len(json.dumps(objects))
    if size > MAX_OBJECT_BYTES:
        raise ValueError(
            f"the pipeline's objects take {size:,} bytes, over {MAX_OBJECT_BYTES:,}: its notebooks travel "
            "inside them; move large data out of the notebooks"
        )
    return ArgoObjects(mode=mode, objects=tuple(copy.deepcopy(o) for o in objects))


def _metadata(name: str, pipeline: Any, target: ArgoTarget) -> dict[str, Any]:
    labels = {
        "app.kubernetes.io/name": "workbench",
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": "workbench",
        "workbench/pipeline": label_value(pipeline.name),
        "workbench/owner": label_value(target.owner),
    }
    annotations = {"workbench/pipeline": pipeline.name, "workbench/owner": target.owner}
    if getattr(pipeline, "digest", None):
        annotations["workbench/pipeline-digest"] = str(pipeline.digest)
    return {"name": name, "namespace": target.namespace, "labels": labels, "annotations": annotations}


def workflow_spec(
    pipeline: Any, profiles: ProfileSet, target: ArgoTarget, step_profiles: Mapping[str, str], mode: str = "run"
) -> dict[str, Any]:
    """The ``WorkflowSpec``: the DAG, one container template per step, the runs volume, no token.

    In webhook mode the pipeline parameters named in ``webhook.parameters`` become workflow
    parameters (default: the pipeline's value) that reach the notebooks as ``-p``.
    """
    event = _event_params(pipeline) if mode == "webhook" else {}
    groups: dict[str, list[str]] = {}
    for step in pipeline.steps:
        groups.setdefault(step.group, []).append(step.name)
    tasks, templates = [], []
    for step in pipeline.steps:
        try:
            chosen, n_gpus = pick_profile(profiles, step_profiles.get(step.name) or step.profile, 0)
        except ValueError as exc:
            raise ValueError(f"step {step.name!r}: {exc}") from None
        refs = _reference_params(step, groups)
        tasks.append(_task(step, refs, groups))
        templates.append(_step_template(step, chosen, n_gpus, target, sorted(refs), event.get(step.name, {})))
    spec: dict[str, Any] = {
        "entrypoint": ENTRYPOINT,
        "serviceAccountName": target.service_account,
        "automountServiceAccountToken": False,
        "executor": {"serviceAccountName": target.executor_service_account},
        "securityContext": pod_security(),
        "volumes": [{"name": "runs", "persistentVolumeClaim": {"claimName": target.runs_pvc}}],
        "activeDeadlineSeconds": _pipeline_deadline(templates),
        "ttlStrategy": {"secondsAfterCompletion": TTL_AFTER_FINISHED_S},
        "podGC": {"strategy": "OnPodSuccess"},
        "templates": [{"name": ENTRYPOINT, "dag": {"tasks": tasks}}, *templates],
    }
    if event:
        names = pipeline.webhook.parameters
        # the kubelet expands $(VAR) in a container's arguments: every "$" of a value is doubled
        values = {n: _text(pipeline.parameters[n]).replace("$", "$$") for n in names}
        spec["arguments"] = {"parameters": [{"name": n, "value": v} for n, v in values.items()]}
    return spec


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _event_params(pipeline: Any) -> dict[str, dict[str, str]]:
    """Per step, the parameters written as ``${params.P}`` in the file for a webhook parameter ``P``,
    as Argo expressions over the workflow parameter ``P`` (the file is read again: loading replaced them)."""
    from ..._yaml import load_yaml

    names = set(pipeline.webhook.parameters if pipeline.webhook else ())
    if not names:
        return {}
    if pipeline.source is None:
        raise ValueError("webhook parameters need the pipeline file: load it with load_pipeline(path)")
    raw = load_yaml(Path(pipeline.source).read_text(encoding="utf-8"))["steps"]
    out: dict[str, dict[str, str]] = {}
    for step in pipeline.steps:
        for key, value in _written(raw[step.group], step.key).items():
            refs = references(value)
            if not isinstance(value, str) or not any(r.kind == "params" and r.name in names for r in refs):
                continue
            if any(r.kind != "params" for r in refs) or key in step.foreach:
                raise ValueError(
                    f"step {step.name!r}, parameter {key!r}: a webhook parameter must not be mixed with step references"
                )
            text = value
            for r in refs:
                sub = (
                    "{{workflow.parameters." + r.name + "}}" if r.name in names else _text(pipeline.parameters[r.name])
                )
                text = text.replace(r.text, sub)
            out.setdefault(step.name, {})[str(key)] = text.replace("$", "$$")
    return out


def _written(raw_step: dict[str, Any], key: str | None) -> dict[str, Any]:
    """A step's parameters as the file writes them: ``parameters``, then its expansion's ``each`` entry."""
    each = {k if isinstance(k, str) else expansion_key({"k": k}): v for k, v in (raw_step.get("each") or {}).items()}
    return {**(raw_step.get("parameters") or {}), **(each.get(key) or {} if key is not None else {})}


def _pipeline_deadline(templates: list[dict[str, Any]]) -> int:
    """Every attempt of every step one after another: the pipeline ends even if nothing else stops it."""
    total = sum(t["activeDeadlineSeconds"] * (1 + t.get("retryStrategy", {}).get("limit", 0)) for t in templates)
    return max(DEFAULT_DEADLINE_S, total)


def _output(task: str) -> str:
    return "{{tasks." + task + ".outputs.parameters.run}}"


def _reference_params(step: Any, groups: Mapping[str, list[str]]) -> dict[str, str]:
    """The step's parameters that refer to upstream runs, as Argo expressions over the tasks' outputs:
    ``${steps.G.run}`` the task's output, ``${steps.G.runs}`` a JSON list of the group's outputs."""
    keys = [k for k, v in step.parameters.items() if any(r.kind == "steps" for r in references(v))]
    if not keys:
        return {}
    runs = {g: [_output(t) for t in names] for g, names in groups.items()}
    runs |= {t: [_output(t)] for names in groups.values() for t in names}
    try:
        resolved = resolve(step, runs)
    except PipelineError as exc:
        raise ValueError(str(exc)) from None
    # the kubelet expands $(VAR) in a container's arguments: "$$" keeps a literal "$"
    return {
        k: (v if isinstance(v, str) else json.dumps(v)).replace("$", "$$") for k, v in ((k, resolved[k]) for k in keys)
    }


def _task(step: Any, refs: Mapping[str, str], groups: Mapping[str, list[str]]) -> dict[str, Any]:
    """The DAG task: after the steps it names (a fanned-out group: all of its steps) and those it reads."""
    deps: set[str] = set()
    for name in step.after:
        deps.update(groups.get(name, [name]))
    for value in refs.values():
        deps.update(re.findall(r"\{\{tasks\.([a-z0-9-]+)\.outputs", value))
    deps.discard(step.name)
    task: dict[str, Any] = {"name": step.name, "template": step.name}
    if deps:
        task["dependencies"] = sorted(deps)
    if refs:
        task["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in sorted(refs.items())]}
    return task


def _step_template(
    step: Any, chosen: Profile, n_gpus: int, target: ArgoTarget, ref_keys: list[str], event: Mapping[str, str]
) -> dict[str, Any]:
    """A container template: ``workbench run`` of the step's notebook on the step's profile."""
    _, nb_files = notebook_files(step.notebook)
    if not nb_files:
        raise ValueError(
            f"step {step.name!r}: notebook {str(step.notebook)!r} not found; pipelines ship their notebooks"
        )
    nb_text = next(iter(nb_files.values()))
    static = {k: v for k, v in step.parameters.items() if k not in ref_keys and k not in event}
    nb_path, params_path = f"{JOB_MOUNT}/{step.name}.ipynb", f"{JOB_MOUNT}/{step.name}.params.yaml"
    command = ["workbench", "run", nb_path, "-f", params_path, "--name", step.name.replace("$", "$$")]
    command += ["--runs-dir", RUNS_MOUNT, "--run-dir-file", RUN_OUTPUT]
    for key in ref_keys:
        command += ["-p", key, "{{inputs.parameters." + key + "}}"]
    for key, value in sorted(event.items()):  # set by the event's payload, checked against the notebook in the pod
        command += ["-p", key, value]
    timeout = math.ceil(step.timeout) if step.timeout else None
    if timeout:
        command += ["--timeout", str(timeout)]
    container: dict[str, Any] = {  # Argo names it "main"
        "image": target.image or chosen.image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "env": environment(chosen, target.owner),
        "resources": container_resources(chosen, n_gpus),
        "securityContext": container_security(),
        "volumeMounts": runs_mounts(owner_dirname(target.owner)),
    }
    if target.secrets:
        container["envFrom"] = secret_env(target.secrets)
    template: dict[str, Any] = {
        "name": step.name,
        "metadata": {"labels": {"workbench/step": step.name, "workbench/profile": chosen.slug}},
        "inputs": {
            "artifacts": [
                {"name": "notebook", "path": nb_path, "raw": {"data": nb_text}},
                {"name": "parameters", "path": params_path, "raw": {"data": params_yaml(static)}},
            ]
        },
        "outputs": {"parameters": [{"name": "run", "valueFrom": {"path": RUN_OUTPUT}}]},
        "container": container,
        "activeDeadlineSeconds": timeout + STARTUP_GRACE_S if timeout else DEFAULT_DEADLINE_S,
        **placement(chosen),
    }
    if ref_keys:
        template["inputs"]["parameters"] = [{"name": k} for k in ref_keys]
    if step.retries:
        template["retryStrategy"] = {"limit": int(step.retries), "retryPolicy": "Always"}
    if n_gpus:
        template["synchronization"] = {"mutexes": [{"name": f"workbench-gpu-{label_value(target.owner)}"}]}
    return template


def _cron_workflow(pipeline: Any, meta: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    if not pipeline.schedule:
        raise ValueError(f"pipeline {pipeline.name!r} has no schedule: add `schedule: <cron>` for calendar mode")
    return {
        "apiVersion": API_VERSION,
        "kind": "CronWorkflow",
        "metadata": meta,
        "spec": {
            "schedules": [pipeline.schedule],
            "timezone": getattr(pipeline, "timezone", None) or "UTC",
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "workflowMetadata": _workflow_metadata(meta),
            "workflowSpec": spec,
        },
    }


def _workflow_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """Labels and annotations every Workflow started from a CronWorkflow or a template carries (its owner)."""
    return {"labels": dict(meta["labels"]), "annotations": dict(meta["annotations"])}


def _webhook_objects(pipeline: Any, meta: dict[str, Any], spec: dict[str, Any]) -> list[dict[str, Any]]:
    if not pipeline.webhook or not pipeline.webhook.enabled:
        raise ValueError(f"pipeline {pipeline.name!r} has no webhook: add `webhook: true` for webhook mode")
    template = {
        "apiVersion": API_VERSION,
        "kind": "WorkflowTemplate",
        "metadata": meta,
        "spec": {**spec, "workflowMetadata": _workflow_metadata(meta)},
    }
    binding = {
        "apiVersion": API_VERSION,
        "kind": "WorkflowEventBinding",
        "metadata": meta,
        "spec": {
            "event": {"selector": f"discriminator == {json.dumps(meta['name'])}"},
            "submit": {"workflowTemplateRef": {"name": meta["name"]}, "metadata": _workflow_metadata(meta)},
        },
    }
    arguments = [
        {"name": a["name"], "valueFrom": {"event": event_expression(a["name"], a["value"])}}
        for a in spec.get("arguments", {}).get("parameters", [])
    ]
    if arguments:
        binding["spec"]["submit"]["arguments"] = {"parameters": arguments}
    return [template, binding]


def event_expression(name: str, default: str) -> str:
    """The expression taking parameter ``name`` from an event's payload (``$`` doubled, as the kubelet
    would expand ``$(VAR)``), or ``default`` (already escaped) when the payload leaves it out.

    >>> event_expression("seed", "0")
    'payload.parameters?.seed != nil ? replace(string(payload.parameters.seed), "$", "$$") : "0"'
    """
    payload = f"payload.parameters.{name}"
    return f'payload.parameters?.{name} != nil ? replace(string({payload}), "$", "$$") : {json.dumps(default)}'


def helm_values(pipeline: Any, mode: str, profiles: ProfileSet | str | None = None) -> dict[str, Any]:
    """A values file for the ``helm/workbench`` chart that installs ``pipeline`` (one per application).

    ``mode`` is ``calendar`` or ``webhook``. The steps run as owner ``pipeline-<name>`` (their runs
    go to that folder); the chart sets the namespace, service accounts and runs volume claim.
    """
    if mode not in ("calendar", "webhook"):
        raise ValueError(f"the chart installs calendar or webhook pipelines, not mode {mode!r}")
    key = re.sub(r"[^a-z0-9]+", "-", pipeline.name.lower()).strip("-")[:40].strip("-") or "pipeline"
    objects = render_pipeline(pipeline, mode=mode, profiles=profiles, owner=f"pipeline-{key}")
    first = objects.objects[0]["spec"]
    entry: dict[str, Any] = {"mode": mode}
    if getattr(pipeline, "description", ""):
        entry["description"] = pipeline.description
    if mode == "calendar":
        entry |= {
            "schedule": first["schedules"][0],
            "timezone": first["timezone"],
            "workflowSpec": first["workflowSpec"],
        }
    else:
        entry["workflowSpec"] = {k: v for k, v in first.items() if k != "workflowMetadata"}
    return {
        "argo": {"enabled": True, "executorServiceAccountName": EXECUTOR_SERVICE_ACCOUNT},
        "pipelines": {key: entry},
    }
