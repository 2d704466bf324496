"""Search spaces for hyperparameter tuning: ``loguniform(0.005,0.3)``, ``int(15,255)``, ``choice(a,b)``.

A space maps parameter names to :class:`Dimension` objects, written as text (the command line,
a YAML file) or built in Python. :func:`suggest` draws one point of a space from an Optuna trial;
the sampler (TPE, CMA-ES, random, grid) is Optuna's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .._checks import is_finite_number

KINDS = ("uniform", "loguniform", "int", "logint", "choice")
_EXPR = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.S)


@dataclass(frozen=True)
class Dimension:
    """One axis of a search space.

    ``kind`` is ``uniform``/``loguniform`` (floats), ``int``/``logint`` (whole numbers, ``step``
    apart for ``int``) or ``choice`` (one of ``choices``).
    """

    kind: str
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Any, ...] = ()
    step: int = 1

    def __str__(self) -> str:
        if self.kind == "choice":
            return f"choice({','.join(str(c) for c in self.choices)})"
        step = f",{self.step}" if self.kind == "int" and self.step != 1 else ""
        return f"{self.kind}({self.low},{self.high}{step})"

    def grid(self) -> list[Any]:
        """Every value of the dimension (``choice`` and ``int`` only), for the grid sampler."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step))
        raise ValueError(f"the grid sampler needs choice(...) or int(...) dimensions, got {self}")


def _scalar(text: str) -> Any:
    """A choice written on the command line: a number, true/false/none, else the text itself."""
    import yaml

    text = text.strip()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | bool | str) or value is None else text


def _number(text: str, name: str, whole: bool) -> float | int:
    value = _scalar(text) if isinstance(text, str) else text
    if not is_finite_number(value):
        raise ValueError(f"search space {name}: {text!r} is not a number")
    if whole:
        if float(value) != int(value):
            raise ValueError(f"search space {name}: int bounds must be whole numbers, got {text!r}")
        return int(value)
    return float(value)


def make_dimension(name: str, kind: str, args: Sequence[Any]) -> Dimension:
    """A checked :class:`Dimension`: known kind, numeric bounds, a non-empty range.

    Examples
    --------
    >>> make_dimension("num_leaves", "int", [15, 255])
    Dimension(kind='int', low=15, high=255, choices=(), step=1)
    """
    if kind not in KINDS:
        raise ValueError(f"search space {name}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    if kind == "choice":
        if not args:
            raise ValueError(f"search space {name}: choice() is empty; list at least one value, e.g. choice(a,b)")
        return Dimension("choice", choices=tuple(_scalar(a) if isinstance(a, str) else a for a in args))
    whole = kind in ("int", "logint")
    if len(args) not in ((2, 3) if kind == "int" else (2,)):
        form = "int(low,high[,step])" if kind == "int" else f"{kind}(low,high)"
        raise ValueError(f"search space {name}: {kind} takes {form}, got {len(args)} values")
    low, high = (_number(a, name, whole) for a in args[:2])
    step = _number(args[2], name, True) if len(args) == 3 else 1
    if not low < high:
        raise ValueError(f"search space {name}: the range {kind}({low},{high}) is empty; low must be below high")
    if kind.startswith("log") and low <= 0:
        raise ValueError(f"search space {name}: {kind} needs a positive low bound, got {low}")
    if step < 1:
        raise ValueError(f"search space {name}: step must be at least 1, got {step}")
    return Dimension(kind, low=low, high=high, step=int(step))


def parse_dimension(name: str, text: Any) -> Dimension:
    """A dimension from text (``loguniform(0.005,0.3)``), a list (a choice) or a :class:`Dimension`.

    Examples
    --------
    >>> str(parse_dimension("learning_rate", "loguniform(0.005, 0.3)"))
    'loguniform(0.005,0.3)'
    >>> parse_dimension("model", "choice(lgbm,logreg)").choices
    ('lgbm', 'logreg')
    """
    if isinstance(text, Dimension):
        return make_dimension(name, text.kind, list(text.choices) if text.kind == "choice" else _bounds(text))
    if isinstance(text, list | tuple):
        return make_dimension(name, "choice", list(text))
    if not isinstance(text, str):
        raise ValueError(f"search space {name}: expected e.g. 'int(15,255)' or a list of choices, got {text!r}")
    match = _EXPR.match(text)
    if not match:
        raise ValueError(
            f"search space {name}: cannot read {text!r}; write uniform(a,b), loguniform(a,b), int(a,b), "
            "logint(a,b) or choice(x,y,...)"
        )
    kind, inner = match.group(1), match.group(2)
    args = [a.strip() for a in inner.split(",")] if inner.strip() else []
    return make_dimension(name, kind, args)


def _bounds(dim: Dimension) -> list[Any]:
    return [dim.low, dim.high, dim.step] if dim.kind == "int" else [dim.low, dim.high]


def parse_space(space: Mapping[str, Any]) -> dict[str, Dimension]:
    """Every dimension of ``space`` parsed and checked (see :func:`parse_dimension`).

    Examples
    --------
    >>> sorted(parse_space({"num_leaves": "int(8,64)", "model": ["lgbm", "logreg"]}))
    ['model', 'num_leaves']
    """
    if not isinstance(space, Mapping) or not space:
        raise ValueError(f"the search space must map parameter names to dimensions, got {space!r}")
    return {str(name): parse_dimension(str(name), value) for name, value in space.items()}


def suggest(trial: Any, space: Mapping[str, Dimension]) -> dict[str, Any]:
    """One point of ``space`` drawn through the Optuna ``trial`` (its sampler decides)."""
    out: dict[str, Any] = {}
    for name, dim in space.items():
        if dim.kind == "choice":
            out[name] = trial.suggest_categorical(name, list(dim.choices))
        elif dim.kind in ("int", "logint"):
            out[name] = trial.suggest_int(name, dim.low, dim.high, step=dim.step, log=dim.kind == "logint")
        else:
            out[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.kind == "loguniform")
    return out
