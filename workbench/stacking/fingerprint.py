"""Stable fingerprints of estimators, data and folds: the same inputs give the same key in any process.

Nothing here uses ``id()`` or Python's salted ``hash()``: data is hashed by content (pandas'
``hash_pandas_object`` with its fixed key, or raw numpy bytes) and estimators by class and
normalised parameters, so a cache key written today is found again tomorrow.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def digest(*parts: bytes | str) -> str:
    """Hex SHA-256 of the parts, each length-prefixed so that ``("ab", "c") != ("a", "bc")``."""
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode("utf-8") if isinstance(part, str) else bytes(part)
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()


def _qualname(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__qualname__)}"


def _dtype_descriptor(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        cats = digest(pd.util.hash_pandas_object(pd.Series(dtype.categories), index=False).to_numpy().tobytes())
        return f"category[{dtype.categories.dtype}](ordered={dtype.ordered},{cats})"
    return str(dtype)


def column_digest(column: pd.Series) -> str:
    """Digest of one column: its name, dtype (categories included) and values."""
    values = pd.util.hash_pandas_object(column, index=False).to_numpy()
    return digest(str(column.name), _dtype_descriptor(column.dtype), values.tobytes())


def column_digests(frame: pd.DataFrame) -> dict[str, str]:
    """``{column: digest}`` for every column, so a feature subset's key needs no re-hashing."""
    return {str(name): column_digest(frame[name]) for name in frame.columns}


def data_digest(data: Any) -> str:
    """Content digest of a DataFrame, Series, array (dense or scipy sparse) or list."""
    if isinstance(data, pd.DataFrame):
        return digest("frame", str(data.shape), *column_digests(data).values())
    if isinstance(data, pd.Series):
        return digest("series", column_digest(data))
    if hasattr(data, "tocsr") and hasattr(data, "nnz"):  # scipy sparse
        csr = data.tocsr()
        csr.sort_indices()
        return digest(
            "sparse",
            str(csr.shape),
            str(csr.dtype),
            csr.data.tobytes(),
            csr.indices.astype(np.int64).tobytes(),
            csr.indptr.astype(np.int64).tobytes(),
        )
    arr = np.asarray(data)
    if arr.dtype.kind == "O" or arr.dtype.kind in "UST":
        flat = arr.reshape(len(arr), -1) if arr.ndim else arr.reshape(1, 1)
        cols = [
            pd.util.hash_pandas_object(pd.Series(flat[:, j]), index=False).to_numpy().tobytes()
            for j in range(flat.shape[1])
        ]
        return digest("objects", str(arr.shape), *cols)
    return digest("array", str(arr.shape), arr.dtype.str, np.ascontiguousarray(arr).tobytes())


def describe(value: Any) -> Any:
    """A JSON-able, process-independent description of a parameter value.

    Estimators become their class and (recursively) their ``get_params(deep=False)``; data becomes
    a content digest; functions and classes their qualified name; anything else its ``repr`` with
    memory addresses removed.
    """
    if isinstance(value, type):
        return {"class": _qualname(value)}
    if hasattr(value, "get_params") and callable(value.get_params):
        params = value.get_params(deep=False)
        return {"class": _qualname(type(value)), "params": {str(k): describe(params[k]) for k in sorted(params)}}
    if isinstance(value, (pd.DataFrame, pd.Series, np.ndarray)) or (hasattr(value, "tocsr") and hasattr(value, "nnz")):
        return {"data": data_digest(value)}
    if isinstance(value, np.generic):
        return describe(value.item())
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return repr(value)  # keeps nan/inf and every digit, and stays valid JSON
    if isinstance(value, Mapping):
        return {str(k): describe(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted((describe(v) for v in value), key=lambda d: json.dumps(d, sort_keys=True))
    if callable(value) and hasattr(value, "__qualname__"):
        return {"callable": _qualname(value)}
    return {"repr": _ADDRESS.sub("", repr(value))}


def fingerprint(payload: Mapping[str, Any]) -> str:
    """Key of a fully :func:`describe`-d payload (canonical JSON, sorted keys)."""
    return digest(json.dumps(describe(payload), sort_keys=True, separators=(",", ":")))


def estimator_fingerprint(estimator: Any) -> str:
    """Key of an estimator's class and parameters: equal for equal configurations, in any process.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> estimator_fingerprint(LogisticRegression(C=1.0)) == estimator_fingerprint(LogisticRegression())
    True
    """
    return fingerprint({"estimator": estimator})


__all__ = [
    "column_digest",
    "column_digests",
    "data_digest",
    "describe",
    "digest",
    "estimator_fingerprint",
    "fingerprint",
]
