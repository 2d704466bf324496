"""Strict validation of Argo Workflows objects against Argo's published JSON schema (vendored in
``tests/fixtures/argo/``, with its licence).

The schema as published accepts unknown keys; here every object definition that lists
``properties`` gets ``additionalProperties: false``, so a misspelt or invented field is an error,
as with ``kubernetes-validate --strict``. ``IntOrString`` and ``Quantity`` are widened to
string-or-number, as the Kubernetes API accepts them.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SCHEMA = Path(__file__).parent / "fixtures" / "argo" / "schema.json"
PREFIX = "io.argoproj.workflow.v1alpha1."
KINDS = ("Workflow", "CronWorkflow", "WorkflowTemplate", "WorkflowEventBinding")
_NUMBER_OR_STRING = ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", "io.k8s.apimachinery.pkg.api.resource.Quantity")


def _strict(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)


@functools.cache
def strict_schema() -> dict[str, Any]:
    """The vendored schema with unknown keys refused everywhere."""
    schema = json.loads(SCHEMA.read_text())
    _strict(schema["definitions"])
    for name in _NUMBER_OR_STRING:
        schema["definitions"][name] = {"type": ["string", "number"]}
    return schema


@functools.cache
def _validator(kind: str) -> Any:
    import jsonschema

    schema = strict_schema()
    root = {"$schema": schema["$schema"], "definitions": schema["definitions"], "$ref": f"#/definitions/{PREFIX}{kind}"}
    return jsonschema.Draft202012Validator(root)


def validate(obj: dict[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` (naming the path) unless ``obj`` is a valid Argo object."""
    import jsonschema

    kind = obj.get("kind")
    if kind not in KINDS:
        raise jsonschema.ValidationError(f"kind {kind!r} is not one of {KINDS}")
    error = jsonschema.exceptions.best_match(_validator(kind).iter_errors(obj))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise jsonschema.ValidationError(f"{kind} at {where or '(root)'}: {error.message}")
