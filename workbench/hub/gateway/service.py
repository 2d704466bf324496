"""``python -m workbench.hub.gateway``: the job gateway as a hub service in the hub pod."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from urllib.parse import urlparse

CREDENTIALS_DIR = "/var/run/secrets/workbench-job-gateway"
"""Where the hub pod mounts the gateway's service-account token Secret (``token``, ``ca.crt``)."""


def main(argv: list[str] | None = None) -> int:
    """Serve the gateway on the port of ``$JUPYTERHUB_SERVICE_URL`` with the mounted credentials."""
    from jupyterhub.services.auth import HubAuth

    from ..._redact import redact_logging
    from ...jobs.k8s import KubernetesError, credentials_client
    from ...jobs.k8s_manifest import JOB_SERVICE_ACCOUNT
    from ...jobs.pipeline.argo import EXECUTOR_SERVICE_ACCOUNT
    from ...profiles import load_profiles
    from .app import Gateway, listen, make_app

    p = argparse.ArgumentParser(
        prog="python -m workbench.hub.gateway", description="Create notebook Jobs for hub users."
    )
    p.add_argument("--profiles", required=True, help="the profiles file (groups, GPUs, secrets allow-lists)")
    p.add_argument(
        "--namespace",
        default=os.environ.get("POD_NAMESPACE") or "default",
        help="namespace of the Jobs (default: $POD_NAMESPACE, else default)",
    )
    p.add_argument("--runs-pvc", default="workbench-runs", help="claim of the shared runs volume")
    p.add_argument("--job-service-account", default=JOB_SERVICE_ACCOUNT, help="service account of the Jobs' pods")
    p.add_argument(
        "--executor-service-account",
        default=EXECUTOR_SERVICE_ACCOUNT,
        help="service account of Argo's executor in pipeline steps (the chart's argo.executorServiceAccountName)",
    )
    p.add_argument("--credentials", default=CREDENTIALS_DIR, help="folder with the gateway's token and ca.crt")
    p.add_argument("--ip", help="address to listen on (default: the host of $JUPYTERHUB_SERVICE_URL)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[%(levelname).1s %(asctime)s job-gateway] %(message)s")
    redact_logging()  # library logs (urllib3 retries, the hub client) never show a token
    service_url = os.environ.get("JUPYTERHUB_SERVICE_URL")
    if not service_url:
        print(
            "job-gateway: JUPYTERHUB_SERVICE_URL is not set; the gateway runs as a JupyterHub service", file=sys.stderr
        )
        return 2
    try:
        api = credentials_client(args.credentials)
    except KubernetesError as exc:
        print(f"job-gateway: {exc}; mount the workbench chart's job-gateway token Secret there", file=sys.stderr)
        return 2
    gateway = Gateway(
        profiles=load_profiles(args.profiles),
        namespace=args.namespace,
        api=api,
        hub_auth=HubAuth(cache_max_age=30),
        runs_pvc=args.runs_pvc,
        job_service_account=args.job_service_account,
        executor_service_account=args.executor_service_account,
    )
    url = urlparse(service_url)
    app = make_app(gateway, os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/job-gateway/"))

    async def serve() -> None:
        listen(app, url.port or 80, args.ip or url.hostname or "127.0.0.1")
        logging.getLogger("workbench.hub.gateway").info("creating Jobs in namespace %s", args.namespace)
        await asyncio.Event().wait()

    asyncio.run(serve())
    return 0
