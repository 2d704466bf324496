"""The pipeline file: notebooks as steps of a DAG, validated before anything runs.

A pipeline file is YAML::

    name: telco-stack
    parameters: {seed: 0}              # overridable with -p seed=1
    schedule: "0 3 * * *"              # calendar mode (optional)
    webhook: {enabled: true, parameters: [seed]}   # webhook mode (optional)
    steps:
      train:
        notebook: train.ipynb          # relative to the pipeline file
        foreach: {model: [lgbm, logreg]}   # one step per value: train-lgbm, train-logreg
        parameters: {seed: "${params.seed}"}   # every expansion
        each: {lgbm: {learning_rate: 0.05}}    # one expansion's own parameters, by its key
        profile: cpu-small
        retries: 1
        timeout: 10m
      stack:
        notebook: stack.ipynb
        parameters: {train_runs: "${steps.train.runs}"}

``${params.NAME}`` is a pipeline parameter (replaced while parsing), ``${steps.GROUP.run}`` the run
directory of step ``GROUP`` (it may sit inside a longer string) and ``${steps.GROUP.runs}`` the list
of run directories of all of a fanned-out step's expansions (the whole value). Steps depend on the
steps they reference and on those named in ``after:``. Cycles, unknown keys, references, notebook
parameters and values of the wrong type are :class:`PipelineError` naming the file, step and key.

An expansion's key is its name after the step's (``lgbm`` for ``train-lgbm``; values joined by
``-`` for several ``foreach`` parameters). Each expansion is its own step with its own parameters,
so its cache key changes only with its own values: giving one expansion another value (in
``each:``, or with ``-p train[lgbm].learning_rate=0.1``) re-runs that expansion and what depends on
it, not its siblings.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..._checks import is_finite_number, is_whole_number
from ..params import NotebookSpec, Parameter, ParamType, coerce_value, inspect_notebook, validate_params
from .overrides import StepOverride, split_overrides

if TYPE_CHECKING:
    from ...profiles import ProfileSet

PIPELINE_KEYS = ("name", "description", "parameters", "steps", "schedule", "webhook")
STEP_KEYS = ("notebook", "parameters", "after", "foreach", "each", "profile", "retries", "timeout")
MAX_NAME = 63
_DNS = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REF = re.compile(r"\$\{([^}]*)\}")
_REF_BODY = re.compile(r"^(?:params\.([A-Za-z_]\w*)|steps\.([a-z0-9][-a-z0-9]*)\.(run|runs))$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
PLACEHOLDER_RUN = "/pipeline/step/run"


class PipelineError(ValueError):
    """A pipeline file that cannot run; the message names the file, the step and the key."""


@dataclass(frozen=True)
class Reference:
    """One ``${...}`` in a step parameter: ``kind`` is ``params`` or ``steps``; ``attr`` ``run``/``runs``."""

    text: str
    kind: str
    name: str
    attr: str | None = None


@dataclass(frozen=True)
class Webhook:
    """Webhook mode: ``enabled``, and the pipeline parameters a payload may set."""

    enabled: bool = True
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True)
class Step:
    """One notebook run of the pipeline (a ``foreach`` step gives one per value)."""

    name: str
    group: str
    notebook: Path
    parameters: dict[str, Any]
    after: tuple[str, ...] = ()
    profile: str | None = None
    retries: int = 0
    timeout: float | None = None
    foreach: dict[str, Any] = field(default_factory=dict)

    @property
    def upstream_groups(self) -> tuple[str, ...]:
        """The groups this step's parameters reference (``${steps.GROUP...}``), in order of first use."""
        return tuple(dict.fromkeys(r.name for r in references(self.parameters) if r.kind == "steps"))

    @property
    def key(self) -> str | None:
        """A ``foreach`` expansion's key (``lgbm`` for ``train-lgbm``), as ``each:`` and ``-p STEP[KEY]`` name it."""
        return self.name[len(self.group) + 1 :] if self.foreach else None


