"""``workbench params``: the parameters a notebook takes, with their types and defaults."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._jobargs import display_path, parameters_text


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "params",
        help="list a notebook's parameters with types and defaults",
        description="Print the parameters declared by the notebook's cell tagged 'parameters': name, type "
        "(from the annotation, else the default's type), default and the comment that documents it; "
        "then the input files and ranking metric its metadata declares. Set them with "
        "`workbench run NOTEBOOK -p NAME VALUE`.",
    )
    p.add_argument("notebook", type=Path, help="the .ipynb to describe")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..jobs.params import inspect_notebook

    spec = inspect_notebook(args.notebook)
    print(f"parameters of {display_path(spec.path)} (set with -p NAME VALUE):")
    print(parameters_text(spec))
    if spec.inputs:
        print(f"input files: {', '.join(spec.inputs)}")
    if spec.sort:
        print(f"runs ranked by: {spec.sort}")
    return 0
