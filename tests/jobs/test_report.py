"""report.html: the exporter that remembers its highlighting and sanitising writes the bytes of
nbconvert's own exporter, run after run, whatever the cells' metadata."""

import jinja2
import nbformat
from nbconvert import HTMLExporter
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from workbench.jobs import report
from workbench.jobs.report import render_report


def _plain(nb, hide_input=False):
    """nbconvert's exporter with the report's template and settings, remembering nothing."""
    exporter = HTMLExporter(
        extra_loaders=[jinja2.DictLoader({"workbench_report.html.j2": report._OFFLINE_TEMPLATE})],
        template_file="workbench_report.html.j2",
        embed_images=True,
        exclude_input=hide_input,
        exclude_input_prompt=hide_input,
        exclude_output_prompt=hide_input,
    )
    return exporter.from_notebook_node(nb, resources={"metadata": {"name": "r"}})[0]


def _notebook(run: int):
    """A run's notebook: the same code, its own outputs and execution times."""
    shared = "import numpy as np\nx = np.arange(3)  # <b>not a tag</b>\nx.sum()"
    return new_notebook(
        cells=[
            new_markdown_cell("# Run <script>alert(1)</script>"),
            new_code_cell(shared, metadata={"execution": {"iopub.status.busy": f"2026-01-0{run}T00:00:00Z"}}),
            new_code_cell(
                "%%bash\necho hi", outputs=[new_output("stream", name="stdout", text=f"hi {run}\n")]
            ),  # highlighted as bash: the magic's language is part of what is remembered
            new_code_cell("echo $HOME", metadata={"magics_language": "bash"} if run == 2 else {}),
            new_code_cell(
                "df",
                outputs=[new_output("execute_result", data={"text/html": f"<table><tr><td>{run}</td></tr></table>"})],
            ),
        ],
        metadata={"language_info": {"name": "python", "pygments_lexer": "ipython3"}},  # as ipykernel says
    )


def test_reports_are_the_bytes_of_a_fresh_exporter_run_after_run(tmp_path):
    report._memo.clear()
    for run, hide_input in ((1, False), (2, False), (3, False), (3, True)):
        nb = _notebook(run)
        path = render_report(nbformat.from_dict(nb), tmp_path / f"{run}{hide_input}.html", "r", hide_input)
        assert path.read_text() == _plain(nbformat.from_dict(nb), hide_input)
    bash, python = ((tmp_path / f"{run}False.html").read_text() for run in (2, 3))
    assert '<span class="nv">$HOME' in bash and '<span class="nv">$HOME' not in python  # its own highlighting
    assert "&lt;b&gt;not a tag" in (tmp_path / "3False.html").read_text()
    assert "<script>alert" not in (tmp_path / "3False.html").read_text()  # still sanitised
    assert report._memo  # it did remember


def test_what_is_remembered_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "_MEMO_MAX_ENTRIES", 4)
    report._memo.clear()
    cells = [new_code_cell(f"y = {i}") for i in range(10)]
    nb = new_notebook(cells=cells, metadata={"language_info": {"name": "python"}})
    render_report(nb, tmp_path / "r.html", "r")
    assert len(report._memo) == 4
    assert (tmp_path / "r.html").read_text() == _plain(nb)


def test_text_it_cannot_key_is_passed_through_unremembered():
    calls = []

    def highlight(source, language=None, metadata=None):
        calls.append((source, language, metadata))
        return f"<{language}>{source}"

    remembered = report._remembered("highlight_code", highlight)
    report._memo.clear()
    assert remembered("x", "python", {"tags": ["a"]}) == "<python>x"  # positional metadata: no key
    assert remembered("y" * (report._MEMO_MAX_CHARS + 1))[:3] == "<No"
    assert remembered("z", metadata={"magics_language": "bash", "execution": {"t": 1}}) == "<None>z"
    assert remembered("z", metadata={"magics_language": "bash", "execution": {"t": 2}}) == "<None>z"
    assert len(calls) == 3 and len(report._memo) == 1  # the last two differ only in execution times
    assert calls[-1][2] == {"magics_language": "bash", "execution": {"t": 1}}  # the filter got the metadata
