"""``python -m workbench.hub.pipelines.execute {check|run}``: the child the pipelines service starts.

Runs as the run's owner (the service has already dropped to that account). Reads one JSON request
on standard input and writes one JSON result line on standard output (everything else goes to
standard error, the launch's log). A request names what to run, relative to ``home`` (the working
directory), and its parameters::

    {"name": "nightly", "notebook": "work/train.ipynb" | "pipeline": "work/p.yaml" | "file": "/abs/p.yaml",
     "home": "/srv/workbench/users/wb-ana", "parameters": {...}, "profile": "cpu-small",
     "trigger": {"kind": "schedule", "by": "0 6 * * *", "id": "..."}}

``notebook`` and ``pipeline`` must stay inside ``home`` once every symlink is resolved (a user's
schedule); ``file`` is a declared pipeline's file. A notebook is run as a one-step pipeline. ``check``
validates and answers ``{"ok": true, "pipeline": ..., "parameters": [...]}``; ``run`` runs it and
answers ``{"ok": ..., "run": "<pipeline run id>", "state": ..., "uid": ...}``. Errors are
``{"ok": false, "error": "..."}``, naming the problem.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class RequestError(ValueError):
    """A request that cannot run; the message names the problem."""


def inside_home(home: Path, relative: str, field: str) -> Path:
    """``home / relative`` resolved, if it is a file inside ``home`` (symlinks followed); else :class:`RequestError`."""
    root = home.resolve()
    path = (root / relative).resolve()
    if path != root and root not in path.parents:
        raise RequestError(f"{field} {relative!r} leads outside your home (through a symlink?); keep it in {root}")
    if not path.is_file():
        raise RequestError(f"{field} {relative!r} does not exist in your home {root}")
    return path


def as_text(value: Any) -> str:
    """A parameter value as ``-p`` text: strings as they are, anything else as JSON (which YAML reads).

    Examples
    --------
    >>> as_text("lgbm"), as_text(300), as_text([1, 2]), as_text(True)
    ('lgbm', '300', '[1, 2]', 'true')
    """
    return value if isinstance(value, str) else json.dumps(value)


def text_overrides(parameters: Mapping[str, Any]) -> dict[str, str]:
    """``-p``-style overrides from JSON parameters."""
    return {str(k): as_text(v) for k, v in parameters.items()}


def notebook_values(notebook: Path, parameters: Mapping[str, Any], home: Path) -> dict[str, Any]:
    """A notebook schedule's parameters checked and typed like ``-p`` (strings are ``-p`` text, the rest typed)."""
    from ...jobs.params import inspect_notebook, validate_params

    texts = {k: v for k, v in parameters.items() if isinstance(v, str)}
    typed = {k: v for k, v in parameters.items() if not isinstance(v, str)}
    values = validate_params(inspect_notebook(notebook), typed, texts, base_dir=home)
    return {k: values[k] for k in parameters}


def one_step(name: str, notebook: Path, parameters: Mapping[str, Any], profile: str | None) -> dict[str, Any]:
    """The pipeline definition of a single notebook with its parameters (one step named after the schedule)."""
    step: dict[str, Any] = {"notebook": str(notebook), "parameters": dict(parameters)}
    if profile:
        step["profile"] = profile
    return {"name": name, "steps": {name: step}}


def load(request: Mapping[str, Any]) -> Any:
    """The :class:`~workbench.jobs.pipeline.spec.Pipeline` a request names, validated."""
    from ...jobs.pipeline.spec import load_pipeline, parse_pipeline

    home = Path(request.get("home") or os.getcwd())
    params = request.get("parameters") or {}
    if request.get("file"):
        return load_pipeline(request["file"], text_overrides(params))
    if request.get("pipeline"):
        pipeline = load_pipeline(inside_home(home, request["pipeline"], "pipeline"), text_overrides(params))
        for step in pipeline.steps:  # a user's pipeline runs only notebooks of that user's home
            inside_home(home, str(step.notebook), f"step {step.name!r}: notebook")
        return pipeline
    if request.get("notebook"):
        notebook = inside_home(home, request["notebook"], "notebook")
        values = notebook_values(notebook, params, home)
        data = one_step(str(request.get("name") or notebook.stem), notebook, values, request.get("profile"))
        return parse_pipeline(data, base_dir=home, source=f"schedule {request.get('name')!r}")
    raise RequestError("the request names no notebook, pipeline or file")


def describe(pipeline: Any) -> dict[str, Any]:
    """What ``check`` answers about a valid pipeline."""
    return {
        "ok": True,
        "pipeline": pipeline.name,
        "parameters": sorted(pipeline.parameters),
        "steps": [getattr(s, "name", str(s)) for s in pipeline.steps],
        "schedule": pipeline.schedule,
    }


def run(request: Mapping[str, Any]) -> dict[str, Any]:
    """Run the request's pipeline with its trigger; the result line."""
    from ...jobs.pipeline.executor import run_pipeline

    pipeline = load(request)
    result = run_pipeline(pipeline, trigger=dict(request.get("trigger") or {}), progress=False)
    state = getattr(result, "state", None) or getattr(result, "status", None)
    return {
        "ok": state in ("succeeded", "cached"),
        "run": getattr(result, "run_id", None) or getattr(getattr(result, "path", None), "name", None),
        "state": state,
        "uid": os.getuid(),
    }


def main(argv: list[str] | None = None) -> int:
    """Read the request, check or run it, print the result line."""
    argv = sys.argv[1:] if argv is None else argv
    mode = argv[0] if argv else ""
    if mode not in ("check", "run"):
        print("usage: python -m workbench.hub.pipelines.execute {check|run} < request.json", file=sys.stderr)
        return 2
    try:
        request = json.loads(sys.stdin.read() or "null")
        if not isinstance(request, dict):
            raise RequestError("the request is not a JSON object")
        answer = describe(load(request)) if mode == "check" else run(request)
    except ValueError as exc:  # RequestError and PipelineError (a ValueError) name the problem
        answer = {"ok": False, "error": str(exc), "uid": os.getuid()}
    except OSError as exc:
        answer = {"ok": False, "error": f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), "uid": os.getuid()}
    print(json.dumps(answer, default=str), flush=True)
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main())