@dataclass(frozen=True)
class Pipeline:
    """A parsed, validated pipeline: steps in dependency order, foreach expanded."""

    name: str
    description: str
    parameters: dict[str, Any]
    steps: tuple[Step, ...]
    schedule: str | None = None
    webhook: Webhook | None = None
    source: Path | None = None
    digest: str = ""

    def step(self, name: str) -> Step:
        """The step called ``name`` (``KeyError`` listing the steps otherwise)."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"pipeline {self.name!r} has no step {name!r}; its steps are {[s.name for s in self.steps]}")

    @property
    def groups(self) -> dict[str, tuple[str, ...]]:
        """Each declared step's name → the names of its expansions, in dependency order."""
        out: dict[str, list[str]] = {}
        for step in self.steps:
            out.setdefault(step.group, []).append(step.name)
        return {k: tuple(v) for k, v in out.items()}

    def downstream(self, names: Sequence[str]) -> set[str]:
        """Names of the steps that depend, directly or not, on any of ``names`` (those excluded)."""
        found: set[str] = set()
        frontier = set(names)
        while frontier:
            frontier = {s.name for s in self.steps if set(s.after) & frontier and s.name not in found}
            found |= frontier
        return found - set(names)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: Path | None = None) -> Pipeline:
        """The pipeline :meth:`to_dict` wrote (e.g. the definition a pipeline run recorded)."""
        webhook = data.get("webhook")
        steps = tuple(
            Step(
                name=s["name"],
                group=s["group"],
                notebook=Path(s["notebook"]),
                parameters=dict(s["parameters"]),
                after=tuple(s["after"]),
                profile=s.get("profile"),
                retries=int(s.get("retries", 0)),
                timeout=s.get("timeout"),
                foreach=dict(s.get("foreach") or {}),
            )
            for s in data["steps"]
        )
        return _with(
            cls(
                name=data["name"],
                description=data.get("description", ""),
                parameters=dict(data.get("parameters") or {}),
                steps=steps,
                schedule=data.get("schedule"),
                webhook=None if webhook is None else Webhook(bool(webhook["enabled"]), tuple(webhook["parameters"])),
            ),
            source=source,
        )

    def to_dict(self) -> dict[str, Any]:
        """The resolved definition as JSON-ready data (what :attr:`digest` hashes)."""
        return {
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "schedule": self.schedule,
            "webhook": None
            if self.webhook is None
            else {"enabled": self.webhook.enabled, "parameters": list(self.webhook.parameters)},
            "steps": [
                {
                    "name": s.name,
                    "group": s.group,
                    "notebook": str(s.notebook),
                    "parameters": s.parameters,
                    "after": list(s.after),
                    "profile": s.profile,
                    "retries": s.retries,
                    "timeout": s.timeout,
                    "foreach": s.foreach,
                }
                for s in self.steps
            ],
        }


# ----------------------------------------------------------------------------------------------
# References


def references(value: Any) -> list[Reference]:
    """Every ``${...}`` reference inside ``value`` (strings, lists and dict values, walked in order).

    >>> [r.name for r in references({"a": "${steps.train.run}/cv", "b": ["${params.seed}"]})]
    ['train', 'seed']
    """
    found: list[Reference] = []
    if isinstance(value, str):
        for match in _REF.finditer(value):
            body = _REF_BODY.match(match.group(1).strip())
            if body is None:
                found.append(Reference(match.group(0), "unknown", match.group(1)))
            elif body.group(1):
                found.append(Reference(match.group(0), "params", body.group(1)))
            else:
                found.append(Reference(match.group(0), "steps", body.group(2), body.group(3)))
    elif isinstance(value, Mapping):
        for item in value.values():
            found.extend(references(item))
    elif isinstance(value, list | tuple):
        for item in value:
            found.extend(references(item))
    return found


def _substitute(value: Any, replace: Any) -> Any:
    """``value`` with each reference replaced by ``replace(ref)``; a whole-value reference keeps its type."""
    if isinstance(value, str):
        match = _REF.fullmatch(value)
        if match is not None:
            return replace(references(value)[0])
        return _REF.sub(lambda m: str(replace(references(m.group(0))[0])), value)
    if isinstance(value, Mapping):
        return {k: _substitute(v, replace) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_substitute(v, replace) for v in value]
    return value


