"""``report.html``: the executed notebook as one HTML file, images embedded, code optionally hidden."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from .._io import atomic_write_text


@functools.lru_cache(maxsize=2)
def _exporter(hide_input: bool) -> Any:
    from nbconvert import HTMLExporter

    # Output images are inline already; embed_images also inlines those linked from Markdown.
    return HTMLExporter(embed_images=True, exclude_input=hide_input, exclude_input_prompt=hide_input,
                        exclude_output_prompt=hide_input)  # fmt: skip


def render_report(nb: Any, path: str | os.PathLike[str], title: str | None = None, hide_input: bool = False,
                  resources_dir: str | os.PathLike[str] | None = None) -> Path:  # fmt: skip
    """Write notebook node ``nb`` as self-contained HTML to ``path`` (atomically) and return it.

    ``hide_input`` leaves out code cells' source (a report for readers who want results);
    ``resources_dir`` is where relative Markdown image links resolve (the notebook's folder).

    >>> render_report(nbformat.read("run/train.ipynb", 4), "run/report.html", hide_input=True)
    """
    resources: dict[str, Any] = {"metadata": {"name": title or "report"}}
    if resources_dir is not None:
        resources["metadata"]["path"] = str(resources_dir)
    body, _ = _exporter(bool(hide_input)).from_notebook_node(nb, resources=resources)
    return atomic_write_text(path, body)
