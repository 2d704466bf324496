"""Notebook parameters: read the ``parameters`` cell, then validate and coerce values before a kernel starts.

The cell tagged ``parameters`` declares each parameter as a plain assignment; an annotation
gives its type, otherwise the type of the default does::

    seed = 0                       # int, from the default
    lr: float = 0.05               # float, declared
    features: list[str] = []       # list of strings
    train_path: Path | None = None # an input file: checked and hashed before the run
    model: Literal["gbdt", "dart"] = "gbdt"

Values given on the command line arrive as text and are coerced to that type (``"0.1"`` →
``0.1``, ``"false"`` → ``False``, lists and dicts as YAML); values from a YAML file or Python
must already fit it. Errors name the parameter, the type and the fix.
"""

from __future__ import annotations

import ast
import difflib
import io
import json
import math
import os
import re
import tokenize
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
_MISSING = object()
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NULL = {"none", "null", "~", ""}
_INT = re.compile(r"[+-]?\d+")
_SCALARS = {"int", "float", "bool", "str", "path", "none"}


@dataclass(frozen=True)
class ParamType:
    """A parameter type: ``kind`` is any, int, float, bool, str, path, none, list, dict, tuple,
    union (``args`` are the members) or literal (``choices``)."""

    kind: str
    args: tuple[ParamType, ...] = ()
    choices: tuple[Any, ...] = ()

    def __str__(self) -> str:
        if self.kind == "union":
            return " | ".join(str(a) for a in self.args)
        if self.kind == "literal":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "path":
            return "Path"
        if self.kind == "none":
            return "None"
        if self.args:
            return f"{self.kind}[{', '.join(str(a) for a in self.args)}]"
        return self.kind

    @property
    def is_path(self) -> bool:
        """True for ``Path`` and ``Path | None``: the parameter names an input file."""
        return self.kind == "path" or (self.kind == "union" and any(a.kind == "path" for a in self.args))


ANY = ParamType("any")


@dataclass(frozen=True)
class Parameter:
    """One line of the parameters cell."""

    name: str
    type: ParamType
    default: Any = _MISSING
    source: str = ""
    help: str = ""
    declared: bool = False

    @property
    def has_default(self) -> bool:
        """True when the default is a literal the runner can pass on (and record)."""
        return self.default is not _MISSING

    def describe(self) -> str:
        default = f"default {self.default!r}" if self.has_default else (f"default {self.source}" if self.source else "required")
        return f"{self.name} ({self.type}, {default})" + (f": {self.help}" if self.help else "")


@dataclass(frozen=True)
class NotebookSpec:
    """What a notebook declares: its parameters, extra input files and how to rank its runs."""

    path: Path
    workdir: Path
    parameters: dict[str, Parameter]
    has_parameters_cell: bool
    inputs: tuple[str, ...] = ()
    sort: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        if not self.parameters:
            return "(none)"
        return "; ".join(p.describe() for p in self.parameters.values())


