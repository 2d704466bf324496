"""``workbench pipeline run --backend argo``: render (``--dry-run``), or submit through the job
gateway and follow the Workflow's steps until it ends.

User pods hold no Kubernetes rights: the pipeline file and its notebooks go to the hub's job
gateway (:class:`~workbench.jobs.k8s_client.GatewayClient`), which renders and creates the Argo
objects itself. Following prints each step's state change, its retries and the failing
attempt's message, then one summary line. Exit status: 0 succeeded (or, for calendar and webhook
mode, installed), 1 failed, 3 the gateway refused or could not be reached, 130 interrupted (the
Workflow keeps running).
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..._redact import redact
from ..k8s_client import EXIT_FAILED, EXIT_GATEWAY, EXIT_INTERRUPTED, EXIT_OK, GatewayClient, GatewayError

POLL_SECONDS = 2.0


def pipeline_request(
    source: str | Path, pipeline: Any, parameters: dict[str, Any], mode: str = "run", secrets: list[str] | None = None
) -> dict[str, Any]:
    """The gateway's request: the pipeline file and every notebook it runs, by path relative to the file."""
    source = Path(source)
    folder = source.resolve().parent
    notebooks = {}
    for step in pipeline.steps:
        path = Path(step.notebook).resolve()
        if not path.is_relative_to(folder):
            raise ValueError(
                f"step {step.name!r}: notebook {step.notebook} is outside {folder}; to run on Argo, keep the "
                "notebooks in the pipeline file's folder or below it (they are shipped with the pipeline)"
            )
        notebooks[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
    return {
        "pipeline": {"name": source.name, "content": source.read_text(encoding="utf-8")},
        "notebooks": notebooks,
        "parameters": dict(parameters),
        "mode": mode,
        "secrets": list(secrets or []),
    }


def _duration(start: str | None, end: str | None) -> str:
    if not start or not end:
        return ""
    seconds = (
        datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(start.replace("Z", "+00:00"))
    ).total_seconds()
    minutes, secs = divmod(int(seconds), 60)
    return f" in {minutes}m{secs:02d}s" if minutes else f" in {secs}s"


def summary_line(status: dict[str, Any]) -> str:
    """One line: the pipeline's outcome, and the failed steps with their messages."""
    line = f"pipeline {status['name']}: {status['phase'].lower()}{_duration(status.get('startedAt'), status.get('finishedAt'))}"
    failed = [s for s in status["steps"] if s["phase"] in ("Failed", "Error")]
    skipped = [s["step"] for s in status["steps"] if s["phase"] in ("Omitted", "Skipped")]
    if failed:
        line += "; failed: " + ", ".join(f"{s['step']} ({s['message'] or s['phase'].lower()})" for s in failed)
    if skipped:
        line += "; skipped: " + ", ".join(skipped)
    if not failed and status["phase"] != "Succeeded" and status.get("message"):
        line += f": {status['message']}"
    return line


def follow(
    client: GatewayClient, name: str, *, poll: float = POLL_SECONDS, out: IO[str] | None = None
) -> dict[str, Any]:
    """Print each step's state changes and retries until the Workflow ends; returns its last status."""
    out = out or sys.stdout
    seen: dict[str, tuple[str, int]] = {}
    while True:
        status = client.pipeline_status(name)
        for step in status["steps"]:
            state = (step["phase"], step["retries"])
            if seen.get(step["step"]) == state:
                continue
            before = seen.get(step["step"], ("", 0))
            if step["retries"] > before[1]:
                out.write(f"step {step['step']}: retry {step['retries']} ({step['message'] or 'attempt failed'})\n")
            if step["phase"] != before[0]:
                note = f": {step['message']}" if step["phase"] in ("Failed", "Error") and step["message"] else ""
                out.write(f"step {step['step']}: {step['phase'].lower()}{note}\n")
            seen[step["step"]] = state
        out.flush()
        if status["finished"]:
            return status
        time.sleep(poll)


def submit_and_follow(request: dict[str, Any], *, poll: float = POLL_SECONDS, out: IO[str] | None = None) -> int:
    """Submit through the gateway of this pod; follow a run to its end. Returns the exit status."""
    out = out or sys.stdout
    name = None
    try:
        client = GatewayClient.from_env()
        created = client.submit_pipeline(request)
        name = created["name"]
        print(f"submitted {created['summary']}", file=out, flush=True)
        if created["mode"] != "run":
            print(f"installed; remove it with `workbench pipeline stop {name} --backend argo`", file=out)
            return EXIT_OK
        status = follow(client, name, poll=poll, out=out)
    except GatewayError as exc:
        print(f"job gateway: {redact(str(exc))}", file=sys.stderr)
        return EXIT_GATEWAY
    except KeyboardInterrupt:
        if name is not None:
            print(f"stopped following; workflow {name} keeps running", file=sys.stderr)
        return EXIT_INTERRUPTED
    print(summary_line(status), file=out, flush=True)
    return EXIT_OK if status["phase"] == "Succeeded" else EXIT_FAILED
