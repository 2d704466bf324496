"""Checks at the door of the public API: parameter constraints, renamed parameters, X/y agreement.

Every public function of the lower layers checks its arguments here, so that a bad value gets
the same kind of error everywhere: it names the parameter, the function, the accepted values and
what was given. Constraints are declared next to the function::

    @validate_params({"n_splits": [Interval(int, 2, None)], "kind": [Options(FOLD_KINDS)]})
    def make_folds(y, kind="stratified", n_splits=5, ...): ...

A constraint is a list of alternatives; each is an :class:`Interval`, :class:`Options`, a type
(``isinstance``), ``None`` or one of the named kinds ``"boolean"``, ``"random_state"``,
``"n_jobs"``, ``"array-like"``, ``"callable"`` and ``"folds"``.

The conventions the checks enforce:

- ``random_state`` seeds every random choice (``seed`` is the name of command-line flags and
  notebook parameters only);
- ``n_jobs`` means what it means in joblib: ``None`` is one worker (unless inside a
  ``joblib.parallel_config`` block), ``-1`` every core, ``-2`` all but one;
- unnamed columns are called ``x0, x1, ...`` (:func:`default_column_names`), as in scikit-learn.
"""

from __future__ import annotations

import functools
import inspect
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from .._checks import InvalidParameterError, check_whole_number

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Interval:
    """Numbers of ``kind`` (``int`` or ``float``; ``float`` accepts ints too) between ``left`` and ``right``.

    ``None`` leaves a side open; ``closed`` is ``"both"``, ``"left"``, ``"right"`` or ``"neither"``.
    """

    kind: type
    left: float | None = None
    right: float | None = None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        wanted = numbers.Integral if self.kind is int else numbers.Real
        if not isinstance(value, wanted):
            return False
        if self.left is not None:
            if value < self.left or (value == self.left and self.closed in ("right", "neither")):
                return False
        if self.right is not None:
            if value > self.right or (value == self.right and self.closed in ("left", "neither")):
                return False
        return True

    def __str__(self) -> str:
        left = "-inf" if self.left is None else f"{self.left}"
        right = "inf" if self.right is None else f"{self.right}"
        lb = "[" if self.left is not None and self.closed in ("both", "left") else "("
        rb = "]" if self.right is not None and self.closed in ("both", "right") else ")"
        noun = "an int" if self.kind is int else "a number"
        return f"{noun} in the range {lb}{left}, {right}{rb}"


@dataclass(frozen=True)
class Options:
    """One of a fixed set of values (compared with ``==``)."""

    values: tuple[Any, ...]

    def __init__(self, values: Iterable[Any]) -> None:
        object.__setattr__(self, "values", tuple(values))

    def accepts(self, value: Any) -> bool:
        try:
            return any(value == v and type(value) is not bool for v in self.values)
        except (TypeError, ValueError):
            return False

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


def _is_array_like(value: Any) -> bool:
    return hasattr(value, "__len__") and hasattr(value, "__getitem__") and not isinstance(value, str | bytes | Mapping)