def read_notebook(path: str | os.PathLike[str]) -> Any:
    """The notebook at ``path`` as an nbformat node; a clear error when it is missing or unreadable."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} not found; pass the path of an .ipynb file")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several types for broken files
        raise ValueError(f"{path} is not a readable Jupyter notebook ({exc})") from exc


def inspect_notebook(path: str | os.PathLike[str], nb: Any = None, workdir: str | os.PathLike[str] | None = None) -> NotebookSpec:
    """Read the parameters cell of notebook ``path`` (names, types, defaults, help comments).

    ``workdir`` is where the kernel will run (default: the notebook's folder); relative input
    paths in defaults resolve against it. Notebook metadata ``workbench.inputs`` (paths of
    files the notebook reads) and ``workbench.sort`` (the metric ranking its runs, ``-`` prefix
    for lower-is-better) are read too.

    >>> spec = inspect_notebook("notebooks/train.ipynb")
    >>> spec.parameters["seed"].type, spec.parameters["seed"].default
    """
    path = Path(path).resolve()
    nb = read_notebook(path) if nb is None else nb
    meta = dict(nb.metadata.get("workbench", {}) or {})
    inputs = meta.get("inputs", [])
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise ValueError(f"{path}: metadata workbench.inputs must be a list of file paths, got {inputs!r}")
    cell = next((c for c in nb.cells if c.cell_type == "code" and PARAMETERS_TAG in c.metadata.get("tags", [])), None)
    params = {} if cell is None else parse_parameters_cell(cell.source, where=str(path))
    return NotebookSpec(path=path, workdir=Path(workdir).resolve() if workdir else path.parent, parameters=params,
                        has_parameters_cell=cell is not None, inputs=tuple(inputs), sort=meta.get("sort"),
                        metadata=meta)  # fmt: skip


def parse_parameters_cell(source: str, where: str = "the parameters cell") -> dict[str, Parameter]:
    """Parameters declared by the top-level assignments of ``source`` (other statements are ignored)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"{where}: the parameters cell is not valid Python (line {exc.lineno}: {exc.msg})") from exc
    comments = _line_comments(source)
    params: dict[str, Parameter] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name, annotation, value = node.targets[0].id, None, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name, annotation, value = node.target.id, node.annotation, node.value
        else:
            continue
        default, source_text = _MISSING, ""
        if value is not None:
            source_text = ast.unparse(value)
            default = _literal(value)
        if annotation is not None:
            ptype, declared = _parse_annotation(annotation, name, where), True
        else:
            ptype, declared = (_type_of(default) if default is not _MISSING else ANY), False
        params[name] = Parameter(name, ptype, default, source_text, comments.get(node.end_lineno or node.lineno, ""), declared)
    return params


def _line_comments(source: str) -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string.lstrip("#").strip()
    except (tokenize.TokenError, IndentationError):
        pass
    return out


def _literal(node: ast.expr) -> Any:
    """A literal default, ``Path("x")`` as the string ``"x"``; anything else is not passed on."""
    if isinstance(node, ast.Call) and not node.keywords and len(node.args) == 1:
        func = ast.unparse(node.func)
        if func in ("Path", "pathlib.Path", "str") and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            return node.args[0].value
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return _MISSING
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, set | frozenset | bytes | complex):
        return _MISSING
    return value


def _type_of(value: Any) -> ParamType:
    for kind, cls in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list), ("dict", dict)):
        if isinstance(value, cls):
            return ParamType(kind)
    return ANY


_NAMES = {"int": "int", "float": "float", "bool": "bool", "str": "str", "list": "list", "List": "list",
          "dict": "dict", "Dict": "dict", "tuple": "list", "Tuple": "list", "Path": "path", "PathLike": "path",
          "Any": "any", "object": "any", "None": "none", "NoneType": "none", "Sequence": "list",
          "Mapping": "dict"}  # fmt: skip


