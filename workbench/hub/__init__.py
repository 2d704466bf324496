"""The team hub: JupyterHub configured from the compute profiles, locally or on Kubernetes.

``configure(c, mode="local"|"kubernetes")`` fills a JupyterHub configuration from ``hub/profiles.yaml``
(loaded by :mod:`workbench.profiles`). Spawners, the culler, the reports service and the job gateway
load on first use (they need the ``hub`` extra).
"""

from .config import configure, options_from_env

__all__ = ["configure", "options_from_env"]