def _is_folds(value: Any) -> bool:
    """An int of at least 2, fold numbers per row, a splitter or ``(train, val)`` pairs."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return value >= 2
    return (hasattr(value, "split") and callable(value.split)) or (
        isinstance(value, Iterable) and not isinstance(value, str | bytes | Mapping)
    )


_NAMED: dict[str, tuple[Callable[[Any], bool], str]] = {
    "boolean": (lambda v: isinstance(v, bool | np.bool_), "a bool"),
    "random_state": (
        lambda v: (
            v is None
            or isinstance(v, np.random.RandomState)
            or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and 0 <= v < 2**32)
        ),
        "an int in [0, 2**32), a numpy RandomState or None",
    ),
    "n_jobs": (
        lambda v: v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool) and v != 0),
        "None (one worker), a positive int or a negative int (-1: every core)",
    ),
    "array-like": (_is_array_like, "an array-like (array, list, Series or DataFrame)"),
    "callable": (callable, "a callable"),
    "folds": (
        _is_folds,
        "a number of folds (int >= 2), fold numbers per row, a scikit-learn splitter or (train, val) index pairs",
    ),
}


def _accepts(constraint: Any, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, str):
        return _NAMED[constraint][0](value)
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (
            constraint is not bool and isinstance(value, bool) and constraint in (int, float)
        )
    return constraint.accepts(value)


def _describe(constraint: Any) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, str):
        return _NAMED[constraint][1]
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    return str(constraint)


def check_params(where: str, params: Mapping[str, Any], constraints: Mapping[str, Sequence[Any]]) -> None:
    """Check ``params`` against ``constraints`` (parameter name to a list of accepted alternatives).

    Parameters
    ----------
    where : str
        The function or class the parameters belong to, as named in the error.
    params : mapping
        Parameter names and their values; names without a constraint are not checked.
    constraints : mapping
        For each checked parameter, the alternatives it may match (see the module docstring).

    Raises
    ------
    InvalidParameterError
        Naming the first parameter that matches none of its alternatives, what it accepts and
        the value given.
    """
    for name, allowed in constraints.items():
        if name not in params:
            continue
        value = params[name]
        if any(_accepts(c, value) for c in allowed):
            continue
        accepted = [_describe(c) for c in allowed]
        choices = accepted[0] if len(accepted) == 1 else ", ".join(accepted[:-1]) + " or " + accepted[-1]
        raise InvalidParameterError(f"the {name!r} parameter of {where} must be {choices}; got {value!r}")


def validate_params(constraints: Mapping[str, Sequence[Any]]) -> Callable[[F], F]:
    """Decorator: check the arguments of every call (defaults included) with :func:`check_params`."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func)
        where = f"{func.__qualname__.replace('.__init__', '')}()"
        unknown = set(constraints) - set(signature.parameters)
        if unknown:
            raise TypeError(f"constraints for {sorted(unknown)}, which {where} does not take")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            check_params(where, bound.arguments, constraints)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def warn_renamed(where: str, old: str, new: str, stacklevel: int = 3) -> None:
    """The ``FutureWarning`` of a renamed parameter or attribute: ``old`` still works, ``new`` is the name."""
    warnings.warn(
        f"{where}: {old!r} is renamed {new!r}; use {new}=... ({old!r} will stop working in a future version)",
        FutureWarning,
        stacklevel=stacklevel,
    )


def renamed_params(**old_to_new: str) -> Callable[[F], F]:
    """Decorator: accept the old keyword names of renamed parameters, with a ``FutureWarning``.

    ``@renamed_params(seed="random_state")`` lets ``f(seed=1)`` mean ``f(random_state=1)``;
    giving both names is an error. The wrapped function keeps its signature (scikit-learn's
    ``get_params`` still sees only the new names when it decorates an ``__init__``).
    """

    def decorate(func: F) -> F:
        where = f"{func.__qualname__.replace('.__init__', '')}()"

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{where} got both {old!r} and its new name {new!r}; give {new}=... only")
                    warn_renamed(where, old, new)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def n_rows(X: Any) -> int:
    """Number of rows of a DataFrame, array, sparse matrix or sequence (an int is taken as the count)."""
    if isinstance(X, numbers.Integral):
        return int(X)
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None and len(shape) > 0 else len(X)


def check_X_y(X: Any, y: Any, y_name: str = "y", x_name: str = "X") -> int:
    """Check that ``X`` and ``y`` (or another per-row input named ``y_name``) describe the same rows.

    Parameters
    ----------
    X : DataFrame, array, sparse matrix or int
        The features (or just their number of rows).
    y : array-like
        One value per row of ``X``.
    y_name : str, default "y"
        How the error names ``y`` (e.g. ``"sample_weight"``).
    x_name : str, default "X"
        How the error names ``X``.

    Returns
    -------
    int
        The number of rows.
    """
    n = n_rows(X)
    m = n_rows(y)
    if m != n:
        raise ValueError(f"{x_name} has {n} rows but {y_name} has {m}; they must describe the same rows")
    return n


def default_column_names(n_columns: int) -> list[str]:
    """Names of unnamed columns: ``x0, x1, ...`` (as scikit-learn's ``get_feature_names_out``)."""
    return [f"x{i}" for i in range(n_columns)]


def column_names(X: Any) -> list[str]:
    """A DataFrame's column names as strings, or :func:`default_column_names` for other 2-D input."""
    if isinstance(X, pd.DataFrame):
        return [str(c) for c in X.columns]
    return default_column_names(X.shape[1])


def effective_n_jobs(n_jobs: int | None, where: str = "this function") -> int:
    """Workers for ``n_jobs`` read as joblib reads it (``None``: one, ``-1``: every core, ``-2``: all but one).

    Raises :class:`InvalidParameterError` for ``0``, booleans and non-integers.
    """
    import joblib

    check_params(where, {"n_jobs": n_jobs}, {"n_jobs": ["n_jobs"]})
    return max(1, int(joblib.effective_n_jobs(n_jobs)))


__all__ = [
    "Interval",
    "InvalidParameterError",
    "Options",
    "check_X_y",
    "check_params",
    "check_whole_number",
    "column_names",
    "default_column_names",
    "effective_n_jobs",
    "n_rows",
    "renamed_params",
    "validate_params",
    "warn_renamed",
]