def _parse_annotation(node: ast.expr, name: str, where: str) -> ParamType:
    text = ast.unparse(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # a quoted annotation
        try:
            node = ast.parse(node.value, mode="eval").body
        except SyntaxError as exc:
            raise ValueError(f"{where}: cannot read the type annotation of {name!r}: {text}") from exc
    if isinstance(node, ast.Constant) and node.value is None:
        return ParamType("none")
    if isinstance(node, ast.Name | ast.Attribute):
        base = node.id if isinstance(node, ast.Name) else node.attr
        if base in _NAMES:
            return ParamType(_NAMES[base])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        members = [_parse_annotation(side, name, where) for side in (node.left, node.right)]
        flat = tuple(a for m in members for a in (m.args if m.kind == "union" else (m,)))
        return ParamType("union", flat)
    if isinstance(node, ast.Subscript):
        base = node.value.id if isinstance(node.value, ast.Name) else getattr(node.value, "attr", "")
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if base == "Literal":
            try:
                return ParamType("literal", choices=tuple(ast.literal_eval(i) for i in items))
            except ValueError as exc:
                raise ValueError(f"{where}: Literal[...] of {name!r} must list constants: {text}") from exc
        if base == "Optional":
            return ParamType("union", (_parse_annotation(items[0], name, where), ParamType("none")))
        if base == "Union":
            return ParamType("union", tuple(_parse_annotation(i, name, where) for i in items))
        kind = _NAMES.get(base)
        if kind in ("list", "dict"):
            args = tuple(_parse_annotation(i, name, where) for i in items if not (isinstance(i, ast.Constant) and i.value is Ellipsis))
            if kind == "list" and base in ("tuple", "Tuple") and len(set(args)) > 1:
                args = ()  # heterogeneous tuples: checked as plain lists
            return ParamType(kind, args[:1] if kind == "list" else args[:2])
    raise ValueError(
        f"{where}: parameter {name!r} has an annotation the runner cannot check ({text}); use int, float, bool, "
        "str, Path, list[...], dict[...], Literal[...] or X | None"
    )


# ----------------------------------------------------------------------------------------------
# Coercion


class _Mismatch(Exception):
    pass


def _from_text(text: str, ptype: ParamType) -> Any:
    kind = ptype.kind
    stripped = text.strip()
    if kind == "str":
        return text
    if kind == "path":
        return text
    if kind == "int":
        if _INT.fullmatch(stripped):
            return int(stripped)
        raise _Mismatch
    if kind == "float":
        try:
            return float(stripped)
        except ValueError:
            raise _Mismatch from None
    if kind == "bool":
        low = stripped.lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise _Mismatch
    if kind == "none":
        if stripped.lower() in _NULL:
            return None
        raise _Mismatch
    if kind == "literal":
        for choice in ptype.choices:
            if text == str(choice) or stripped == str(choice) or (isinstance(choice, bool) and stripped.lower() == str(choice).lower()):
                return choice
        raise _Mismatch
    if kind == "union":
        members = sorted(ptype.args, key=lambda a: a.kind != "none")  # "null" means None first
        for member in members:
            try:
                return _from_text(text, member)
            except _Mismatch:
                continue
        raise _Mismatch
    # list, dict and untyped values: YAML, e.g. [1, 2] or {a: 1}
    value = _yaml(text)
    if kind == "any":
        return value if _is_json(value) else text
    return _check(value, ptype)


def _yaml(text: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        raise _Mismatch from None


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def _check(value: Any, ptype: ParamType) -> Any:
    """Coerce an already-typed value (YAML file, Python, params.json); text goes through :func:`_from_text`."""
    kind = ptype.kind
    if isinstance(value, str) and kind not in ("str", "path", "any", "literal") and not (
        kind == "union" and any(a.kind in ("str", "path") for a in ptype.args)
    ):
        return _from_text(value, ptype)
    if kind == "any":
        if not _is_json(value):
            raise _Mismatch
        return list(value) if isinstance(value, tuple) else value
    if kind == "none":
        if value is None:
            return None
        raise _Mismatch
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise _Mismatch
    if kind == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise _Mismatch
    if kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        raise _Mismatch
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch
    if kind == "path":
        if isinstance(value, str | os.PathLike):
            return os.fspath(value)
        raise _Mismatch
    if kind == "literal":
        for choice in ptype.choices:
            if value == choice and type(value) is type(choice):
                return choice
        if isinstance(value, str):
            return _from_text(value, ptype)
        raise _Mismatch
    if kind == "list":
        if not isinstance(value, list | tuple):
            raise _Mismatch
        return [_check(v, ptype.args[0]) for v in value] if ptype.args else [_check(v, ANY) for v in value]
    if kind == "dict":
        if not isinstance(value, Mapping):
            raise _Mismatch
        key_t, val_t = (ptype.args + (ANY, ANY))[:2]
        if key_t.kind not in ("str", "any", "literal"):
            key_t = ParamType("str")
        return {str(_check(k, key_t)): _check(v, val_t) for k, v in value.items()}
    if kind == "union":
        for member in ptype.args:
            try:
                return _check(value, member)
            except _Mismatch:
                continue
        raise _Mismatch
    raise _Mismatch


_HINTS = {
    "int": "a whole number such as 5",
    "float": "a number such as 0.1",
    "bool": "true or false",
    "str": "text",
    "path": "a file path",
    "none": "none",
    "list": "a YAML list such as [1, 2]",
    "dict": "a YAML mapping such as {a: 1}",
}


def _hint(param: Parameter, value: Any) -> str:
    ptype = param.type
    example = _HINTS.get(ptype.kind) or ("one of " + ", ".join(map(repr, ptype.choices)) if ptype.kind == "literal" else "")
    if ptype.kind == "union":
        example = " or ".join(_HINTS.get(a.kind, str(a)) for a in ptype.args)
    fix = f"pass {example}" if example else "pass a value of that type"
    if not param.declared and ptype.kind == "int" and isinstance(value, str) and _looks_float(value):
        fix += f", or declare it a float in the parameters cell (`{param.name}: float = {param.source}`)"
    return fix


def _looks_float(text: str) -> bool:
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False


def coerce_value(param: Parameter, value: Any, text: bool = False) -> Any:
    """``value`` converted to ``param``'s type; ``text=True`` for command-line strings.

    Raises ``ValueError`` naming the parameter, its type and the fix.
    """
    try:
        return _from_text(value, param.type) if text else _check(value, param.type)
    except _Mismatch:
        origin = "declared in the parameters cell" if param.declared else f"the type of its default {param.source}"
        raise ValueError(
            f"parameter {param.name!r} expects {param.type} ({origin}); got {value!r}: {_hint(param, value)}"
        ) from None


def validate_params(
    spec: NotebookSpec,
    values: Mapping[str, Any] | None = None,
    text_values: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Check names and coerce values against ``spec``; return every parameter's value, in cell order.

    ``values`` are typed (Python, a YAML file), ``text_values`` are command-line strings and win
    over ``values``. Literal defaults fill the rest. ``Path`` parameters become absolute:
    given paths against ``base_dir`` (default: the current directory), defaults against the
    notebook's working directory.
    """
    values = dict(values or {})
    text_values = dict(text_values or {})
    given = {**values, **text_values}
    if given and not spec.has_parameters_cell:
        raise ValueError(
            f"{spec.path.name} has no cell tagged 'parameters', so it takes no parameters (got {sorted(given)}); "
            "tag the cell that assigns them with 'parameters' in Jupyter (Property Inspector ▸ Cell Tags)"
        )
    unknown = [n for n in given if n not in spec.parameters]
    if unknown:
        lowered = {p.lower(): p for p in spec.parameters}
        close = {n: [lowered[m] for m in difflib.get_close_matches(n.lower(), list(lowered), n=1)] for n in unknown}
        did_you_mean = "".join(f"; did you mean {c[0]!r} for {n!r}?" for n, c in close.items() if c)
        raise ValueError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for {spec.path.name}"
            f"{did_you_mean}; valid parameters: {spec.describe()}"
        )
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    out: dict[str, Any] = {}
    for name, param in spec.parameters.items():
        if name in text_values:
            value, origin = coerce_value(param, text_values[name], text=True), base
        elif name in values:
            value, origin = coerce_value(param, values[name]), base
        elif param.has_default:
            value, origin = coerce_value(param, param.default), spec.workdir
        else:
            if param.source:
                continue  # a computed default (e.g. an expression): the notebook keeps its own
            raise ValueError(
                f"parameter {name!r} of {spec.path.name} has no default; pass it, e.g. -p {name} VALUE ({param.type})"
            )
        if param.type.is_path and value is not None:
            value = str((origin / Path(value).expanduser()).resolve()) if not Path(value).expanduser().is_absolute() else str(Path(value).expanduser())
        out[name] = value
    return out


def split_grid_values(text: str) -> list[str]:
    """Split ``"0.01,0.03,[1, 2]"`` at top-level commas (not inside brackets or quotes)."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return items
