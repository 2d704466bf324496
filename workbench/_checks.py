"""Checks light enough for every layer: they import nothing beyond the standard library.

:mod:`workbench.data.validation` re-exports them as part of the public parameter checks, so the
profiles file, the Kubernetes manifests and the job gateway refuse a bad count with the same
test and sentence as ``train_cv`` does, without loading pandas.
"""

from __future__ import annotations

import math
import numbers
from typing import Any


class InvalidParameterError(ValueError, TypeError):
    """A parameter value outside its declared constraints (both a ``ValueError`` and a ``TypeError``)."""


def is_whole_number(value: Any, low: int | None = 0, high: int | None = None) -> bool:
    """Whether ``value`` is an integer (not a bool, not a float) from ``low`` to ``high`` (``None``: no bound)."""
    return (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool)
        and (low is None or value >= low)
        and (high is None or value <= high)
    )


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a real number (not a bool) that is neither NaN nor infinite.

    Examples
    --------
    >>> [is_finite_number(v) for v in (3, 0.5, True, float("nan"), float("inf"), "1")]
    [True, True, False, False, False, False]
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def check_whole_number(value: Any, what: str, low: int | None = 0, high: int | None = None) -> int:
    """``value`` as an ``int`` when it is a whole number from ``low`` to ``high`` (``None``: no upper bound).

    Booleans, floats (``3.0`` too) and text are refused: a count or a step is written as a whole number.

    Parameters
    ----------
    value : object
        The value to check.
    what : str
        How the error names the value (``"trials"``, ``"n_trials="``).
    low, high : int
        The smallest and largest accepted values.

    Returns
    -------
    int
        ``value`` itself, as a Python ``int``.

    Raises
    ------
    InvalidParameterError
        ``"<what> must be a whole number >= <low>[ and <= <high>], got <value>"``.

    Examples
    --------
    >>> check_whole_number(3, "trials", 1)
    3
    >>> check_whole_number(True, "trials", 1)
    Traceback (most recent call last):
    ...
    workbench._checks.InvalidParameterError: trials must be a whole number >= 1, got True
    """
    if not is_whole_number(value, low, high):
        bounds = [f" >= {low}"] * (low is not None) + [f" <= {high}"] * (high is not None)
        raise InvalidParameterError(f"{what} must be a whole number{' and'.join(bounds)}, got {value!r}")
    return int(value)
