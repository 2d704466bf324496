"""A notebook's search space: read from ``-s NAME=EXPR`` or a YAML/JSON file, checked against the
notebook's typed parameters and declared metrics before any kernel starts."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ...models.space import Dimension, parse_dimension
from ..params import NotebookSpec, coerce_value


def parse_assignments(items: Iterable[str]) -> dict[str, Dimension]:
    """``["learning_rate=loguniform(0.005,0.3)", ...]`` (the ``-s`` options) as dimensions.

    Examples
    --------
    >>> str(parse_assignments(["num_leaves=int(15,255)"])["num_leaves"])
    'int(15,255)'
    """
    out: dict[str, Dimension] = {}
    for item in items:
        name, sep, expr = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"-s {item!r}: write NAME=EXPR, e.g. -s num_leaves=int(15,255)")
        out[name.strip()] = parse_dimension(name.strip(), expr.strip())
    return out


def load_space_file(path: str | os.PathLike[str]) -> dict[str, Dimension]:
    """A YAML or JSON file mapping parameter names to ``int(8,64)``-style text or lists of choices."""
    import yaml

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise FileNotFoundError(f"search space file {path}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"search space file {path} is not valid YAML/JSON: {exc}") from None
    if not isinstance(data, dict) or not data:
        raise ValueError(f"search space file {path} must map parameter names to dimensions, e.g. num_leaves: int(8,64)")
    return {str(k): parse_dimension(str(k), v) for k, v in data.items()}


def check_space(spec: NotebookSpec, space: Mapping[str, Dimension]) -> None:
    """Every dimension names a parameter of the notebook and fits its declared type.

    Raises ``ValueError`` naming the parameter: unknown, or a value of the dimension its type
    does not take (``uniform`` for an ``int``, a choice outside a ``Literal``).
    """
    if not space:
        raise ValueError("the search space is empty; give at least one -s NAME=EXPR (or --space FILE)")
    for name, dim in space.items():
        param = spec.parameters.get(name)
        if param is None:
            known = ", ".join(spec.parameters) or "(none)"
            raise ValueError(f"search space: {spec.path.name} has no parameter {name!r}; its parameters: {known}")
        if param.type.is_path:
            raise ValueError(f"search space: {name!r} is a file path ({param.type}); paths cannot be tuned")
        if dim.kind in ("uniform", "loguniform"):
            middle = (dim.low + dim.high) / 2
            samples = [dim.low, middle if middle != int(middle) else dim.low + (dim.high - dim.low) / 3.7, dim.high]
        elif dim.kind in ("int", "logint"):
            samples = [dim.low, dim.high]
        else:
            samples = list(dim.choices)
        for value in samples:
            try:
                coerced = coerce_value(param, value)
            except ValueError as exc:
                raise ValueError(
                    f"search space {name}={dim}: {value!r} is not a value of {name} ({param.type}): {exc}"
                ) from None
            if dim.kind in ("uniform", "loguniform") and coerced != value:
                raise ValueError(f"search space {name}={dim}: {name} is {param.type}; use int(...) or choice(...)")


def declared_metrics(spec: NotebookSpec, nb: Any) -> list[str]:
    """The metrics a notebook records: its ``workbench.sort`` and ``workbench.metrics`` metadata, and
    the names its cells pass literally to ``workbench.record("name", ...)``."""
    names: list[str] = []
    meta_metrics = spec.metadata.get("metrics", [])
    if isinstance(meta_metrics, list):
        names += [m for m in meta_metrics if isinstance(m, str)]
    if isinstance(spec.sort, str):
        names.append(spec.sort.lstrip("-"))
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue  # magics and shell lines: nothing to read there
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute | ast.Name)
                and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "record"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                names.append(node.args[0].value)
    return list(dict.fromkeys(names))


def check_metric(spec: NotebookSpec, nb: Any, metric: str | None) -> str:
    """The metric to optimise: ``metric``, else the notebook's ``workbench.sort``; an error naming it when
    the notebook does not record it."""
    declared = declared_metrics(spec, nb)
    if metric is None:
        if not spec.sort:
            raise ValueError(
                f"{spec.path.name} declares no ranking metric (metadata workbench.sort); pass metric=, "
                f"one of {declared or 'the names it records'}"
            )
        metric = spec.sort.lstrip("-")
    if metric not in declared:
        raise ValueError(
            f"metric {metric!r} is not one {spec.path.name} records; it records {declared or 'none it declares'} "
            "(metadata workbench.sort / workbench.metrics, or workbench.record('name', ...) calls)"
        )
    return metric
