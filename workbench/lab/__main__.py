"""``python -m workbench.lab install [--prefix DIR]``: the notebook server's configuration for an image."""

from __future__ import annotations

import argparse
import sys

from . import install


def main(argv: list[str] | None = None) -> int:
    """Install the server configuration and settings overrides; prints what was written."""
    p = argparse.ArgumentParser(prog="python -m workbench.lab", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="write the server config and JupyterLab overrides into an environment")
    inst.add_argument("--prefix", default=sys.prefix, help="the environment's prefix (default: this Python's)")
    args = p.parse_args(argv)
    for path in install(args.prefix):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
