"""The values file for the official JupyterHub Helm chart, generated from ``hub/profiles.yaml``.

The profiles file is the single source: its profiles become ``singleuser.profileList`` here, and
the install command passes the file itself with ``--set-file`` into ``hub.extraFiles`` (mounted
where ``workbench.hub.configure`` reads it in the hub image), so no profile is copied by hand and
``helm/jupyterhub-values.yaml`` is regenerated, never edited::

    workbench deploy values -o helm/jupyterhub-values.yaml          # write
    workbench deploy values -o helm/jupyterhub-values.yaml --check  # fail if out of date

Names shared with the ``helm/workbench`` chart (runs claim, notebook service account, the job
gateway's token Secret) are the defaults of that chart's ``values.yaml``; tests keep the two in step.
User pods get no Kubernetes credentials and no egress to the API server; they reach the job
gateway on the hub pod (port :data:`GATEWAY_PORT`), which holds the gateway's token.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from .._version import __version__
from ..hub.config import GATEWAY_PORT, REPORTS_PORT
from ..hub.gateway.service import CREDENTIALS_DIR
from ..hub.kube import profile_entry
from ..profiles import ProfileSet, default_profiles_path, load_profiles
from ..runs.layout import KUBE_RUNS_MOUNT, RUNS_ENV

#: zero-to-jupyterhub release the values are written for (chart version and hub image tag).
Z2JH_VERSION = "4.3.2"
PROFILES_MOUNT = "/usr/local/etc/workbench/profiles.yaml"
RUNS_MOUNT = KUBE_RUNS_MOUNT
RUNS_CLAIM = "workbench-runs"
NOTEBOOK_SERVICE_ACCOUNT = "workbench-notebook"
GATEWAY_TOKEN_SECRET = "workbench-job-gateway-token"
HEADER = """\
# Values for the official JupyterHub chart (zero-to-jupyterhub {z2jh}), generated from {source}
# by `workbench deploy values`: edit the profiles file and regenerate, do not edit by hand.
# Install (see the README's deployment section):
#   helm repo add jupyterhub https://hub.jupyter.org/helm-chart/
#   helm upgrade --install jupyterhub jupyterhub/jupyterhub --version {z2jh} \\
#     --values helm/jupyterhub-values.yaml --set-file {profiles_key}=hub/profiles.yaml
# The hub reads that file (hub.extraFiles, empty here) at startup and refuses an empty one.
"""
#: ``--set-file`` key that puts the profiles file into the hub pod.
PROFILES_FILE_KEY = "hub.extraFiles.workbench-profiles.stringData"


def _image(ref: str) -> dict[str, str]:
    name, _, tag = ref.rpartition(":") if ":" in ref.rsplit("/", 1)[-1] else (ref, "", "latest")
    return {"name": name, "tag": tag}


def jupyterhub_values(
    profiles: ProfileSet,
    *,
    hub_image: str = f"workbench/hub:{__version__}",
    runs_claim: str = RUNS_CLAIM,
    service_account: str = NOTEBOOK_SERVICE_ACCOUNT,
) -> dict[str, Any]:
    """The values as a dict: hub image and configuration, profiles, user storage, network policy.

    Parameters
    ----------
    profiles : ProfileSet
        The compute profiles offered.
    hub_image : str, default "workbench/hub:<version>"
        The hub's image.
    runs_claim : str, default "workbench-runs"
        The PersistentVolumeClaim of the runs folder.
    service_account : str, default "workbench-notebook"
        The user pods' service account.

    Returns
    -------
    dict
        The chart's values.

    Examples
    --------
    >>> from workbench.profiles import load_profiles
    >>> values = jupyterhub_values(load_profiles())
    >>> sorted(values), values["hub"]["image"]["name"]
    (['cull', 'hub', 'singleuser'], 'workbench/hub')
    """
    runs_volume = {"name": "workbench-runs", "persistentVolumeClaim": {"claimName": runs_claim}}
    runs_mount = {"name": "workbench-runs", "mountPath": RUNS_MOUNT}
    gateway_volume = {"name": "job-gateway-token", "secret": {"secretName": GATEWAY_TOKEN_SECRET}}
    gateway_mount = {"name": "job-gateway-token", "mountPath": CREDENTIALS_DIR, "readOnly": True}
    from_users = [{"podSelector": {"matchLabels": {"hub.jupyter.org/network-access-hub": "true"}}}]
    default = next((p for p in profiles.profiles if p.default), profiles.profiles[0])
    configure = (
        "from workbench.hub import configure\n"
        f'configure(c, mode="kubernetes", profiles_path="{PROFILES_MOUNT}", runs_pvc="{runs_claim}",\n'
        f"          reports_port={REPORTS_PORT})\n"
    )
    return {
        "hub": {
            "image": _image(hub_image),
            "extraFiles": {"workbench-profiles": {"mountPath": PROFILES_MOUNT, "stringData": ""}},
            "extraEnv": {"WORKBENCH_PROFILES": PROFILES_MOUNT, RUNS_ENV: RUNS_MOUNT},
            "extraVolumes": [runs_volume, gateway_volume],
            "extraVolumeMounts": [runs_mount, gateway_mount],
            # GPU-aware culler, shared reports and the job gateway run as hub services registered by
            # configure(); the proxy reaches the reports, user pods the gateway, on the hub pod.
            "extraConfig": {"workbench": configure},
            "service": {
                "extraPorts": [
                    {"name": "reports", "port": REPORTS_PORT, "targetPort": REPORTS_PORT},
                    {"name": "job-gateway", "port": GATEWAY_PORT, "targetPort": GATEWAY_PORT},
                ]
            },
            "networkPolicy": {
                "enabled": True,
                "ingress": [
                    {
                        "ports": [{"port": REPORTS_PORT, "protocol": "TCP"}, {"port": GATEWAY_PORT, "protocol": "TCP"}],
                        "from": from_users,
                    }
                ],
            },
        },
        "singleuser": {
            "image": _image(default.image),
            "cmd": "start-singleuser.sh",  # Docker Stacks entry point (old and new images)
            "uid": 1000,
            "fsGid": 100,
            "serviceAccountName": service_account,
            "extraEnv": {RUNS_ENV: RUNS_MOUNT},
            "storage": {
                "type": "dynamic",
                "capacity": "10Gi",
                "homeMountPath": "/home/jovyan",
                "extraVolumes": [runs_volume],
                "extraVolumeMounts": [runs_mount],
            },
            # no egress to the Kubernetes API: Jobs go through the job gateway on the hub pod
            "networkPolicy": {
                "enabled": True,
                "egress": [
                    {
                        "to": [{"podSelector": {"matchLabels": {"app": "jupyterhub", "component": "hub"}}}],
                        "ports": [{"port": GATEWAY_PORT, "protocol": "TCP"}],
                    }
                ],
            },
            "profileList": [profile_entry(p) for p in profiles.profiles],
        },
        # the built-in idle culler is replaced by workbench's GPU-aware culler (a hub service)
        "cull": {"enabled": False},
    }


class _Dumper(yaml.SafeDumper):
    """Block scalars for multi-line strings, and no YAML anchors for repeated objects."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_values(profiles_path: str | os.PathLike[str] | None = None, **options: Any) -> str:
    """The values file's text for a profiles file (default: ``hub/profiles.yaml``).

    Parameters
    ----------
    profiles_path : path, optional
        The profiles file.
    **options
        Passed to :func:`jupyterhub_values`.

    Returns
    -------
    str
        YAML with a header saying how it was made.

    Raises
    ------
    FileNotFoundError
        When the profiles file does not exist.

    Examples
    --------
    >>> text = render_values()  # the checkout's hub/profiles.yaml
    >>> text.splitlines()[0]
    '# Values for the official JupyterHub chart (zero-to-jupyterhub 4.3.2), generated from hub/profiles.yaml'
    """
    path = Path(profiles_path) if profiles_path is not None else default_profiles_path()
    if not path.is_file():
        raise FileNotFoundError(f"profiles file {path} not found; pass --profiles PATH")
    profiles = load_profiles(path)
    values = jupyterhub_values(profiles, **options)
    source = path.name if path.parent.name != "hub" else f"hub/{path.name}"
    body = yaml.dump(values, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True)
    return HEADER.format(z2jh=Z2JH_VERSION, source=source, profiles_key=PROFILES_FILE_KEY) + body
