"""Checkers for the keys of a profiles file: each reports what is wrong with its path; all are raised together."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .._checks import is_finite_number, is_whole_number
from .model import _SLUG, _TOLERATION_KEYS, USERNAME, parse_memory

_SECRET_PREFIX = re.compile(r"^[a-z0-9][-a-z0-9.]*$")

_BAD = object()  # a checker's answer for a value it reported as a problem


class Problems:
    """Problems found in a profiles file, each as ``path: what is wrong``; raised together."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> object:
        self.items.append(f"{path}: {message}")
        return _BAD

    def raise_if_any(self) -> None:
        if len(self.items) == 1:
            raise ValueError(self.items[0])
        if self.items:
            raise ValueError(f"{len(self.items)} problems:\n  " + "\n  ".join(self.items))


Checker = Callable[[Any, str, Problems], Any]


def _show(value: Any) -> str:
    """A value as it reads in YAML (``true``, ``.nan``), else its repr."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, float) and not math.isfinite(value):
        return ".nan" if math.isnan(value) else ("-.inf" if value < 0 else ".inf")
    return repr(value)


def _is_number(value: Any) -> bool:
    return is_finite_number(value)


def _count(minimum: int) -> Checker:
    def check(value: Any, path: str, problems: Problems) -> Any:
        if not is_whole_number(value, minimum):
            return problems.add(path, f"expected a whole number >= {minimum}, got {_show(value)}")
        return value

    return check


def _seconds(whole: bool) -> Checker:
    """A duration of at least one second (shorter intervals would make a busy loop)."""

    def check(value: Any, path: str, problems: Problems) -> Any:
        if not _is_number(value) or (whole and not isinstance(value, int)):
            kind = "a whole number of seconds" if whole else "a number of seconds"
            return problems.add(path, f"expected {kind}, got {_show(value)}")
        if value < 1:
            return problems.add(path, f"expected at least 1 second, got {_show(value)}")
        return value

    return check


def _percent(value: Any, path: str, problems: Problems) -> Any:
    if not _is_number(value) or not 0 <= value <= 100:
        return problems.add(path, f"expected a utilisation in percent (0-100), got {_show(value)}")
    return float(value)


def _text(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str):
        return problems.add(path, f"expected a string, got {_show(value)}")
    return value


def _flag(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, bool):
        return problems.add(path, f"expected true or false, got {_show(value)}")
    return value


def _names(value: Any, path: str, problems: Problems) -> Any:
    """A list of strings (``groups: gpu-users`` is a string, not a list of one name)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return problems.add(path, f"expected a list of names such as [gpu-users], got {_show(value)}")
    return tuple(value)


def _string_map(value: Any, path: str, problems: Problems) -> Any:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str | int | float) for v in value.values()):
        return problems.add(path, f"expected a mapping of names to plain values, got {_show(value)}")
    return {str(k): str(v) for k, v in value.items()}


def _tolerations(value: Any, path: str, problems: Problems) -> Any:
    if value is None:
        return []
    if not isinstance(value, list):
        return problems.add(path, f"expected a list of tolerations, got {_show(value)}")
    for i, tol in enumerate(value):
        if not isinstance(tol, Mapping) or set(tol) - _TOLERATION_KEYS:
            problems.add(
                f"{path}[{i}]", f"expected a mapping with keys from {sorted(_TOLERATION_KEYS)}, got {_show(tol)}"
            )
    return [dict(t) for t in value] if all(isinstance(t, Mapping) for t in value) else _BAD


def _secret_name(value: Any) -> bool:
    """A Secret name, or a prefix followed by ``{username}`` (one Secret per user)."""
    if not isinstance(value, str):
        return False
    prefix = value[: -len(USERNAME)] if value.endswith(USERNAME) else None
    return bool(_SLUG.match(value) or (prefix and _SECRET_PREFIX.match(prefix)))


def _secret_names(value: Any, path: str, problems: Problems) -> Any:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(_secret_name(v) for v in value):
        return problems.add(
            path,
            "secrets must be a list of Kubernetes Secret names such as [kaggle-api] (or a prefix ending in "
            f"{USERNAME}, one Secret per user, such as optuna-{USERNAME}), got {_show(value)}",
        )
    return tuple(value)


def per_user_secret_clashes(profiles: Iterable[Any]) -> list[str]:
    """Problems where a ``prefix{username}`` entry could name another entry's Secret for some user:
    its prefix must start no other entry (``optuna-{username}`` next to ``optuna-ro-{username}`` or
    ``optuna-shared`` would let user ``ro-...`` or ``shared`` take it)."""
    entries = {entry for profile in profiles for entry in profile.secrets}
    problems = []
    for template in sorted(e for e in entries if e.endswith(USERNAME)):
        prefix = template[: -len(USERNAME)]
        for other in sorted(entries - {template}):
            if other.startswith(prefix):
                problems.append(
                    f"{template} could name the Secret of {other} for some user; give per-user Secrets a "
                    "prefix that no other secret name starts with"
                )
    return problems


def _slug(value: Any, path: str, problems: Problems) -> Any:
    if not isinstance(value, str) or not _SLUG.match(value) or len(value) > 63:
        return problems.add(path, f"slug must be lowercase letters, digits and '-' (a DNS label), got {_show(value)}")
    return value


def _limit_and_guarantee(value: Any, path: str, problems: Problems) -> dict[str, Any] | None:
    """``{"limit": ..., "guarantee": ...}`` as written (a missing guarantee is the limit, checked once)."""
    if not isinstance(value, Mapping) or "limit" not in value or set(value) - {"limit", "guarantee"}:
        problems.add(path, "expected a mapping with 'limit' (and optionally 'guarantee')")
        return None
    return {str(k): v for k, v in value.items()}


def _cpu(value: Any, path: str, problems: Problems) -> Any:
    given = _limit_and_guarantee(value, path, problems)
    if given is None:
        return _BAD
    bad = [
        problems.add(f"{path}.{name}", f"expected a number of cores, got {_show(v)}")
        for name, v in given.items()
        if not _is_number(v)
    ]
    if bad:
        return _BAD
    limit = float(given["limit"])
    guarantee = float(given.get("guarantee", limit))
    if guarantee > limit or limit <= 0 or guarantee < 0:
        return problems.add(path, f"cpu guarantee {guarantee} must be positive and at most the limit {limit}")
    return limit, guarantee


def _memory(value: Any, path: str, problems: Problems) -> Any:
    given = _limit_and_guarantee(value, path, problems)
    if given is None:
        return _BAD
    sizes = {}
    for name, v in given.items():
        if (
            isinstance(v, bool)
            or (isinstance(v, float) and not math.isfinite(v))
            or not isinstance(v, str | int | float)
        ):
            problems.add(f"{path}.{name}", f"expected a size such as 4G or 512Mi, got {_show(v)}")
            continue
        try:
            sizes[name] = parse_memory(v)
        except ValueError as exc:
            problems.add(f"{path}.{name}", str(exc))
    if len(sizes) != len(given):
        return _BAD
    limit, guarantee = str(given["limit"]), str(given.get("guarantee", given["limit"]))
    if sizes["limit"] <= 0:
        return problems.add(f"{path}.limit", f"expected a positive size, got {_show(given['limit'])}")
    if sizes.get("guarantee", 0) > sizes["limit"]:
        return problems.add(path, f"memory guarantee {guarantee} exceeds the limit {limit}")
    return limit, guarantee


@dataclass(frozen=True)
class Field:
    """One key of a mapping in the file: whether it must be there, its checker, its default."""

    check: Checker
    required: bool = False
    default: Any = None