def resolve(step: Step, runs: Mapping[str, Sequence[str | os.PathLike[str]]]) -> dict[str, Any]:
    """``step``'s parameters with ``${steps.GROUP.run|runs}`` replaced by run directories.

    Parameters
    ----------
    step : Step
        A step of a parsed pipeline.
    runs : mapping of str to list of path
        Each upstream group's run directories, one per expansion, in the pipeline's step order.

    Returns
    -------
    dict
        The parameters, ``.run`` as a path string and ``.runs`` as a list of path strings.

    Examples
    --------
    >>> s = Step("stack", "stack", Path("stack.ipynb"), {"train_runs": "${steps.train.runs}"})
    >>> resolve(s, {"train": ["/r/a", "/r/b"]})
    {'train_runs': ['/r/a', '/r/b']}
    """

    def replace(ref: Reference) -> Any:
        if ref.kind != "steps":
            raise PipelineError(f"step {step.name!r}: {ref.text} cannot be resolved when the step runs")
        dirs = [str(p) for p in runs.get(ref.name, ())]  # a group, or one expansion (train-lgbm)
        if not dirs:
            raise PipelineError(f"step {step.name!r}: no run of step {ref.name!r} for {ref.text}")
        if ref.attr == "runs":
            return dirs
        if len(dirs) != 1:
            raise PipelineError(
                f"step {step.name!r}: {ref.text} names {len(dirs)} runs; use ${{steps.{ref.name}.runs}}"
            )
        return dirs[0]

    return {k: _substitute(v, replace) for k, v in step.parameters.items()}


# ----------------------------------------------------------------------------------------------
# Parsing


@dataclass
class _Context:
    source: str
    base_dir: Path
    profiles: ProfileSet | None
    specs: dict[Path, NotebookSpec] = field(default_factory=dict)
    expanded: dict[str, str] = field(default_factory=dict)  # a fanned-out step's expansion → its group

    def error(self, message: str, step: str | None = None, key: str | None = None) -> PipelineError:
        where = "".join([f", step {step!r}" if step else "", f", key {key!r}" if key else ""])
        return PipelineError(f"{self.source}{where}: {message}")


def load_pipeline(
    path: str | os.PathLike[str],
    overrides: Mapping[str, str] | None = None,
    *,
    profiles: ProfileSet | None = None,
) -> Pipeline:
    """Read and validate the pipeline file at ``path``; ``overrides`` are ``-p`` texts for its parameters.

    Parameters
    ----------
    path : path-like
        The YAML pipeline file; notebooks are found relative to its folder.
    overrides : mapping of str to str, optional
        ``-p`` texts: ``NAME`` sets a pipeline parameter (coerced to the type of its default),
        ``STEP.PARAM`` a notebook parameter of every expansion of step ``STEP`` and
        ``STEP[KEY].PARAM`` one of expansion ``KEY`` only (coerced to the notebook's type).
    profiles : ProfileSet, optional
        Hub profiles to check each step's ``profile`` against.

    Returns
    -------
    Pipeline

    Examples
    --------
    >>> from pathlib import Path
    >>> p = load_pipeline(Path(__file__).parents[3] / "notebooks" / "pipeline.yaml")
    >>> [s.name for s in p.steps][:3]
    ['train-lgbm', 'train-logreg', 'train-extratrees']
    """
    import yaml

    from ..._yaml import MAX_FILE_BYTES, UnsafeYAMLError, load_yaml

    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"pipeline file {path} not found")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise PipelineError(f"{path}: {size} bytes is over the {MAX_FILE_BYTES}-byte limit for a pipeline file")
    try:
        data = load_yaml(path.read_text(encoding="utf-8"), max_bytes=MAX_FILE_BYTES)
    except UnsafeYAMLError as exc:
        raise PipelineError(f"{path}: {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise PipelineError(f"{path} is not valid YAML: {exc}") from None
    pipeline = parse_pipeline(
        data, base_dir=path.resolve().parent, source=str(path), overrides=overrides, profiles=profiles
    )
    return _with(pipeline, source=path.resolve())


def parse_pipeline(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    source: str = "<pipeline>",
    overrides: Mapping[str, str] | None = None,
    profiles: ProfileSet | None = None,
) -> Pipeline:
    """Validate pipeline ``data`` (the parsed YAML); notebooks resolve against ``base_dir``.

    Parameters
    ----------
    data : mapping
        The pipeline definition.
    base_dir : Path
        The folder relative notebook and file paths are read from.
    source : str
        How errors name the definition (the file's path).
    overrides : mapping of str to str, optional
        ``-p`` texts, as for :func:`load_pipeline`.
    profiles : ProfileSet, optional
        Hub profiles to check each step's ``profile`` against.

    Returns
    -------
    Pipeline
        Steps expanded, validated and in dependency order.
    """
    ctx = _Context(source, Path(base_dir), profiles)
    if not isinstance(data, Mapping):
        raise ctx.error("a pipeline file must be a YAML mapping with 'name' and 'steps'")
    _unknown_keys(ctx, data, PIPELINE_KEYS, None)
    name = _pipeline_name(ctx, data.get("name"), source)
    description = data.get("description") or ""
    if not isinstance(description, str):
        raise ctx.error("expected text", key="description")
    try:
        pipeline_texts, step_texts = split_overrides(overrides or {})
    except ValueError as exc:
        raise ctx.error(str(exc)) from None
    params = _pipeline_parameters(ctx, data.get("parameters"), pipeline_texts)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, Mapping) or not raw_steps:
        raise ctx.error("needs a non-empty mapping of step names to steps", key="steps")
    ctx.expanded = _expansion_names(raw_steps)
    step_texts = _override_steps(ctx, step_texts, raw_steps)
    steps = [
        s
        for group, raw in raw_steps.items()
        for s in _parse_step(ctx, group, raw, params, raw_steps, [o for o in step_texts if o.group == group])
    ]
    ordered = _topological(ctx, steps, list(raw_steps))
    pipeline = Pipeline(
        name=name,
        description=description,
        parameters=params,
        steps=tuple(ordered),
        schedule=_schedule(ctx, data.get("schedule")),
        webhook=_webhook(ctx, data.get("webhook"), params),
        source=None,
    )
    return _with(pipeline)


