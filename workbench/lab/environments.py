"""The notebook-jobs dialog's *Environments* are the hub profiles the user's groups allow.

The single-user server learns the profiles file (``$WORKBENCH_PROFILES``) and the user's groups at
spawn (``$WORKBENCH_USER_GROUPS``, comma-separated); both are set by the hub (see
:func:`workbench.hub.lab.configure_lab`).
"""

from __future__ import annotations

import os

import yaml
from jupyter_scheduler.environments import EnvironmentManager
from jupyter_scheduler.models import RuntimeEnvironment

from ..hub.lab import GROUPS_ENV, PROFILES_ENV, PROFILES_YAML_ENV
from ..profiles import Profile, ProfileSet, load_profiles, parse_profiles

OUTPUT_FORMATS = {"ipynb": "Notebook", "html": "Report (HTML)"}


def describe(profile: Profile) -> str:
    """One line on a profile's resources, for the environment picker.

    Examples
    --------
    >>> from workbench.profiles import load_profiles
    >>> describe(load_profiles().get("cpu-small"))
    '2 CPU, 4G memory, no GPU. Exploration and feature engineering on samples.'
    """
    cpu = f"{profile.cpu_limit:g} CPU"
    gpu = f"{profile.gpus} GPU" if profile.gpus else "no GPU"
    return f"{cpu}, {profile.mem_limit} memory, {gpu}. {profile.description}".strip()


def user_profiles(environ: dict[str, str] | None = None) -> tuple[ProfileSet, list[Profile]]:
    """The hub's profiles and those the user's groups allow (from the server's environment)."""
    env = os.environ if environ is None else environ
    if env.get(PROFILES_YAML_ENV) and not env.get(PROFILES_ENV):
        profiles = parse_profiles(yaml.safe_load(env[PROFILES_YAML_ENV]))
    else:
        profiles = load_profiles(env.get(PROFILES_ENV) or None)
    groups = [g for g in env.get(GROUPS_ENV, "").split(",") if g]
    return profiles, profiles.for_groups(groups)


def environment(profile: Profile) -> RuntimeEnvironment:
    """A profile as jupyter-scheduler's runtime environment.

    JupyterLab's dialog shows ``name`` and submits ``label``: the name is the profile's display name,
    the label its slug (what a job records as its ``runtime_environment_name``).
    """
    return RuntimeEnvironment(
        name=profile.display_name,
        label=profile.slug,
        description=describe(profile),
        file_extensions=["ipynb"],
        output_formats=list(OUTPUT_FORMATS),
        metadata={"cpu": f"{profile.cpu_limit:g}", "memory": profile.mem_limit, "gpus": str(profile.gpus)},
        compute_types=None,
        default_compute_type=None,
        utc_only=True,
    )


class ProfileEnvironments(EnvironmentManager):
    """jupyter-scheduler's environment manager listing the user's hub profiles (default profile first)."""

    def list_environments(self) -> list[RuntimeEnvironment]:
        _, allowed = user_profiles()
        allowed = sorted(allowed, key=lambda p: not p.default)
        return [environment(p) for p in allowed]

    def manage_environments_command(self) -> str:
        return ""

    def output_formats_mapping(self) -> dict[str, str]:
        return dict(OUTPUT_FORMATS)
