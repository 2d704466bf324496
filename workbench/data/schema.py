"""Column roles: which columns are ids, numeric, categorical, text, datetime or the target."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import pandas as pd

Role = Literal["id", "numeric", "categorical", "text", "datetime", "target", "ignore"]
ROLES: tuple[str, ...] = ("id", "numeric", "categorical", "text", "datetime", "target", "ignore")
_FEATURE_ROLES = ("numeric", "categorical", "text", "datetime")

_ID_NAME = re.compile(r"(^|_)(id|uuid|guid)$|^id_|[a-z0-9](ID|Id)$", re.IGNORECASE)
_DATE_LIKE = re.compile(
    r"^\s*(\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.]\d{2,4})([ T]\d{1,2}:\d{2}.*)?\s*$"
)
_SAMPLE = 2000


@dataclass(frozen=True)
class Schema:
    """The role of every column; ``features`` are the columns a model may use, in frame order."""

    columns: tuple[str, ...]
    target: str | None = None
    id: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    datetime: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    _roles: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        roles: dict[str, str] = {}
        for role in ROLES:
            if role == "target":
                cols = () if self.target is None else (self.target,)
            else:
                cols = getattr(self, role)
            for col in cols:
                if col in roles:
                    raise ValueError(f"column {col!r} has two roles: {roles[col]!r} and {role!r}")
                roles[col] = role
        object.__setattr__(self, "_roles", roles)

    @property
    def features(self) -> list[str]:
        """Model inputs (numeric, categorical, text, datetime), in the order of the frame."""
        return [c for c in self.columns if self._roles.get(c) in _FEATURE_ROLES]

    def role(self, column: str) -> str:
        """The role of ``column``; raises ``KeyError`` naming the known columns when absent."""
        if column not in self._roles:
            raise KeyError(f"column {column!r} is not in the schema; known columns: {list(self.columns)}")
        return self._roles[column]

    def with_roles(self, overrides: Mapping[str, Role]) -> Schema:
        """A copy with some columns moved to other roles, e.g. ``{"SeniorCitizen": "categorical"}``."""
        roles = dict(self._roles)
        for col, role in overrides.items():
            if col not in self.columns:
                raise ValueError(f"cannot set the role of {col!r}: no such column; columns are {list(self.columns)}")
            if role not in ROLES:
                raise ValueError(f"unknown role {role!r} for column {col!r}; choose one of {ROLES}")
            roles[col] = role
        return _from_roles(self.columns, roles)

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (list(v) if isinstance(v := getattr(self, f.name), tuple) else v)
            for f in fields(self)
            if not f.name.startswith("_")
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items()})

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{c}</td><td>{self._roles.get(c, '')}</td></tr>" for c in self.columns)
        return f"<table><thead><tr><th>column</th><th>role</th></tr></thead><tbody>{rows}</tbody></table>"


def _from_roles(columns: tuple[str, ...], roles: Mapping[str, str]) -> Schema:
    by_role: dict[str, list[str]] = {r: [] for r in ROLES}
    for col in columns:
        by_role[roles[col]].append(col)
    targets = by_role.pop("target")
    if len(targets) > 1:
        raise ValueError(f"only one target column is supported, got {targets}")
    return Schema(columns=columns, target=targets[0] if targets else None, **{r: tuple(c) for r, c in by_role.items()})


def _is_text_dtype(s: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(s.dtype) or s.dtype == object


def _guess_role(s: pd.Series, text_min_words: float) -> str:
    name = str(s.name)
    non_null = s.dropna()
    n = len(non_null)
    all_unique = n > 0 and non_null.nunique() == n
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return "datetime"
    if isinstance(s.dtype, pd.CategoricalDtype):
        return "categorical"
    if pd.api.types.is_bool_dtype(s.dtype):
        return "numeric"
    if pd.api.types.is_numeric_dtype(s.dtype):
        if all_unique and pd.api.types.is_integer_dtype(s.dtype) and _ID_NAME.search(name):
            return "id"
        return "numeric"
    if not _is_text_dtype(s):
        return "categorical"
    sample = non_null.astype(str).iloc[:_SAMPLE]
    if len(sample) and sample.str.match(_DATE_LIKE).mean() >= 0.95:
        parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
        if parsed.notna().mean() >= 0.95:
            return "datetime"
    words = sample.str.split().str.len().mean() if len(sample) else 0.0
    if all_unique and (_ID_NAME.search(name) or words <= 1):
        return "id"
    unique_ratio = sample.nunique() / max(len(sample), 1)
    if words >= text_min_words or (words >= 2 and unique_ratio >= 0.5):
        return "text"
    return "categorical"


def infer_schema(
    df: pd.DataFrame,
    target: str | None = None,
    overrides: Mapping[str, Role] | None = None,
    text_min_words: float = 3.0,
) -> Schema:
    """Decide the role of every column of ``df``.

    Rules, first match wins:

    1. ``target`` is the target; ``overrides`` (column → role) are taken as given.
    2. datetime dtypes, and text columns whose values (≥95% of a sample) look like dates and parse,
       are ``datetime``.
    3. pandas ``category`` columns are ``categorical``; bool and other numeric dtypes are ``numeric``,
       except unique integer columns named like an id (``id``, ``user_id``, ``customerID``) → ``id``.
    4. text columns whose values are all unique and either named like an id or single tokens → ``id``.
    5. text columns averaging ``text_min_words`` words or more, or at least two words with mostly
       unique values, are ``text``; other text columns are ``categorical``.

    Parameters
    ----------
    df : pandas.DataFrame
        The data, one column per candidate feature.
    target : str, optional
        The target column.
    overrides : mapping of column to role, optional
        Roles taken as given (``"numeric"``, ``"categorical"``, ``"text"``, ``"datetime"``, ``"id"``, ``"ignore"``).
    text_min_words : float, default 3.0
        Mean words per value from which a text column is ``text``.

    Returns
    -------
    Schema
        The role of every column.

    Raises
    ------
    TypeError
        When ``df`` is not a DataFrame.
    ValueError
        On duplicate column names, or an unknown column or role in ``overrides``.

    Examples
    --------
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> schema = infer_schema(df, target="Churn", overrides={"SeniorCitizen": "categorical"})
    >>> schema.id, schema.numeric
    (('customerID',), ('tenure', 'MonthlyCharges', 'TotalCharges'))
    >>> df[schema.features].shape
    (7043, 19)
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"infer_schema needs a pandas DataFrame, got {type(df).__name__}")
    columns = tuple(str(c) for c in df.columns)
    if len(set(columns)) != len(columns):
        dupes = sorted({c for c in columns if columns.count(c) > 1})
        raise ValueError(f"duplicate column names {dupes}; rename them before inferring a schema")
    overrides = dict(overrides or {})
    if target is not None:
        if target not in df.columns:
            raise ValueError(f"target column {target!r} is not in the data; columns are {list(columns)}")
        overrides[target] = "target"
    roles: dict[str, str] = {}
    for col in df.columns:
        name = str(col)
        if name in overrides:
            if overrides[name] not in ROLES:
                raise ValueError(f"unknown role {overrides[name]!r} for column {name!r}; choose one of {ROLES}")
            roles[name] = overrides[name]
        else:
            roles[name] = _guess_role(df[col], text_min_words)
    unknown = set(overrides) - set(columns)
    if unknown:
        raise ValueError(f"overrides name columns that are not in the data: {sorted(unknown)}")
    return _from_roles(columns, roles)


__all__ = ["ROLES", "Role", "Schema", "infer_schema"]


def is_categorical_like(s: pd.Series) -> bool:
    """Whether a column is categorical in kind: pandas ``category``, text (``str``/``object``) or bool.

    What encoders pick by default and what the model presets one-hot encode.

    Examples
    --------
    >>> import pandas as pd
    >>> is_categorical_like(pd.Series(["a", "b"])), is_categorical_like(pd.Series([1.5, 2.0]))
    (True, False)
    """
    dtype = s.dtype
    return (
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
        or pd.api.types.is_bool_dtype(dtype)
    )
