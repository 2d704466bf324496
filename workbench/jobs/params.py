"""Notebook parameters: read the ``parameters`` cell, then validate and coerce values before a kernel starts.

The cell tagged ``parameters`` declares each parameter as a plain assignment; an annotation
gives its type, otherwise the type of the default does::

    seed = 0                       # int, from the default
    lr: float = 0.05               # float, declared
    features: list[str] = []       # list of strings
    train_path: Path | None = None # an input file: checked and hashed before the run
    model: Literal["gbdt", "dart"] = "gbdt"

Values given on the command line arrive as text and are coerced to that type (``"0.1"`` →
``0.1``, ``"false"`` → ``False``, lists and dicts as YAML); values from Python must already fit
it. ``str`` and ``Path`` values keep the text as typed, in lists and dicts and YAML files too
(``[005115, yes, 1e3, null]`` for ``list[str]`` is four strings; declare ``list[str | None]`` for
``null`` to mean ``None``). YAML anchors and aliases are refused and a value is capped at
64 KiB (:mod:`workbench._yaml`). Errors name the parameter, the type and the fix.
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
        default = (
            f"default {self.default!r}"
            if self.has_default
            else (f"default {self.source}" if self.source else "required")
        )
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
        return "\n".join(f"  {p.describe()}" for p in self.parameters.values())


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


def inspect_notebook(
    path: str | os.PathLike[str], nb: Any = None, workdir: str | os.PathLike[str] | None = None
) -> NotebookSpec:
    """Read the parameters cell of notebook ``path`` (names, types, defaults, help comments).

    ``workdir`` is where the kernel will run (default: the notebook's folder); relative input
    paths in defaults resolve against it. Notebook metadata ``workbench.inputs`` (paths of
    files the notebook reads) and ``workbench.sort`` (the metric ranking its runs, ``-`` prefix
    for lower-is-better) are read too.

    .. code-block:: python

        spec = inspect_notebook("notebooks/train.ipynb")
        spec.parameters["seed"].type, spec.parameters["seed"].default
    """
    path = Path(path).resolve()
    nb = read_notebook(path) if nb is None else nb
    meta = dict(nb.metadata.get("workbench", {}) or {})
    inputs = meta.get("inputs", [])
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise ValueError(f"{path}: metadata workbench.inputs must be a list of file paths, got {inputs!r}")
    cell = next((c for c in nb.cells if c.cell_type == "code" and PARAMETERS_TAG in c.metadata.get("tags", [])), None)
    params = {} if cell is None else parse_parameters_cell(cell.source, where=str(path))
    return NotebookSpec(
        path=path,
        workdir=Path(workdir).resolve() if workdir else path.parent,
        parameters=params,
        has_parameters_cell=cell is not None,
        inputs=tuple(inputs),
        sort=meta.get("sort"),
        metadata=meta,
    )


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
        params[name] = Parameter(
            name, ptype, default, source_text, comments.get(node.end_lineno or node.lineno, ""), declared
        )
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
        if (
            func in ("Path", "pathlib.Path", "str")
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
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


_NAMES = {
    "int": "int",
    "float": "float",
    "bool": "bool",
    "str": "str",
    "list": "list",
    "List": "list",
    "dict": "dict",
    "Dict": "dict",
    "tuple": "list",
    "Tuple": "list",
    "Path": "path",
    "PathLike": "path",
    "Any": "any",
    "object": "any",
    "None": "none",
    "NoneType": "none",
    "Sequence": "list",
    "Mapping": "dict",
}


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
            args = tuple(
                _parse_annotation(i, name, where)
                for i in items
                if not (isinstance(i, ast.Constant) and i.value is Ellipsis)
            )
            if kind == "list" and base in ("tuple", "Tuple") and len(set(args)) > 1:
                args = ()  # heterogeneous tuples: checked as plain lists
            return ParamType(kind, args[:1] if kind == "list" else args[:2])
    raise ValueError(
        f"{where}: parameter {name!r} has an annotation the runner cannot check ({text}); use int, float, bool, "
        "str, Path, list[...], dict[...], Literal[...] or X | None"
    )


# ----------------------------------------------------------------------------------------------
# Coercion: one entry per type kind, for command-line text and for already-typed values.
#
# Text for ``str`` and ``Path`` is kept as typed, inside lists and dicts too (``[007, yes]`` is
# ``["007", "yes"]`` for ``list[str]``); other scalars inside lists and dicts are read as the same
# text would be on its own (``-p n 007`` and ``[007]`` are both 7 for ints), falling back to YAML
# spellings (``0x1f``, ``.inf``). Quoted YAML scalars are text. YAML never expands aliases here and
# is size-capped (:mod:`workbench._yaml`).


class _Mismatch(Exception):
    pass


@dataclass(frozen=True)
class YamlValue:
    """A value as written in a YAML parameters file, coerced once the parameter's type is known.

    Keeping the YAML node (rather than what ``yaml.safe_load`` makes of it) lets ``str``
    parameters keep the text as written: ``run_id: 005115`` stays ``"005115"``, not ``2637``.
    """

    node: Any

    @property
    def is_list(self) -> bool:
        import yaml

        return isinstance(self.node, yaml.SequenceNode)

    def items(self) -> list[YamlValue]:
        """The items of a YAML list (a sweep's values), each as its own value; any other value alone."""
        return [YamlValue(n) for n in self.node.value] if self.is_list else [self]

    def __repr__(self) -> str:
        start, end = self.node.start_mark, self.node.end_mark
        text = start.buffer[start.index : end.index] if getattr(start, "buffer", None) else str(self.node.value)
        return repr(text.strip())


def _int_text(text: str, ptype: ParamType) -> Any:
    stripped = text.strip()
    if _INT.fullmatch(stripped):
        return int(stripped)
    raise _Mismatch


def _float_text(text: str, ptype: ParamType) -> Any:
    try:
        return float(text.strip())
    except ValueError:
        raise _Mismatch from None


def _bool_text(text: str, ptype: ParamType) -> Any:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise _Mismatch


def _none_text(text: str, ptype: ParamType) -> Any:
    if text.strip().lower() in _NULL:
        return None
    raise _Mismatch


def _literal_text(text: str, ptype: ParamType) -> Any:
    stripped = text.strip()
    for choice in ptype.choices:
        if (
            text == str(choice)
            or stripped == str(choice)
            or (isinstance(choice, bool) and stripped.lower() == str(choice).lower())
        ):
            return choice
    raise _Mismatch


def _union_text(text: str, ptype: ParamType) -> Any:
    return _first_member(ptype, lambda member: _from_text(text, member), none_first=True)


def _yaml_text(text: str, ptype: ParamType) -> Any:
    """Lists, dicts and untyped values: YAML, e.g. ``[1, 2]`` or ``{a: 1}``."""
    node = _compose(text)
    if ptype.kind == "any":
        from .._yaml import construct_yaml

        value = construct_yaml(node)
        return value if _is_json(value) else text
    return _from_node(node, ptype)


def _compose(text: str) -> Any:
    import yaml

    from .._yaml import compose_yaml

    try:
        return compose_yaml(text)
    except yaml.YAMLError:
        raise _Mismatch from None


def _keep_text(text: str, ptype: ParamType) -> Any:
    return text


def _first_member(ptype: ParamType, coerce: Any, none_first: bool = False) -> Any:
    members = (
        sorted(ptype.args, key=lambda a: a.kind != "none") if none_first else ptype.args
    )  # "null" means None first
    for member in members:
        try:
            return coerce(member)
        except _Mismatch:
            continue
    raise _Mismatch


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        return False
    return True


def _any_value(value: Any, ptype: ParamType) -> Any:
    if not _is_json(value):
        raise _Mismatch
    return _copy(value)


def _copy(value: Any) -> Any:
    """Lists and dicts rebuilt, so no two places share one object (YAML dumps would write anchors)."""
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return value


def _none_value(value: Any, ptype: ParamType) -> Any:
    if value is None:
        return None
    raise _Mismatch


def _bool_value(value: Any, ptype: ParamType) -> Any:
    if isinstance(value, bool):
        return value
    raise _Mismatch


def _int_value(value: Any, ptype: ParamType) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _Mismatch


def _float_value(value: Any, ptype: ParamType) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise _Mismatch


def _str_value(value: Any, ptype: ParamType) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Mismatch


def _path_value(value: Any, ptype: ParamType) -> Any:
    if isinstance(value, str | os.PathLike):
        return os.fspath(value)
    raise _Mismatch


def _literal_value(value: Any, ptype: ParamType) -> Any:
    for choice in ptype.choices:
        if value == choice and type(value) is type(choice):
            return choice
    if isinstance(value, str):
        return _from_text(value, ptype)
    raise _Mismatch


def _list_value(value: Any, ptype: ParamType) -> Any:
    if not isinstance(value, list | tuple):
        raise _Mismatch
    item = ptype.args[0] if ptype.args else ANY
    return [_check(v, item) for v in value]


def _dict_key_types(ptype: ParamType) -> tuple[ParamType, ParamType]:
    key_t, val_t = (ptype.args + (ANY, ANY))[:2]
    return (key_t if key_t.kind in ("str", "any", "literal") else ParamType("str")), val_t


def _dict_value(value: Any, ptype: ParamType) -> Any:
    if not isinstance(value, Mapping):
        raise _Mismatch
    key_t, val_t = _dict_key_types(ptype)
    return {str(_check(k, key_t)): _check(v, val_t) for k, v in value.items()}


def _union_value(value: Any, ptype: ParamType) -> Any:
    return _first_member(ptype, lambda member: _check(value, member))


@dataclass(frozen=True)
class _Kind:
    """How one type kind reads command-line text and checks a typed value."""

    text: Any  # (text, ptype) -> value
    value: Any  # (value, ptype) -> value
    takes_text: bool = False  # a str value is this kind's own (not text to parse)


_KINDS: dict[str, _Kind] = {
    "any": _Kind(_yaml_text, _any_value, takes_text=True),
    "none": _Kind(_none_text, _none_value),
    "bool": _Kind(_bool_text, _bool_value),
    "int": _Kind(_int_text, _int_value),
    "float": _Kind(_float_text, _float_value),
    "str": _Kind(_keep_text, _str_value, takes_text=True),
    "path": _Kind(_keep_text, _path_value, takes_text=True),
    "literal": _Kind(_literal_text, _literal_value, takes_text=True),
    "list": _Kind(_yaml_text, _list_value),
    "dict": _Kind(_yaml_text, _dict_value),
    "union": _Kind(_union_text, _union_value),
}


def _takes_text(ptype: ParamType) -> bool:
    return _KINDS[ptype.kind].takes_text or (
        ptype.kind == "union" and any(a.kind in ("str", "path") for a in ptype.args)
    )


def _from_text(text: str, ptype: ParamType) -> Any:
    """A command-line string as a value of ``ptype``."""
    kind = _KINDS.get(ptype.kind)
    if kind is None:
        raise _Mismatch
    return kind.text(text, ptype)


def _check(value: Any, ptype: ParamType) -> Any:
    """Coerce an already-typed value (YAML file, Python, params.json); strings for other kinds are read as text."""
    kind = _KINDS.get(ptype.kind)
    if kind is None:
        raise _Mismatch
    if isinstance(value, YamlValue):
        return _from_node(value.node, ptype)
    if isinstance(value, str) and not _takes_text(ptype):
        return _from_text(value, ptype)
    return kind.value(value, ptype)


def _from_node(node: Any, ptype: ParamType) -> Any:
    """A composed YAML node as a value of ``ptype``: plain scalars are read as text of that type."""
    import yaml

    from .._yaml import construct_yaml

    kind = ptype.kind
    if isinstance(node, yaml.ScalarNode):
        if node.style:  # quoted or block scalars are text
            return _check(node.value, ptype)
        if kind == "union":
            return _first_member(ptype, lambda member: _from_node(node, member), none_first=True)
        if kind in _SCALARS or kind == "literal":
            try:
                return _from_text(node.value, ptype)
            except _Mismatch:
                if _takes_text(ptype):
                    raise
        return _check(construct_yaml(node), ptype)  # YAML's own spellings: 0x1f, .inf, 1.0 for an int
    if kind == "union":
        return _first_member(ptype, lambda member: _from_node(node, member))
    if kind == "list" and isinstance(node, yaml.SequenceNode):
        item = ptype.args[0] if ptype.args else ANY
        return [_from_node(n, item) for n in node.value]
    if kind == "dict" and isinstance(node, yaml.MappingNode):
        key_t, val_t = _dict_key_types(ptype)
        return {str(_from_node(k, key_t)): _from_node(v, val_t) for k, v in node.value}
    return _check(construct_yaml(node), ptype)


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
    example = _HINTS.get(ptype.kind) or (
        "one of " + ", ".join(map(repr, ptype.choices)) if ptype.kind == "literal" else ""
    )
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

    Raises ``ValueError`` naming the parameter, its type and the fix; text over
    ``MAX_VALUE_BYTES`` and YAML with anchors or aliases are refused before any parsing work.
    """
    from .._yaml import MAX_VALUE_BYTES, UnsafeYAMLError

    if text and len(value) > MAX_VALUE_BYTES // 4 and len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise ValueError(
            f"parameter {param.name!r}: the value is {len(value.encode('utf-8', 'surrogatepass'))} bytes, over the "
            f"{MAX_VALUE_BYTES}-byte limit for one value; pass large data as a file (a Path parameter) instead"
        )
    try:
        return _from_text(value, param.type) if text else _check(value, param.type)
    except UnsafeYAMLError as exc:
        raise ValueError(f"parameter {param.name!r}: {exc}") from None
    except _Mismatch:
        origin = "declared in the parameters cell" if param.declared else f"the type of its default {param.source}"
        shown = repr(value)
        shown = shown if len(shown) <= 200 else shown[:199] + "…"
        raise ValueError(
            f"parameter {param.name!r} expects {param.type} ({origin}); got {shown}: {_hint(param, value)}"
        ) from None


def load_parameters_file(path: str | os.PathLike[str]) -> dict[str, YamlValue]:
    """The ``name: value`` mapping of a YAML parameters file, values kept as written until validated.

    Parameters
    ----------
    path : path-like
        A YAML file holding one mapping of parameter names to values.

    Returns
    -------
    dict of str to YamlValue
        Values for :func:`validate_params` (``values=``); a YAML list's ``items()`` are a sweep's values.

    Raises
    ------
    FileNotFoundError, ValueError
        A missing file, or one that is not a mapping, not YAML, over ``MAX_FILE_BYTES`` or using
        anchors or aliases; the message names the file and the fix.
    """
    import yaml

    from .._yaml import MAX_FILE_BYTES, compose_yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameters file {path} not found")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(
            f"parameters file {path} is {path.stat().st_size} bytes, over the {MAX_FILE_BYTES}-byte limit; "
            "pass large data as a file (a Path parameter) instead"
        )
    try:
        node = compose_yaml(path.read_text(), max_bytes=MAX_FILE_BYTES)
    except yaml.YAMLError as exc:
        raise ValueError(f"parameters file {path} is not valid YAML: {exc}") from exc
    except ValueError as exc:
        raise ValueError(f"parameters file {path}: {exc}") from None
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        kind = "list" if isinstance(node, yaml.SequenceNode) else "single value"
        raise ValueError(f"parameters file {path} must be a YAML mapping of name: value, got a {kind}")
    out: dict[str, YamlValue] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise ValueError(
                f"parameters file {path}: line {key.start_mark.line + 1} has a key that is not a parameter name"
            )
        out[key.value] = YamlValue(value)
    return out


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
            f"{did_you_mean}\nvalid parameters:\n{spec.describe()}"
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
            value = (
                str((origin / Path(value).expanduser()).resolve())
                if not Path(value).expanduser().is_absolute()
                else str(Path(value).expanduser())
            )
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
