"""``report.html``: the executed notebook as one HTML file, images embedded, code optionally hidden.

The exporter remembers how it highlighted and sanitised each piece of text (code cells mostly): the
runs of one worker (tune trials, sweep points) share their code cells, and the report of each is
the same bytes a fresh exporter writes, sooner.
"""

from __future__ import annotations

import collections
import functools
import os
import threading
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


_MEMO_FILTERS = ("highlight_code", "clean_html")
_MEMO_MAX_ENTRIES = 512
_MEMO_MAX_CHARS = 100_000
_memo: collections.OrderedDict[tuple, str] = collections.OrderedDict()
_memo_lock = threading.Lock()


def _remembered(name: str, jinja_filter: Any) -> Any:
    """``jinja_filter`` (``highlight_code`` or ``clean_html``: pure functions of their text) remembering
    its results, so the code cells a worker's runs share are highlighted and sanitised once.

    ``highlight_code`` is registered anew for each notebook, with the notebook's lexer; the key holds
    that lexer, and of the cell's metadata only what the highlighting reads (``magics_language``),
    since the rest (execution times) differs from run to run.
    """
    lexer = getattr(jinja_filter, "pygments_lexer", None)
    options = repr(sorted(getattr(jinja_filter, "extra_formatter_options", {}).items()))

    def remembered(text: Any, *args: Any, **kwargs: Any) -> str:
        key = _memo_key(name, lexer, options, text, args, kwargs)
        if key is None:
            return jinja_filter(text, *args, **kwargs)
        with _memo_lock:
            if key in _memo:
                _memo.move_to_end(key)
                return _memo[key]
        value = jinja_filter(text, *args, **kwargs)
        with _memo_lock:
            _memo[key] = value
            while len(_memo) > _MEMO_MAX_ENTRIES:
                _memo.popitem(last=False)
        return value

    return remembered


def _memo_key(name: str, lexer: Any, options: str, text: Any, args: tuple, kwargs: dict) -> tuple | None:
    """What a filter's result depends on; None when it is not to be remembered (long or unusual input)."""
    if not isinstance(text, str) or len(text) > _MEMO_MAX_CHARS:
        return None
    kwargs = dict(kwargs)
    metadata = kwargs.pop("metadata", None) if name == "highlight_code" else None
    magics = metadata.get("magics_language") if isinstance(metadata, dict) else None
    key = (name, lexer, options, text, args, tuple(sorted(kwargs.items())), magics)
    try:
        hash(key)
    except TypeError:
        return None
    return key


def _report_exporter_class() -> type:
    from nbconvert import HTMLExporter

    class ReportExporter(HTMLExporter):
        """nbconvert's HTML exporter whose highlighting and sanitising of text remember their results."""

        def _register_filter(self, environ: Any, name: str, jinja_filter: Any) -> Any:
            if name in _MEMO_FILTERS and callable(jinja_filter) and not isinstance(jinja_filter, type | str):
                jinja_filter = _remembered(name, jinja_filter)
            return super()._register_filter(environ, name, jinja_filter)

    return ReportExporter


@functools.lru_cache(maxsize=2)
def _exporter(hide_input: bool) -> Any:
    import jinja2

    # Output images are inline already; embed_images also inlines those linked from Markdown.
    return _report_exporter_class()(
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
