"""The ``workbench`` command. Each subcommand lives in its own module with ``register(subparsers)``.

Heavy imports happen inside the subcommands, so ``workbench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence

from .._redact import redact, redact_logging
from .._version import __version__

# Subcommand modules of this package, in the order --help lists them.
COMMANDS: tuple[str, ...] = (
    "demo",
    "run",
    "rerun",
    "sweep",
    "params",
    "runs",
    "show",
    "compare",
    "explain",
    "hub",
    "deploy",
)


class CommandError(Exception):
    """A user-facing failure: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench",
        description="Kaggle-style machine learning from notebook to job to team report.",
    )
    parser.add_argument("--version", action="version", version=f"workbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    redact_logging()
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"workbench {args.command}: {redact(str(exc))}", file=sys.stderr)
        return exc.code
    except (ValueError, FileNotFoundError) as exc:
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        print(f"workbench {args.command}: error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug or an unexpected failure: the traceback, with secrets hidden
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        trace = "".join(traceback.format_exception(exc))
        print(redact(trace).rstrip(), file=sys.stderr)
        print(
            f"workbench {args.command}: unexpected {type(exc).__name__} (set WORKBENCH_DEBUG=1 to see it unredacted)",
            file=sys.stderr,
        )
        return 1
