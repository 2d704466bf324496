"""The Kubernetes calls of Argo pipelines (custom objects of ``argoproj.io/v1alpha1``), made by
the job gateway with its own service account, and the status of a Workflow read from its nodes.

:func:`create` creates the rendered objects in order (deleting those already made when one is
refused), :func:`read` and :func:`delete` act on one object by kind and name, :func:`owner_of`
tells whose object it is, :func:`workflow_status` turns a Workflow's ``status.nodes`` into the
per-step states, retries and failure messages that ``workbench pipeline run --backend argo`` prints.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..k8s import KubernetesError, api_call
from .argo import COMPONENT

GROUP, VERSION = "argoproj.io", "v1alpha1"
PLURALS = {
    "Workflow": "workflows",
    "CronWorkflow": "cronworkflows",
    "WorkflowTemplate": "workflowtemplates",
    "WorkflowEventBinding": "workfloweventbindings",
}
FINISHED = ("Succeeded", "Failed", "Error")
_STEP_NODES = ("Pod", "Retry", "Skipped", "Omitted")


def _custom(api: Any) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(api)


def create(objects: Sequence[Mapping[str, Any]], api: Any) -> list[dict[str, Any]]:
    """Create ``objects`` in order; if one is refused, those already created are deleted again."""
    made: list[dict[str, Any]] = []
    try:
        for obj in objects:
            kind, ns, name = obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"]
            with api_call(api, f"create {kind} {name}", ns):
                made.append(_custom(api).create_namespaced_custom_object(GROUP, VERSION, ns, PLURALS[kind], dict(obj)))
    except KubernetesError:
        for obj in made:
            with contextlib.suppress(KubernetesError):
                delete(obj["kind"], obj["metadata"]["name"], obj["metadata"]["namespace"], api)
        raise
    return made


def read(kind: str, name: str, namespace: str, api: Any) -> dict[str, Any] | None:
    """The object, or None when there is none by that name."""
    try:
        with api_call(api, f"read {kind} {name}", namespace):
            return _custom(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURALS[kind], name)
    except KubernetesError as exc:
        if exc.status == 404:
            return None
        raise


def delete(kind: str, name: str, namespace: str, api: Any) -> None:
    """Delete one object (a Workflow's pods go with it)."""
    with api_call(api, f"delete {kind} {name}", namespace):
        _custom(api).delete_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURALS[kind], name, propagation_policy="Background"
        )


def owner_of(obj: Mapping[str, Any] | None) -> str | None:
    """The owner of a pipeline object made by workbench; None for anything else."""
    meta = (obj or {}).get("metadata") or {}
    if (meta.get("labels") or {}).get("app.kubernetes.io/component") != COMPONENT:
        return None
    return (meta.get("annotations") or {}).get("workbench/owner")


def _step_nodes(nodes: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """One entry per step: its Retry node when it has one, else its Pod (or Skipped/Omitted) node."""
    steps: dict[str, dict[str, Any]] = {}
    for node in nodes.values():
        name = node.get("displayName") or ""
        if node.get("type") not in _STEP_NODES or "(" in name:
            continue  # "(0)", "(1)": attempts, counted under their Retry node
        if name not in steps or node.get("type") == "Retry":
            steps[name] = node
    return steps


def workflow_status(workflow: Mapping[str, Any]) -> dict[str, Any]:
    """``{"name", "phase", "finished", "message", "steps": [{"step", "phase", "retries", "message"}]}``.

    ``retries`` counts the attempts after the first; ``message`` is the failing attempt's.

    Example
    -------
    >>> wf = {"metadata": {"name": "churn-1a2b3c"}, "status": {"phase": "Running", "nodes": {
    ...     "a": {"displayName": "train", "type": "Retry", "phase": "Running", "children": ["b", "c"]},
    ...     "b": {"displayName": "train(0)", "type": "Pod", "phase": "Failed", "message": "OOMKilled"},
    ...     "c": {"displayName": "train(1)", "type": "Pod", "phase": "Running"}}}}
    >>> workflow_status(wf)["steps"]
    [{'step': 'train', 'phase': 'Running', 'retries': 1, 'message': 'OOMKilled'}]
    """
    status = workflow.get("status") or {}
    nodes = status.get("nodes") or {}
    steps = []
    for name, node in sorted(_step_nodes(nodes).items(), key=lambda kv: (kv[1].get("startedAt") or "", kv[0])):
        attempts = [nodes[c] for c in node.get("children") or [] if c in nodes] if node.get("type") == "Retry" else []
        failed = [a for a in attempts if a.get("phase") in ("Failed", "Error")]
        message = node.get("message") or (failed[-1].get("message") if failed else "") or ""
        steps.append(
            {
                "step": name,
                "phase": node.get("phase") or "Pending",
                "retries": max(0, len(attempts) - 1),
                "message": message,
            }
        )
    phase = status.get("phase") or "Pending"
    return {
        "name": (workflow.get("metadata") or {}).get("name", ""),
        "phase": phase,
        "finished": phase in FINISHED,
        "message": status.get("message") or "",
        "startedAt": status.get("startedAt"),
        "finishedAt": status.get("finishedAt"),
        "steps": steps,
    }
