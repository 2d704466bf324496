"""Slack-compatible webhook messages when a run or sweep ends.

The webhook URL is a secret (whoever has it can post to the channel): it is only ever shown
redacted, as ``scheme://host/…``. A failing webhook prints a warning and never fails the run.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from .._redact import redact, redact_url
from ..runs.records import RunRecord

NOTIFY_ENV = "WORKBENCH_NOTIFY_URL"
_ICONS = {"succeeded": ":white_check_mark:", "failed": ":x:", "running": ":hourglass:"}


def notify_url(url: str | None = None) -> str | None:
    """``url`` when given, else ``$WORKBENCH_NOTIFY_URL``, else ``None`` (no notifications)."""
    return url or os.environ.get(NOTIFY_ENV) or None


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(float(seconds), 60)
    return f"{int(minutes)}m{secs:04.1f}s" if minutes else f"{secs:.1f}s"


def _scalars(metrics: Mapping[str, Any], limit: int) -> list[tuple[str, Any]]:
    return [(k, v) for k, v in metrics.items() if isinstance(v, int | float | str) and not isinstance(v, bool)][:limit]


def run_message(record: RunRecord, key_metrics: int = 6) -> dict[str, Any]:
    """The message for one finished run: name, status, duration, key metrics, path (and the error)."""
    head = f"{_ICONS.get(record.state, '')} workbench run *{record.name}* {record.state} in {_duration(record.duration_s)}".strip()
    lines = [head, f"path: `{record.path}`"]
    if record.error:
        lines.append(f"error: {record.error.get('summary') or record.error.get('ename')}")
    metrics = _scalars(record.metrics, key_metrics)
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]
    if metrics:
        blocks.append(
            {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{_format(v)}"} for k, v in metrics]}
        )
    error = [f"error: {record.error.get('summary') or record.error.get('ename')}"] if record.error else []
    text = " | ".join([head.replace("*", ""), *error, *(f"{k}={_format(v)}" for k, v in metrics), str(record.path)])
    return {"text": text, "blocks": blocks}


def sweep_message(
    name: str, rows: Sequence[Mapping[str, Any]], duration_s: float, runs_dir: str, sort: str | None = None
) -> dict[str, Any]:
    """The message for a finished sweep: counts, duration and the best run by ``sort``."""
    ok = sum(1 for r in rows if r.get("state") == "succeeded")
    failed = len(rows) - ok
    state = "succeeded" if failed == 0 else "failed"
    head = f"{_ICONS[state]} workbench sweep *{name}*: {ok} of {len(rows)} runs succeeded in {_duration(duration_s)}"
    lines = [head, f"runs: `{runs_dir}`"]
    if rows and rows[0].get("state") == "succeeded":
        best = rows[0]
        metric = (sort or "").lstrip("-")
        label = f"best by {metric}" if metric else "first"
        params = ", ".join(
            f"{k.removeprefix('param.')}={_format(v)}" for k, v in best.items() if k.startswith("param.")
        )
        score = f" {metric}={_format(best.get(f'metric.{metric}'))}" if metric else ""
        lines.append(f"{label}: {best.get('run')}{score} ({params})")
    text = " | ".join(line.replace("*", "").replace("`", "") for line in lines)
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}}]}


def post_message(url: str, message: Mapping[str, Any], timeout: float = 10.0) -> bool:
    """POST ``message`` as JSON to the webhook; ``False`` (and a warning on stderr) when that fails."""
    request = urllib.request.Request(
        url,
        data=json.dumps(message).encode("utf-8"),
        method="POST",
        headers={"Content-Type": "application/json", "User-Agent": "workbench"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
        return True
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or getattr(exc, "code", None) or type(exc).__name__
        if isinstance(exc, urllib.error.HTTPError):
            reason = f"HTTP {exc.code}"
        print(
            f"workbench: warning: notification to {redact_url(url)} failed ({redact(str(reason))}); "
            "the run itself is unaffected",
            file=sys.stderr,
        )
        return False
