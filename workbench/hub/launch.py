"""The launcher of :mod:`workbench.hub.lifeline`: tie this process to the hub, record it, become the command.

``python -m workbench.hub.launch --parent PID --name NAME [--records DIR] -- COMMAND...``
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from .._io import atomic_write_text
from .lifeline import process_start

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Have the kernel send SIGTERM when the parent dies (Linux); elsewhere the records must do."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:  # the hub died before the request took effect
        sys.exit(0)


def main(argv: list[str] | None = None) -> int:
    """Tie this process to the hub, record it, then become ``command``."""
    p = argparse.ArgumentParser(prog="python -m workbench.hub.launch", description=__doc__.split("\n\n")[0])
    p.add_argument("--parent", type=int, required=True, help="pid of the hub")
    p.add_argument("--name", required=True, help="record name, e.g. proxy")
    p.add_argument("--records", type=Path, help="directory for the record (default: none)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command to run")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        p.error("give the command to run after --")
    _die_with_parent(args.parent)
    if args.records is not None:
        me, parent_start = os.getpid(), process_start(args.parent)
        record = {
            "pid": me,
            "start": process_start(me),
            "parent": args.parent,
            "parent_start": parent_start,
            "name": args.name,
            "command": command,
        }
        args.records.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write_text(args.records / f"{args.name}.json", json.dumps(record) + "\n", mode=0o600)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        print(f"{args.name}: cannot run {command[0]}: {exc.strerror}", file=sys.stderr)
    return 127


if __name__ == "__main__":
    sys.exit(main())
