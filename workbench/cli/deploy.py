"""``workbench deploy``: generate the Kubernetes deployment files from the project's sources."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._jobargs import add_output

# Library parameters whose flag is spelled differently (the rest match their flag).
PARAMETER_FLAGS = {"profiles_path": "--profiles"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "deploy",
        help="generate Kubernetes deployment files (Helm values)",
        description="Generate the deployment files that derive from hub/profiles.yaml.",
    )
    actions = p.add_subparsers(dest="deploy_command", metavar="ACTION", required=True)
    values = actions.add_parser(
        "values",
        help="values for the official JupyterHub chart, from the profiles file",
        description="Write the values file for the official JupyterHub Helm chart (zero-to-jupyterhub): "
        "profile list, hub image and configuration, storage and network policy.",
    )
    values.add_argument(
        "--profiles",
        type=Path,
        default=None,
        help="profiles file (default: $WORKBENCH_PROFILES, else hub/profiles.yaml)",
    )
    add_output(values, "file to write")
    values.add_argument(
        "--check", action="store_true", help="do not write: exit 1 if --output differs from what would be generated"
    )
    values.set_defaults(func=run_values)


def run_values(args: argparse.Namespace) -> int:
    from .._io import atomic_write_text
    from ..deploy.jupyterhub_values import render_values
    from . import CommandError

    text = render_values(args.profiles)
    if args.check:
        if args.output is None:
            raise CommandError("--check compares with a file: pass --output FILE", code=2)
        if not args.output.is_file() or args.output.read_text() != text:
            raise CommandError(
                f"{args.output} is out of date with the profiles file; "
                f"regenerate it with `workbench deploy values -o {args.output}`"
            )
        print(f"{args.output} is up to date")
        return 0
    if args.output is None:
        print(text, end="")
    else:
        atomic_write_text(args.output, text)
        print(f"wrote {args.output}")
    return 0
