"""``report.html``: the executed notebook as one HTML file, images embedded, code optionally hidden."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from .._io import atomic_write_text

# JupyterLab's page without the scripts it would fetch from the web (MathJax, RequireJS,
# Mermaid), so a report opens offline and shared reports run no third-party code.
_OFFLINE_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


@functools.lru_cache(maxsize=2)
def _exporter(hide_input: bool) -> Any:
    import jinja2
    from nbconvert import HTMLExporter

    # Output images are inline already; embed_images also inlines those linked from Markdown.
    return HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"workbench_report.html.j2": _OFFLINE_TEMPLATE})],
        template_file="workbench_report.html.j2",
        embed_images=True,
        exclude_input=hide_input,
        exclude_input_prompt=hide_input,
        exclude_output_prompt=hide_input,
    )


def prepare_report(hide_input: bool = False) -> None:
    """Build the HTML exporter and its templates ahead of :func:`render_report` (the first report
    of a process costs about a second more than the next).

    Examples
    --------
    >>> prepare_report()
    """
    from nbformat.v4 import new_notebook

    _exporter(bool(hide_input)).from_notebook_node(new_notebook(), resources={"metadata": {"name": "report"}})


def render_report(
    nb: Any,
    path: str | os.PathLike[str],
    title: str | None = None,
    hide_input: bool = False,
    resources_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Write notebook node ``nb`` as self-contained HTML to ``path`` (atomically) and return it.

    Images are embedded and no script is fetched from the web, so the file opens offline.

    ``hide_input`` leaves out code cells' source (a report for readers who want results);
    ``resources_dir`` is where relative Markdown image links resolve (the notebook's folder).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    >>> nb = new_notebook(cells=[new_markdown_cell("# Churn"), new_code_cell("cv_auc = 0.85")])
    >>> path = render_report(nb, Path(tempfile.mkdtemp()) / "report.html", hide_input=True)
    >>> path.name, "cv_auc" in path.read_text()
    ('report.html', False)
    """
    resources: dict[str, Any] = {"metadata": {"name": title or "report"}}
    if resources_dir is not None:
        resources["metadata"]["path"] = str(resources_dir)
    body, _ = _exporter(bool(hide_input)).from_notebook_node(nb, resources=resources)
    return atomic_write_text(path, body, mode=0o644)
