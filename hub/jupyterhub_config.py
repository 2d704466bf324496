# JupyterHub configuration for workbench: `jupyterhub -f hub/jupyterhub_config.py`.
# The mode is explicit: WORKBENCH_HUB_MODE=local (default) or kubernetes. Profiles come from
# $WORKBENCH_PROFILES, else hub/profiles.yaml; see workbench.hub.configure for everything it sets.
# Local mode as an ordinary user: WORKBENCH_HUB_SHARED_ACCOUNT=1 lets every user spawn (as this user).
# `workbench hub` does the same from its command-line flags.
from workbench.hub import configure, options_from_env

configure(get_config(), **options_from_env())  # noqa: F821 (get_config is provided by JupyterHub)
