"""The models of a stack level: estimators with their own fit options, or results computed earlier."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..models import CVResult

_NAME = re.compile(r"^[A-Za-z0-9_.+\-]+$")
_SUFFIXES = ("Classifier", "Regressor")


@dataclass
class StackModel:
    """One model of a stack level with its own training options.

    ``fit_params`` go to every fold's ``fit`` (per-row ones such as ``sample_weight`` follow the
    fold's rows), ``early_stopping_rounds`` stops LightGBM/XGBoost/CatBoost on the validation fold,
    ``features`` picks columns of the level's input (the original columns at level 1; with
    ``restack=True`` both original and out-of-fold columns above it).

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> StackModel(LGBMClassifier(n_estimators=2000), name="lgbm_es", early_stopping_rounds=100)
    StackModel(estimator=LGBMClassifier(n_estimators=2000), name='lgbm_es', fit_params=None,
               early_stopping_rounds=100, features=None)
    """

    estimator: Any
    name: str | None = None
    fit_params: Mapping[str, Any] | None = None
    early_stopping_rounds: int | None = None
    features: Sequence[str] | None = None


@dataclass
class Member:
    """A resolved level entry: either an estimator to train or a result to use as it is."""

    name: str
    estimator: Any = None
    result: CVResult | None = None
    source_path: Path | None = None
    fit_params: Mapping[str, Any] = field(default_factory=dict)
    early_stopping_rounds: int | None = None
    features: list[str] | None = None

    @property
    def precomputed(self) -> bool:
        return self.result is not None


def auto_name(estimator: Any) -> str:
    """Short lowercase name: ``LGBMClassifier`` → ``lgbm``; a pipeline is named for its last step."""
    steps = getattr(estimator, "steps", None)
    if steps:
        estimator = steps[-1][1]
    cls = estimator if isinstance(estimator, str) else type(estimator).__name__
    for suffix in _SUFFIXES:
        if cls.endswith(suffix) and cls != suffix:
            cls = cls[: -len(suffix)]
    return re.sub(r"[^a-z0-9_]", "", cls.lower()) or "model"


def _check_name(name: str, where: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"{where}: model name {name!r} is not allowed; use letters, digits and _ . + - only "
            "(names become column names such as 'level1/<name>')"
        )
    return name


def _resolve_one(entry: Any, where: str) -> Member:
    name = None
    if isinstance(entry, tuple):
        if len(entry) != 2 or not isinstance(entry[0], str):
            raise TypeError(f"{where}: a tuple entry must be (name, model), got {entry!r}")
        name, entry = entry
        if isinstance(entry, tuple):
            raise TypeError(f"{where}: (name, model) entries cannot be nested")
    if isinstance(entry, StackModel):
        if entry.early_stopping_rounds is not None and int(entry.early_stopping_rounds) <= 0:
            raise ValueError(f"{where}: early_stopping_rounds must be a positive integer or None")
        return Member(
            name=name or entry.name or auto_name(entry.estimator),
            estimator=entry.estimator,
            fit_params=dict(entry.fit_params or {}),
            early_stopping_rounds=entry.early_stopping_rounds,
            features=None if entry.features is None else [str(f) for f in entry.features],
        )
    if isinstance(entry, CVResult):
        return Member(name=name or auto_name(entry.estimator or "result"), result=entry)
    if isinstance(entry, (str, os.PathLike)):
        path = Path(entry)
        if not (path / "result.json").is_file():
            raise ValueError(
                f"{where}: {path} holds no saved CVResult (no result.json); give the directory that "
                "CVResult.save wrote, or an estimator"
            )
        result = CVResult.load(path, models=False)
        return Member(name=name or auto_name(result.estimator or "result"), result=result, source_path=path)
    if hasattr(entry, "fit"):
        return Member(name=name or auto_name(entry), estimator=entry)
    raise TypeError(
        f"{where}: cannot use {type(entry).__name__} as a stack model; give an estimator, a StackModel, "
        "(name, model), a CVResult or the path of a saved CVResult"
    )


def resolve_levels(levels: Sequence[Sequence[Any]]) -> list[list[Member]]:
    """Validate ``levels`` and give every model a unique, column-safe name within its level."""
    if isinstance(levels, (str, bytes)) or not isinstance(levels, Sequence) or len(levels) == 0:
        raise ValueError("levels must be a non-empty list of levels, each a list of models, e.g. [[lgbm, lr], [meta]]")
    out: list[list[Member]] = []
    for k, level in enumerate(levels, start=1):
        if (
            hasattr(level, "fit")
            or isinstance(level, (CVResult, StackModel, str, os.PathLike))
            or not isinstance(level, Sequence)
        ):
            raise ValueError(f"level {k} must be a list of models, got {type(level).__name__}; wrap it: [[model], ...]")
        if len(level) == 0:
            raise ValueError(f"level {k} is empty; every level needs at least one model")
        members = [_resolve_one(entry, f"level {k} model {i + 1}") for i, entry in enumerate(level)]
        explicit = [m.name for m, e in zip(members, level) if isinstance(e, tuple) or getattr(e, "name", None)]
        dupes = sorted({n for n in explicit if explicit.count(n) > 1})
        if dupes:
            raise ValueError(f"level {k} names {dupes} more than once; give each model its own name")
        seen: dict[str, int] = {}
        for m in members:
            base = m.name
            seen[base] = seen.get(base, 0) + 1
            if seen[base] > 1:
                m.name = f"{base}_{seen[base]}"
            _check_name(m.name, f"level {k}")
        names = [m.name for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"level {k} model names collide after numbering: {names}; name the models explicitly")
        for m in members:
            if m.precomputed and k > 1:
                raise ValueError(
                    f"level {k} model {m.name!r} is a precomputed result; only level 1 may use results computed "
                    "elsewhere, since higher levels train on this stack's own out-of-fold predictions"
                )
        out.append(members)
    return out


__all__ = ["Member", "StackModel", "auto_name", "resolve_levels"]
