# JupyterHub configuration for workbench: `jupyterhub -f hub/jupyterhub_config.py`.
# The mode is explicit: WORKBENCH_HUB_MODE=local (default) or kubernetes. Profiles come from
# $WORKBENCH_PROFILES, else hub/profiles.yaml; see workbench.hub.configure for everything it sets.
# `workbench hub` does the same from its command-line flags.
from workbench.hub import configure, options_from_env

configure(get_config(), **options_from_env())  # noqa: F821 (get_config is provided by JupyterHub)
