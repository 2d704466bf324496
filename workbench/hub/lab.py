"""How the hub starts JupyterLab: the notebook servers' configuration for :mod:`workbench.lab`.

:func:`configure_lab` gives every notebook server options (:func:`server_args`) and environment that

- load :mod:`workbench.lab` as a Jupyter server extension (a new user's home gets the reference
  notebooks and a "Start here" notebook; ``workbench/status`` shows GPUs and the culler's verdict);
- make jupyter-scheduler's notebook jobs workbench runs on the hub profiles the user may use, with
  schedules kept by the hub;
- turn JupyterLab's news pop-up off (``lab_settings/overrides.json``).

The curated images get the same through ``python -m workbench.lab install`` at build time. Only
names travel from here (the hub never imports :mod:`workbench.lab`, which sits above it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

SETTINGS_DIR = Path(__file__).parent / "lab_settings"
"""JupyterLab settings overrides (news pop-up off)."""
EXTENSION = "workbench.lab"
"""The server extension (:mod:`workbench.lab`), loaded by name: the hub does not import it."""
LAUNCHERS = {
    "workbench-reports": ("Team reports", "workbench/go/reports"),
    "workbench-runs": ("My runs", "workbench/go/runs"),
    "workbench-status": ("GPU and culling", "workbench/status"),
}
"""JupyterLab launcher cards (jupyter-server-proxy's, without a process): title and the page they open."""
CONFIG_DIR = Path(__file__).parent / "lab_config"
"""A Jupyter config folder (``$JUPYTER_CONFIG_PATH``) with the launcher cards, for local servers."""
SCHEDULER_CLASS = "workbench.lab.scheduler.WorkbenchScheduler"
ENVIRONMENTS_CLASS = "workbench.lab.environments.ProfileEnvironments"

# What the hub tells every notebook server in its environment (read by workbench.lab).
PROFILES_ENV = "WORKBENCH_PROFILES"
"""The hub's profiles file (local servers, which can read it)."""
PROFILES_YAML_ENV = "WORKBENCH_PROFILES_YAML"
"""The hub's profiles file's text (pods, which cannot read the hub's file)."""
GROUPS_ENV = "WORKBENCH_USER_GROUPS"
"""The user's hub groups, comma-separated (they decide the profiles a job may use)."""
PIPELINES_URL_ENV = "WORKBENCH_PIPELINES_URL"
"""The pipelines service as the server reaches it (schedules); unset: none."""


def server_config(mode: str = "local") -> dict[str, dict[str, Any]]:
    """The notebook server's configuration, as ``{section: {trait: value}}``.

    Examples
    --------
    >>> server_config("k8s")["WorkbenchScheduler"]
    {'backend': 'k8s'}
    """
    return {
        "ServerApp": {"jpserver_extensions": {EXTENSION: True, "jupyter_scheduler": True}},
        "SchedulerApp": {"scheduler_class": SCHEDULER_CLASS, "environment_manager_class": ENVIRONMENTS_CLASS},
        "WorkbenchScheduler": {"backend": "k8s" if mode in ("k8s", "kubernetes") else "local"},
        "LabApp": {"check_for_updates_class": "jupyterlab.NeverCheckForUpdate"},
        "ServerProxy": {"servers": launcher_servers()},
    }


def launcher_servers() -> dict[str, dict[str, Any]]:
    """jupyter-server-proxy ``servers`` entries that only add launcher cards (:data:`LAUNCHERS`).

    No process is started (empty ``command``): each card opens a page of the workbench server
    extension in a new browser tab.

    Examples
    --------
    >>> launcher_servers()["workbench-reports"]["launcher_entry"]["path_info"]
    'workbench/go/reports'
    """
    return {
        name: {
            "command": [],
            "new_browser_tab": True,
            "launcher_entry": {"title": title, "path_info": path, "category": "Other"},
        }
        for name, (title, path) in LAUNCHERS.items()
    }


def server_args(mode: str = "local", settings_dir: str | os.PathLike[str] | None = SETTINGS_DIR) -> list[str]:
    """:func:`server_config` as command-line options of ``jupyterhub-singleuser``.

    ``settings_dir`` (the JupyterLab settings with the overrides) is this package's in local mode,
    where servers run this Python; ``None`` for images, which install the overrides themselves.

    Examples
    --------
    >>> server_args("local", None)[0]
    '--ServerApp.jpserver_extensions=workbench.lab=True'
    """
    args = []
    for section, traits in server_config(mode).items():
        if section == "ServerProxy":
            continue  # nested: given as a config file (CONFIG_DIR) locally, installed in images
        for trait, value in traits.items():
            if isinstance(value, dict):
                args += [f"--{section}.{trait}={key}={item}" for key, item in value.items()]
            else:
                args.append(f"--{section}.{trait}={value}")
    if settings_dir is not None:
        args.append(f"--LabApp.app_settings_dir={settings_dir}")
    return args


def configure_lab(c: Any, mode: str, profiles_path: str | os.PathLike[str], pipelines_url: str = "") -> None:
    """Give every notebook server of the hub in ``c`` this package's configuration (see the module docstring).

    Parameters
    ----------
    c : traitlets.config.Config
        The hub's configuration.
    mode : {"local", "kubernetes"}
        Local servers run this Python (the settings overrides are this package's); pods run an image
        that installed them.
    profiles_path : path
        The hub's profiles file (the servers list its profiles as job environments).
    pipelines_url : str
        The pipelines service as the servers reach it (schedules); empty: none.

    Examples
    --------
    >>> from traitlets.config import Config
    >>> c = Config()
    >>> configure_lab(c, "local", "hub/profiles.yaml")
    >>> c.Spawner.environment["WORKBENCH_PROFILES"]
    'hub/profiles.yaml'
    """
    from .quota import user_groups

    local = mode == "local"
    args = list(c.Spawner["args"]) if "args" in c.Spawner else []
    c.Spawner.args = args + server_args(mode, SETTINGS_DIR if local else None)
    env = dict(c.Spawner["environment"]) if "environment" in c.Spawner else {}
    if local:
        env[PROFILES_ENV] = str(profiles_path)
        env["JUPYTER_CONFIG_PATH"] = str(CONFIG_DIR)
    else:  # a pod cannot read the hub's file: its text travels in the environment
        env[PROFILES_YAML_ENV] = Path(profiles_path).read_text(encoding="utf-8")
    env[GROUPS_ENV] = lambda spawner: ",".join(user_groups(spawner))
    if pipelines_url:
        env[PIPELINES_URL_ENV] = pipelines_url
    c.Spawner.environment = env


__all__ = ["SETTINGS_DIR", "configure_lab", "server_args", "server_config"]
