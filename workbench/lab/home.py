"""A new user's first start: the reference notebooks and a "Start here" notebook, copied into the home once.

:func:`seed_home` runs in the user's own server (as the user, never as root): it copies what is
missing, never overwrites a file, refuses to follow a symlink, and leaves a marker
(``.workbench/first-start``) so that notebooks the user later deletes or renames do not come back.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import nbformat

from ..notebooks import REFERENCE_NOTEBOOKS, notebook_path

MARKER = Path(".workbench") / "first-start"
START_NOTEBOOK = "Start here.ipynb"
REPORTS_PATH = "/services/reports/"


def start_notebook(user: str = "", hub_prefix: str = "/", server_prefix: str = "") -> nbformat.NotebookNode:
    """The "Start here" notebook: what the workbench gives, how to run a job from the UI, where reports are.

    Parameters
    ----------
    user
        The hub user (links to their own runs); empty links to everyone's.
    hub_prefix
        The hub's base URL (``/`` unless the hub runs below a path).
    server_prefix
        The notebook server's URL prefix (``/user/alice/``), for the status page link.

    Returns
    -------
    nbformat.NotebookNode
        A version 4 notebook with markdown cells only.

    Examples
    --------
    >>> nb = start_notebook("alice")
    >>> "/services/reports/?owner=alice" in nb.cells[0].source
    True
    """
    reports = hub_prefix.rstrip("/") + REPORTS_PATH
    mine = reports + (f"?owner={user}" if user else "")
    status = (server_prefix or "/").rstrip("/") + "/workbench/status"
    welcome = f"""# Start here

This workbench is JupyterLab with a team behind it: every notebook job you run is recorded (its
parameters with their types, environment, inputs, metrics, artifacts and an HTML report) in the team's
runs folder, and the team's reports are one click away.

- **Your runs:** [{mine}]({mine})
- **The team's reports:** [{reports}]({reports})
- **GPU and culling at a glance:** [{status}]({status}): your GPUs' utilisation and memory, and when
  the hub would stop this server if it stays idle.

The reference notebooks next to this one are ready to run: `train.ipynb` (cross-validated training),
`explain.ipynb` (why the model predicts what it does), `stack.ipynb` (stacking training runs) and
`submission.ipynb` (a checked submission file). They are yours: edit them freely, they are never
copied over again."""
    jobs = """## Run a notebook as a job

1. Open a notebook, e.g. `train.ipynb`. Its cell tagged `parameters` declares typed parameters
   (`learning_rate: float = 0.05`).
2. Click **Create a job** in the notebook's toolbar (the calendar icon), or right-click the
   file in the file browser.
3. Give it a name, choose the **Environment**: the hub profiles your groups may use (CPU, memory,
   GPUs), change parameters under **Parameters**, and choose **Run now** or **Run on a schedule**.
4. **Create**. A value of the wrong type is refused before anything starts, with the parameter named.

The job runs outside your notebook server, so it finishes even when the server is stopped or culled.
Follow it under **Jobs** in the Launcher (press **Reload** to refresh the list); when it completes, its outputs are the executed
notebook and the run's report. From a terminal, `workbench runs` lists the same runs, and
`workbench run train.ipynb -p learning_rate 0.1` does the same as the dialog.

Schedules (**Run on a schedule**) are kept by the hub, not by your server: they fire while you are away.
They are listed under **Notebook Job Definitions**."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(welcome), nbformat.v4.new_markdown_cell(jobs)]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return nb


def _create_exclusive(path: Path, data: bytes) -> bool:
    """Write ``data`` to a new file ``path``; ``False`` (nothing written) when anything exists there."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(path, flags, 0o644)
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return False
        raise
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return True


def seed_home(
    home: str | os.PathLike[str], user: str = "", hub_prefix: str = "/", server_prefix: str = ""
) -> list[str]:
    """Copy the reference notebooks and the "Start here" notebook into ``home`` on its first start.

    Parameters
    ----------
    home
        The user's home (the notebook server's root directory).
    user, hub_prefix, server_prefix
        For the links of :func:`start_notebook`.

    Returns
    -------
    list[str]
        The files created (empty after the first start, or where every file was already there).

    Examples
    --------
    >>> import tempfile
    >>> home = tempfile.mkdtemp()
    >>> sorted(seed_home(home))[0]
    'Start here.ipynb'
    >>> seed_home(home)
    []
    """
    home = Path(home)
    marker = home / MARKER
    if marker.exists() or marker.is_symlink():
        return []
    files = {f"{name}.ipynb": notebook_path(name).read_bytes() for name in REFERENCE_NOTEBOOKS}
    files[START_NOTEBOOK] = nbformat.writes(start_notebook(user, hub_prefix, server_prefix)).encode("utf-8")
    created = [name for name, data in files.items() if _create_exclusive(home / name, data)]
    (home / MARKER.parent).mkdir(mode=0o700, exist_ok=True)
    _create_exclusive(marker, (json.dumps({"created": created}) + "\n").encode("utf-8"))
    return created
