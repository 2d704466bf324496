"""The study report: a self-contained HTML page (no scripts, figures as inline SVG) with the
optimisation history, parameter importances, parallel coordinates, the trials best first and a
link to the best trial's run report."""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Any

from ...models.study_plots import plot_history, plot_importances, plot_parallel
from ...runs.records import REPORT_FILE, write_run_file
from .study import best_run, trials_table


def _svg(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    return f'<img alt="" src="data:image/svg+xml;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def render_study_report(study: Any, path: Path, metric: str, notebook: str) -> Path:
    """Write ``report.html`` of ``study`` to ``path`` (a folder beside the trial runs)."""
    table = trials_table(study, metric)
    best = best_run(study)
    link = ""
    if best:
        run_folder = html.escape(best.split("/", 1)[-1])
        link = f'<p>Best trial\'s run: <a href="../{run_folder}/{REPORT_FILE}">{run_folder}</a></p>'
    try:
        best_text = f"{study.best_value:.6g} (trial {study.best_trial.number})"
    except ValueError:
        best_text = "no completed trial yet"
    figures = "".join(_svg(fn(study).figure) for fn in (plot_history, plot_importances, plot_parallel))
    shown = table.head(200).copy()
    for column in shown.columns:
        shown[column] = shown[column].map(lambda v: "" if v is None else v)
    rows = shown.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.6g}" if math.isfinite(v) else "")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>study {html.escape(study.study_name)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:75em}} table{{border-collapse:collapse;font-size:90%}}
td,th{{border:1px solid #ccc;padding:2px 6px;text-align:right}} img{{max-width:48%;margin:0.5em}}</style></head>
<body><h1>Study {html.escape(study.study_name)}</h1>
<p>Notebook {html.escape(notebook)}; {html.escape(metric)}, {study.direction.name.lower()}; best {html.escape(best_text)};
{len(table)} trials.</p>
{link}
<div>{figures}</div>
<h2>Trials, best first</h2>
{rows}
</body></html>
"""
    return write_run_file(path / REPORT_FILE, page.encode("utf-8"))
