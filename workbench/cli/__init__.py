"""The ``workbench`` command. Each subcommand lives in its own module with ``register(subparsers)``.

Heavy imports happen inside the subcommands, so ``workbench --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence

from .._version import __version__

# Subcommand modules of this package, in the order --help lists them.
COMMANDS: tuple[str, ...] = (
    "demo",
    "run",
    "rerun",
    "sweep",
    "pipeline",
    "tune",
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
        module = importlib.import_module(f"{__name__}.{name}")
        module.register(sub)
        command = sub.choices[name]
        command.set_defaults(parameter_flags={**flag_table(command), **getattr(module, "PARAMETER_FLAGS", {})})
    return parser


def flag_table(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Each option's destination (mostly the library's parameter name) → its long flag, subcommands included."""
    table: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action.choices, dict):  # nested subcommands (deploy values)
            for nested in action.choices.values():
                table.update(flag_table(nested))
        elif action.option_strings and action.dest not in ("help", argparse.SUPPRESS):
            table.setdefault(action.dest, max(action.option_strings, key=len))
    return table


_PARAMETER = re.compile(r"(?<![\w.?&/-])([A-Za-z_]\w*)=(True\b|False\b)?")


def translate_parameters(message: str, flags: dict[str, str]) -> str:
    """A library message in the command's terms: ``random=`` becomes ``--random``, ``trust=True`` ``--trust``.

    Parameters
    ----------
    message
        The error text; it names parameters as ``name=`` (optionally with a value after the ``=``).
    flags
        Parameter name → flag, for one command (:func:`flag_table` plus the command's ``PARAMETER_FLAGS``).

    Returns
    -------
    str
        ``message`` with every known ``name=`` replaced by its flag (``name=VALUE`` reads ``--flag VALUE``).
    """

    def flag(match: re.Match[str]) -> str:
        name, switch = match.group(1), match.group(2)
        if name not in flags:
            return match.group(0)
        if switch == "True":
            return flags[name]
        if switch == "False":
            return f"no {flags[name]}"
        follows = message[match.end() : match.end() + 1]
        return flags[name] + (" " if follows and not follows.isspace() and follows not in ",;:)" else "")

    return _PARAMETER.sub(flag, message)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    import traceback

    from .._redact import redact, redact_logging

    redact_logging()
    try:
        return int(args.func(args) or 0)
    except CommandError as exc:
        print(f"workbench {args.command}: {redact(str(exc))}", file=sys.stderr)
        return exc.code
    except (ValueError, FileNotFoundError) as exc:
        if os.environ.get("WORKBENCH_DEBUG"):
            raise
        message = translate_parameters(str(exc), getattr(args, "parameter_flags", {}))
        print(f"workbench {args.command}: error: {redact(message)}", file=sys.stderr)
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