def _with(pipeline: Pipeline, **changes: Any) -> Pipeline:
    from dataclasses import replace

    pipeline = replace(pipeline, **changes)
    text = json.dumps(pipeline.to_dict(), sort_keys=True, default=str)
    return replace(pipeline, digest=hashlib.sha256(text.encode()).hexdigest())


def _unknown_keys(ctx: _Context, data: Mapping[str, Any], known: Sequence[str], step: str | None) -> None:
    import difflib

    for key in data:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys are {', '.join(known)}"
            raise ctx.error(f"unknown key{hint}", step=step, key=str(key))


def _dns_name(ctx: _Context, name: Any, what: str, step: str | None = None, key: str | None = None) -> str:
    if not isinstance(name, str) or len(name) > MAX_NAME or not _DNS.match(name):
        raise ctx.error(
            f"{what} {name!r} must be lower-case letters, digits and '-' (starting and ending with a letter "
            f"or digit, at most {MAX_NAME} characters), e.g. {_slug(str(name)) or 'train'!r}",
            step=step,
            key=key,
        )
    return name


def _slug(text: str) -> str:
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")[:MAX_NAME]


def _pipeline_name(ctx: _Context, name: Any, source: str) -> str:
    if name is None:
        name = _slug(Path(source).stem) if source != "<pipeline>" else None
        if not name:
            raise ctx.error("a pipeline needs a name", key="name")
    return _dns_name(ctx, name, "pipeline name", key="name")


def _type_of(value: Any) -> ParamType:
    for kind, cls in (("bool", bool), ("int", int), ("float", float), ("str", str), ("list", list), ("dict", dict)):
        if isinstance(value, cls):
            return ParamType(kind)
    return ParamType("any")


def _pipeline_parameters(ctx: _Context, raw: Any, overrides: Mapping[str, str]) -> dict[str, Any]:
    raw = {} if raw is None else raw
    if not isinstance(raw, Mapping):
        raise ctx.error("expected a mapping of parameter names to default values", key="parameters")
    params: dict[str, Any] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _PARAM_NAME.match(name):
            raise ctx.error("parameter names are identifiers (letters, digits, '_')", key=f"parameters.{name}")
        if references(value):
            raise ctx.error("a pipeline parameter's default cannot hold ${...}", key=f"parameters.{name}")
        params[name] = value
    for name, text in overrides.items():
        if name not in params:
            raise ctx.error(
                f"no pipeline parameter {name!r} to set with -p; the pipeline's parameters are {sorted(params)}",
                key=f"parameters.{name}",
            )
        try:
            params[name] = coerce_value(
                Parameter(name, _type_of(params[name]), params[name], repr(params[name])), text, text=True
            )
        except ValueError as exc:
            raise ctx.error(str(exc), key=f"parameters.{name}") from None
    return params


