"""JupyterLab inside the workbench: notebook jobs that are workbench runs, schedules, a first start, GPU status.

A Jupyter server extension, loaded in every notebook server the hub starts
(:func:`workbench.hub.lab.configure_lab`; images: ``python -m workbench.lab install``):

- :mod:`~workbench.lab.home`: a new user's home gets the reference notebooks and "Start here", once;
- :mod:`~workbench.lab.scheduler`: jupyter-scheduler's jobs run as ``workbench run`` outside the
  server (a detached process locally, a Kubernetes Job through the job gateway), with the
  parameters checked against the notebook's typed ``parameters`` cell;
- :mod:`~workbench.lab.environments`: the jobs' environments are the hub profiles the user may use;
- :mod:`~workbench.lab.schedules`: job definitions with a schedule are kept by the hub's pipelines service;
- :mod:`~workbench.lab.status`: ``workbench/status``, the server's GPUs and the culler's verdict.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .._io import atomic_write_text
from ..hub.lab import EXTENSION, SETTINGS_DIR, server_config


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": EXTENSION}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .server import load

    load(serverapp)


def install(prefix: str | os.PathLike[str] = sys.prefix) -> list[Path]:
    """Install the server configuration and the settings overrides into an environment (image builds).

    Parameters
    ----------
    prefix
        The Python environment's prefix.

    Returns
    -------
    list[Path]
        ``<prefix>/etc/jupyter/jupyter_server_config.d/workbench.json`` and
        ``<prefix>/share/jupyter/lab/settings/overrides.json``, as written.

    Examples
    --------
    >>> import tempfile
    >>> [p.name for p in install(tempfile.mkdtemp())]
    ['workbench.json', 'overrides.json']
    """
    prefix = Path(prefix)
    config = prefix / "etc/jupyter/jupyter_server_config.d/workbench.json"
    config.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config, json.dumps(server_config("kubernetes"), indent=2) + "\n", mode=0o644)
    settings = prefix / "share/jupyter/lab/settings/overrides.json"
    settings.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SETTINGS_DIR / "overrides.json", settings)
    return [config, settings]


__all__ = ["install"]
