"""``workbench pipeline run --backend argo`` and ``workbench pipeline stop``: pipelines on Argo Workflows.

The flags are added to ``pipeline run`` by :func:`add_argo_options`; :func:`run_argo` renders
(``--dry-run``) or submits through the hub's job gateway and follows the Workflow.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from . import CommandError

ARGO_MODES = ("run", "calendar", "webhook")


def add_argo_options(p: argparse.ArgumentParser) -> None:
    """The Argo backend's options of ``workbench pipeline run`` (``--backend`` itself is the command's)."""
    g = p.add_argument_group("Argo Workflows backend (--backend argo)")
    g.add_argument(
        "--mode",
        choices=ARGO_MODES,
        default="run",
        help="run: a Workflow now (followed); calendar: a CronWorkflow on the pipeline's schedule; "
        "webhook: a WorkflowTemplate started by Argo's events endpoint (default: run)",
    )
    g.add_argument(
        "--namespace", default="default", help="namespace for --dry-run (submitted pipelines go to the gateway's)"
    )
    g.add_argument("--image", help="container image for --dry-run (submitted pipelines run the profiles' images)")
    g.add_argument(
        "--secret",
        action="append",
        default=[],
        help="Kubernetes Secret whose keys become environment variables of every step; repeatable; "
        "only Secrets the steps' profiles allow",
    )
    g.add_argument(
        "--helm-values",
        action="store_true",
        help="with --dry-run and --mode calendar|webhook: print a values file the workbench chart installs",
    )


def run_argo(args: argparse.Namespace, source: Path, overrides: dict[str, Any]) -> int:
    """Render and print (``--dry-run``), or submit through the job gateway and follow; the exit status."""
    from ..jobs.pipeline.argo import helm_values, render_pipeline
    from ..jobs.pipeline.spec import load_pipeline

    pipeline = load_pipeline(source, overrides)
    if args.helm_values and not args.dry_run:
        raise CommandError("--helm-values prints a values file: add --dry-run", code=2)
    if args.dry_run:
        if args.helm_values:
            import yaml

            print(yaml.safe_dump(helm_values(pipeline, args.mode), sort_keys=False), end="")
        else:
            print(
                render_pipeline(
                    pipeline, mode=args.mode, namespace=args.namespace, image=args.image or "", secrets=args.secret
                ).to_yaml(),
                end="",
            )
        return 0
    if args.image:
        raise CommandError(
            "--image applies to --dry-run only: the job gateway runs the profiles' curated images", code=2
        )
    from ..jobs.pipeline.argo_follow import pipeline_request, submit_and_follow

    request = pipeline_request(source, pipeline, overrides, mode=args.mode, secrets=args.secret)
    return submit_and_follow(request)


def stop_argo(name: str) -> int:
    """Delete the caller's pipeline objects called ``name`` through the job gateway."""
    from .._redact import redact
    from ..jobs.k8s_client import EXIT_GATEWAY, GatewayClient, GatewayError

    try:
        deleted = GatewayClient.from_env().stop_pipeline(name)
    except GatewayError as exc:
        print(f"job gateway: {redact(str(exc))}", file=sys.stderr)
        return EXIT_GATEWAY
    print(f"deleted {', '.join(deleted['deleted'])} {name}")
    return 0
