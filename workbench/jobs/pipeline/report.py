"""``report.html`` of a pipeline run: the DAG drawn as SVG, each step's state, time, key metrics and report.

The drawing is layered: a step's column is the length of the longest chain of steps before it.
Everything is one self-contained HTML file (no scripts), every value HTML-escaped.
"""

from __future__ import annotations

import html
import os
from pathlib import Path

from ...runs.records import FILE_MODE, REPORT_FILE, write_run_file
from .record import PipelineRun

COLORS = {
    "succeeded": "#2e7d32",
    "cached": "#558b2f",
    "failed": "#c62828",
    "skipped": "#9e9e9e",
    "running": "#1565c0",
    "pending": "#bdbdbd",
}
_W, _H, _GAP_X, _GAP_Y = 170, 44, 60, 18
_METRICS_SHOWN = 4


def layers(run: PipelineRun) -> dict[str, int]:
    """Each step's column: 0 for steps with no dependencies, else one more than its deepest dependency."""
    depth: dict[str, int] = {}
    for name, step in run.steps.items():  # recorded in dependency order
        depth[name] = 1 + max((depth.get(d, 0) for d in step.after), default=-1)
    return depth


def dag_svg(run: PipelineRun) -> str:
    """The DAG as an inline SVG: one box per step coloured by state, an arrow per dependency."""
    depth = layers(run)
    rows: dict[int, int] = {}
    where: dict[str, tuple[int, int]] = {}
    for name in run.steps:
        col = depth[name]
        where[name] = (col * (_W + _GAP_X) + 10, rows.get(col, 0) * (_H + _GAP_Y) + 10)
        rows[col] = rows.get(col, 0) + 1
    width = (max(depth.values(), default=0) + 1) * (_W + _GAP_X)
    height = max(rows.values(), default=1) * (_H + _GAP_Y) + 10
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="pipeline {html.escape(run.name)}">',
        '<defs><marker id="arrow" markerWidth="8" markerHeight="8" refX="8" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>',
    ]
    for name, step in run.steps.items():
        x2, y2 = where[name]
        for dep in step.after:
            x1, y1 = where[dep]
            parts.append(
                f'<line x1="{x1 + _W}" y1="{y1 + _H // 2}" x2="{x2}" y2="{y2 + _H // 2}" '
                'stroke="#555" marker-end="url(#arrow)"/>'
            )
    for name, step in run.steps.items():
        x, y = where[name]
        color = COLORS.get(step.state, "#bdbdbd")
        took = f" {step.duration_s:.1f}s" if step.duration_s else ""
        parts.append(
            f'<g class="step" data-state="{html.escape(step.state)}"><rect x="{x}" y="{y}" width="{_W}" height="{_H}" '
            f'rx="6" fill="{color}"/><text x="{x + 8}" y="{y + 18}" fill="#fff" font-size="13">{html.escape(name)}</text>'
            f'<text x="{x + 8}" y="{y + 35}" fill="#fff" font-size="11">{html.escape(step.state)}{took}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _link(run: PipelineRun, step_run: str | None) -> str:
    if not step_run:
        return ""
    target = Path(step_run) / REPORT_FILE
    href = os.path.relpath(target, run.path)
    return f'<a href="{html.escape(href)}">{html.escape(Path(step_run).name)}</a>'


def _metrics(values: dict) -> str:
    shown = [(k, v) for k, v in values.items() if isinstance(v, int | float) and not isinstance(v, bool)]
    return ", ".join(
        f"{html.escape(str(k))} {v:.4f}" if isinstance(v, float) else f"{html.escape(str(k))} {v}"
        for k, v in shown[:_METRICS_SHOWN]
    )


def render_pipeline_report(run: PipelineRun) -> str:
    """The report of ``run`` as HTML text."""
    rows = "".join(
        f"<tr><td>{html.escape(s.name)}</td><td style='color:{COLORS.get(s.state, '#000')}'>{html.escape(s.state)}</td>"
        f"<td>{'' if s.duration_s is None else f'{s.duration_s:.1f}s'}</td><td>{s.attempts}</td>"
        f"<td>{_metrics(s.metrics)}</td><td>{_link(run, s.run)}</td><td>{html.escape(s.error or '')}</td></tr>"
        for s in run.steps.values()
    )
    trigger = f"{html.escape(run.trigger.get('kind', ''))} by {html.escape(run.trigger.get('by', ''))}"
    params = html.escape(", ".join(f"{k}={v!r}" for k, v in run.parameters.items()))
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>pipeline {html.escape(run.name)} ({html.escape(run.path.name)})</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 10px;text-align:left}"
        "table{border-collapse:collapse}tr:nth-child(even){background:#f5f5f5}</style></head><body>"
        f"<h1>pipeline {html.escape(run.name)}</h1>"
        f"<p>{html.escape(run.summary())}</p>"
        f"<p>started {html.escape(run.start or '')} ({trigger}); parameters: {params}</p>"
        f"{dag_svg(run)}"
        "<table><tr><th>step</th><th>state</th><th>duration</th><th>attempts</th><th>key metrics</th>"
        f"<th>run</th><th>error</th></tr>{rows}</table></body></html>"
    )


def write_report(run: PipelineRun) -> Path:
    """Write ``report.html`` into the pipeline run folder (atomically, team-readable)."""
    path = run.path / REPORT_FILE
    write_run_file(path, render_pipeline_report(run).encode("utf-8"))
    os.chmod(path, FILE_MODE)
    return path