def _schedule(ctx: _Context, value: Any) -> str | None:
    if value is None:
        return None
    from croniter import croniter

    if not isinstance(value, str) or not croniter.is_valid(value):
        raise ctx.error(
            f"{value!r} is not a cron expression; write five fields, e.g. '0 3 * * *' (03:00 every day)",
            key="schedule",
        )
    return value


def _webhook(ctx: _Context, value: Any, params: Mapping[str, Any]) -> Webhook | None:
    if value is None or value is False:
        return None
    if value is True:
        return Webhook()
    if not isinstance(value, Mapping):
        raise ctx.error("expected true or a mapping with 'enabled' and 'parameters'", key="webhook")
    _unknown_keys(ctx, {f"webhook.{k}": v for k, v in value.items()}, ("webhook.enabled", "webhook.parameters"), None)
    enabled = value.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ctx.error(f"expected true or false, got {enabled!r}", key="webhook.enabled")
    names = value.get("parameters", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ctx.error("expected a list of pipeline parameter names", key="webhook.parameters")
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ctx.error(f"{unknown} are not pipeline parameters ({sorted(params)})", key="webhook.parameters")
    return Webhook(enabled=enabled, parameters=tuple(names))


# ----------------------------------------------------------------------------------------------
# Steps


def _parse_step(
    ctx: _Context,
    group: Any,
    raw: Any,
    params: Mapping[str, Any],
    all_steps: Mapping[str, Any],
    overrides: Sequence[StepOverride] = (),
) -> list[Step]:
    group = _dns_name(ctx, group, "step name", step=str(group))
    if not isinstance(raw, Mapping):
        raise ctx.error("a step is a mapping with at least 'notebook'", step=group)
    _unknown_keys(ctx, raw, STEP_KEYS, group)
    spec = _notebook(ctx, group, raw.get("notebook"))
    raw_params = raw.get("parameters") or {}
    if not isinstance(raw_params, Mapping):
        raise ctx.error("expected a mapping of notebook parameter names to values", step=group, key="parameters")
    values = {str(k): _params_refs(ctx, group, str(k), v, params, all_steps) for k, v in raw_params.items()}
    after = _after(ctx, group, raw.get("after"), all_steps)
    profile = _profile(ctx, group, raw.get("profile"))
    retries = raw.get("retries", 0)
    if not is_whole_number(retries, 0, 10):
        raise ctx.error(f"expected a whole number from 0 to 10, got {retries!r}", step=group, key="retries")
    timeout = _timeout(ctx, group, raw.get("timeout"))
    points = _foreach(ctx, group, raw.get("foreach"), spec, values)
    keys = [expansion_key(p) for p in points if p]
    each = _each(ctx, group, raw.get("each"), keys, set(points[0]), params, all_steps)
    typed_overrides = _step_overrides(ctx, group, spec, overrides, keys, set(points[0]), values, each)
    out = []
    for point in points:
        key = expansion_key(point) if point else None
        name = group if not point else _expansion_name(ctx, group, point)
        own, where = dict(values), {}
        for param, value in each.get(key or "", {}).items():
            own[param], where[param] = value, f"each.{key}.{param}"
        for override, value in sorted(typed_overrides, key=lambda item: item[0].key is not None):
            if override.key in (None, key):
                own[override.param], where[override.param] = value, override.shown
        typed = _check_parameters(ctx, name, spec, {**own, **point}, where)
        upstream = [s for r in references(typed) if r.kind == "steps" for s in [r.name]]
        deps = tuple(dict.fromkeys([*after, *upstream]))
        out.append(Step(name, group, spec.path, typed, deps, profile, retries, timeout, dict(point)))
    return out


def _override_steps(
    ctx: _Context, overrides: Sequence[StepOverride], raw_steps: Mapping[str, Any]
) -> list[StepOverride]:
    """Every ``-p STEP...`` checked to name a step of the file; ``-p train-lgbm.X`` read as ``-p train[lgbm].X``."""
    from dataclasses import replace

    out = []
    for o in overrides:
        group = ctx.expanded.get(o.group)
        if o.group in raw_steps:
            out.append(o)
        elif group is not None and o.key is None:
            out.append(replace(o, group=group, key=o.group[len(group) + 1 :]))
        else:
            steps = [*map(str, raw_steps), *ctx.expanded]
            raise ctx.error(f"{o.shown}: no step {o.group!r}; the steps are {', '.join(steps)}")
    return out


def _each(
    ctx: _Context,
    group: str,
    value: Any,
    keys: list[str],
    fanned: set[str],
    params: Mapping[str, Any],
    all_steps: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """``each:``, one expansion's own parameters by its key, with ``${params.X}`` replaced."""
    if value is None:
        return {}
    if not keys:
        raise ctx.error(
            "'each' sets parameters of single foreach expansions, and this step has no foreach; "
            "put them in 'parameters'",
            step=group,
            key="each",
        )
    example = f"e.g. each: {{{keys[0]}: {{learning_rate: 0.05}}}}"
    if not isinstance(value, Mapping) or not value:
        raise ctx.error(
            f"expected a mapping of expansion keys ({', '.join(keys)}) to parameters, {example}", group, "each"
        )
    out: dict[str, dict[str, Any]] = {}
    for raw_key, item in value.items():
        key = raw_key if isinstance(raw_key, str) else expansion_key({"k": raw_key})
        if key not in keys:
            raise ctx.error(
                f"no expansion {key!r}; the expansions of {group!r} are {', '.join(keys)} "
                f"(an expansion's key is its step name after '{group}-')",
                step=group,
                key=f"each.{key}",
            )
        if not isinstance(item, Mapping) or not item:
            raise ctx.error(
                f"expected a mapping of notebook parameter names to values, {example}", group, f"each.{key}"
            )
        for name in item:
            if name in fanned:
                raise ctx.error(
                    f"{name!r} is the foreach value that names this expansion; set other parameters here",
                    step=group,
                    key=f"each.{key}.{name}",
                )
        out[key] = {
            str(n): _params_refs(ctx, group, str(n), v, params, all_steps, where=f"each.{key}.{n}")
            for n, v in item.items()
        }
    return out


def _step_overrides(
    ctx: _Context,
    group: str,
    spec: NotebookSpec,
    overrides: Sequence[StepOverride],
    keys: list[str],
    fanned: set[str],
    values: Mapping[str, Any],
    each: Mapping[str, Mapping[str, Any]],
) -> list[tuple[StepOverride, Any]]:
    """Each ``-p STEP[KEY].PARAM`` of this step checked and typed like the notebook's parameter."""
    import difflib

    out = []
    for o in overrides:
        if o.key is not None and not keys:
            raise ctx.error(f"{o.shown}: step {group!r} has no foreach; write -p {group}.{o.param}={o.text}", group)
        if o.key is not None and o.key not in keys:
            raise ctx.error(
                f"{o.shown}: step {group!r} has no expansion {o.key!r}; its expansions are {', '.join(keys)} "
                f"(e.g. -p {group}-{keys[0]}.{o.param}={o.text})",
                group,
            )
        param = spec.parameters.get(o.param)
        if param is None:
            close = difflib.get_close_matches(o.param, list(spec.parameters), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ctx.error(
                f"{o.shown}: {spec.path.name} has no parameter {o.param!r}{hint} "
                f"(its parameters are {', '.join(spec.parameters)})",
                group,
            )
        if o.param in fanned:
            raise ctx.error(
                f"{o.shown}: step {group!r} fans out over {o.param!r} (foreach); change its foreach list in the file",
                group,
            )
        written = [values, *(each.values() if o.key is None else [each.get(o.key, {})])]
        if any(references(v.get(o.param)) for v in written):
            raise ctx.error(
                f"{o.shown}: {o.param!r} of step {group!r} reads an upstream step's run in the file, "
                "which -p cannot replace; edit the pipeline file instead",
                group,
            )
        if "${" in o.text:
            raise ctx.error(f"{o.shown}: -p gives plain values; write ${{...}} references in the pipeline file", group)
        try:
            out.append((o, coerce_value(param, o.text, text=True)))
        except ValueError as exc:
            raise ctx.error(f"{o.shown}: {exc}", group) from None
    return out


def _notebook(ctx: _Context, group: str, value: Any) -> NotebookSpec:
    if not isinstance(value, str) or not value:
        raise ctx.error("every step needs the path of its notebook", step=group, key="notebook")
    path = (ctx.base_dir / value).resolve()
    if path not in ctx.specs:
        if not path.is_file():
            raise ctx.error(
                f"notebook {path} not found (paths are relative to the pipeline file)", step=group, key="notebook"
            )
        try:
            ctx.specs[path] = inspect_notebook(path)
        except ValueError as exc:
            raise ctx.error(str(exc), step=group, key="notebook") from None
    return ctx.specs[path]


def _params_refs(
    ctx: _Context,
    group: str,
    key: str,
    value: Any,
    params: Mapping[str, Any],
    all_steps: Mapping[str, Any],
    where: str | None = None,
) -> Any:
    """``value`` with ``${params.X}`` replaced; step references checked and kept."""
    where = where or f"parameters.{key}"
    for ref in references(value):
        if ref.kind == "unknown":
            raise ctx.error(
                f"{ref.text} is not a reference; write ${{params.NAME}}, ${{steps.STEP.run}} or ${{steps.STEP.runs}}",
                step=group,
                key=where,
            )
        if ref.kind == "params" and ref.name not in params:
            raise ctx.error(f"{ref.text}: no pipeline parameter {ref.name!r} ({sorted(params)})", step=group, key=where)
        if ref.kind == "steps":
            if ref.name not in all_steps and ref.name not in ctx.expanded:
                known = [*all_steps, *ctx.expanded]
                raise ctx.error(f"{ref.text}: no step {ref.name!r} ({known})", step=group, key=where)
            if ctx.expanded.get(ref.name, ref.name) == group:
                raise ctx.error(f"{ref.text}: a step cannot use its own run", step=group, key=where)
            fans_out = ref.name in all_steps and any(g == ref.name for g in ctx.expanded.values())
            if ref.attr == "run" and fans_out:
                raise ctx.error(
                    f"{ref.text}: step {ref.name!r} fans out with foreach; use ${{steps.{ref.name}.runs}} for the list",
                    step=group,
                    key=where,
                )
            if ref.attr == "runs" and not (isinstance(value, str) and _REF.fullmatch(value)):
                raise ctx.error(f"{ref.text} is a list, so it must be the whole value", step=group, key=where)
    return _substitute(value, lambda r: params[r.name] if r.kind == "params" else r.text)


def _after(ctx: _Context, group: str, value: Any, all_steps: Mapping[str, Any]) -> list[str]:
    if value is None:
        return []
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ctx.error("expected a step name or a list of step names", step=group, key="after")
    for name in names:
        if name not in all_steps:
            raise ctx.error(f"no step {name!r}; the steps are {list(all_steps)}", step=group, key="after")
        if name == group:
            raise ctx.error("a step cannot run after itself", step=group, key="after")
    return names


def _profile(ctx: _Context, group: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ctx.error(f"expected a profile name, got {value!r}", step=group, key="profile")
    if ctx.profiles is not None and value not in {p.slug for p in ctx.profiles.profiles}:
        raise ctx.error(
            f"no profile {value!r}; the profiles are {[p.slug for p in ctx.profiles.profiles]}",
            step=group,
            key="profile",
        )
    return value


def _timeout(ctx: _Context, group: str, value: Any) -> float | None:
    if value is None:
        return None
    seconds: float | None = None
    if is_finite_number(value):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds is None or seconds <= 0:
        raise ctx.error(
            f"expected a positive duration such as 600, '10m' or '2h', got {value!r}", step=group, key="timeout"
        )
    return seconds


def _foreach(
    ctx: _Context, group: str, value: Any, spec: NotebookSpec, values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    from ..sweep import expand_grid

    if value is None:
        return [{}]
    if not isinstance(value, Mapping) or not value:
        raise ctx.error("expected a mapping of notebook parameter names to lists of values", step=group, key="foreach")
    for name, items in value.items():
        key = f"foreach.{name}"
        if name not in spec.parameters:
            raise ctx.error(
                f"{spec.path.name} has no parameter {name!r} ({list(spec.parameters)})", step=group, key=key
            )
        if name in values:
            raise ctx.error(f"{name!r} is set in both 'parameters' and 'foreach'; keep one", step=group, key=key)
        if not isinstance(items, list) or not items:
            raise ctx.error(f"expected a non-empty list of values, got {items!r}", step=group, key=key)
        for item in items:
            if isinstance(item, Mapping | list) or item is None:
                raise ctx.error(
                    f"foreach values must be scalars (text, numbers, true/false), got {item!r}", step=group, key=key
                )
            if references(item):
                raise ctx.error("foreach values cannot hold ${...}", step=group, key=key)
    return expand_grid(dict(value))


def _expansion_names(raw_steps: Mapping[str, Any]) -> dict[str, str]:
    """Each fanned-out step's expansion names → its group (malformed ``foreach`` is reported later)."""
    from ..sweep import expand_grid

    out: dict[str, str] = {}
    for group, raw in raw_steps.items():
        foreach = raw.get("foreach") if isinstance(raw, Mapping) else None
        if not isinstance(group, str) or not isinstance(foreach, Mapping) or not foreach:
            continue
        try:
            points = expand_grid(dict(foreach))
        except (ValueError, TypeError):
            continue
        out.update({f"{group}-{expansion_key(p)}": group for p in points})
    return out


def expansion_key(point: Mapping[str, Any]) -> str:
    """The key of the ``foreach`` expansion for ``point`` (its values, in slug form, joined by ``-``).

    >>> expansion_key({"model": "lgbm"}), expansion_key({"model": "Extra Trees", "seed": 1})
    ('lgbm', 'extra-trees-1')
    """
    return "-".join(_slug(str(v)) or "x" for v in point.values())


def _expansion_name(ctx: _Context, group: str, point: Mapping[str, Any]) -> str:
    name = f"{group}-{expansion_key(point)}"
    return _dns_name(ctx, name, "expanded step name", step=group, key="foreach")


def _check_parameters(
    ctx: _Context, name: str, spec: NotebookSpec, values: Mapping[str, Any], where: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The step's values typed against the notebook; step references are checked as path strings.

    ``where`` names where a value came from when not ``parameters.NAME`` (``each.KEY.NAME``, a ``-p``).
    """
    where = where or {}
    stand_in: dict[str, Any] = {}
    for key, value in values.items():
        refs = [r for r in references(value) if r.kind == "steps"]
        if not refs:
            stand_in[key] = value
            continue
        param = spec.parameters.get(key)
        stand_in[key] = [PLACEHOLDER_RUN] if refs[0].attr == "runs" else _substitute(value, lambda r: PLACEHOLDER_RUN)
        if param is not None:
            try:
                coerce_value(param, stand_in[key])
            except ValueError as exc:
                shape = "a list of run directories" if refs[0].attr == "runs" else "a run directory (a path string)"
                label = where.get(key, f"parameters.{key}")
                raise ctx.error(f"{refs[0].text} is {shape}, but {exc}", step=name, key=label) from None
    try:
        typed = validate_params(spec, stand_in, base_dir=ctx.base_dir)
    except ValueError as exc:
        bad = next((k for k in values if k not in spec.parameters), None) or _named_in(str(exc), values)
        label = where.get(bad, f"parameters.{bad}") if bad else "parameters"
        raise ctx.error(str(exc).replace("\n", " "), step=name, key=label) from None
    return {k: (values[k] if any(r.kind == "steps" for r in references(values[k])) else typed[k]) for k in values}


def _named_in(message: str, values: Mapping[str, Any]) -> str | None:
    return next((k for k in values if f"{k!r}" in message), None)


def _topological(ctx: _Context, steps: list[Step], declared: list[str]) -> list[Step]:
    """Steps in dependency order (declaration order among independent ones); a cycle is an error."""
    groups: dict[str, list[Step]] = {}
    for step in steps:
        groups.setdefault(step.group, []).append(step)
    group_of = {s.name: s.group for s in steps} | {g: g for g in groups}
    edges = {g: list(dict.fromkeys(group_of[d] for s in members for d in s.after)) for g, members in groups.items()}
    cycle = _find_cycle(edges, declared)
    if cycle:
        raise ctx.error(
            f"the steps form a cycle: {' -> '.join(cycle)}; remove one of these dependencies",
            step=cycle[0],
            key="after",
        )
    done: list[str] = []
    remaining = list(declared)
    while remaining:
        ready = next(g for g in remaining if all(d in done for d in edges[g]))
        done.append(ready)
        remaining.remove(ready)
    names = {g: [s.name for s in groups[g]] for g in groups} | {s.name: [s.name] for s in steps if s.name != s.group}
    return [
        Step(
            s.name,
            s.group,
            s.notebook,
            s.parameters,
            tuple(n for d in s.after for n in names[d]),
            s.profile,
            s.retries,
            s.timeout,
            s.foreach,
        )
        for g in done
        for s in groups[g]
    ]


def _find_cycle(edges: Mapping[str, list[str]], order: list[str]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in edges.get(node, []):
            if state.get(dep) == 1:
                return [*stack[stack.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in order:
        if node not in state and (found := visit(node)):
            return found
    return None
