"""The protocol every result object of the workbench follows: :class:`Result`.

A result is what a computation returns (:class:`~workbench.models.CVResult`, permutation
importances, partial dependence, SHAP values, a blend, a feature selection...). Every one has

- ``repr()``: one line saying what it is and its headline numbers;
- ``_repr_html_()``: the table a notebook shows (by default the head of ``to_frame()``);
- ``to_frame()``: its main table as a :class:`pandas.DataFrame`;
- ``plot(kind=..., ax=None)``: a matplotlib :class:`~matplotlib.figure.Figure` (built without
  pyplot); given ``ax``, it draws there and returns ``ax.figure``;
- ``save(path)`` / ``load(path)``: a directory written atomically (``result.json`` plus ``.npy``
  and ``.parquet`` files, no pickles), read back equal.

Attribute style: result objects use plain names (``cv.oof``, ``cv.score``); estimators fitted
with ``fit`` (:class:`~workbench.stacking.Stack`, the feature transformers) name what they
learned with a trailing underscore (``stack.oof_``, ``stack.score_``), as scikit-learn does.

:class:`Result` implements ``save``/``load`` for dataclasses whose fields are numbers, strings,
lists, tuples, dicts, numpy arrays, pandas objects or other results; ``_repr_html_`` from
``to_frame``; subclasses write ``to_frame``, ``plot`` and ``__repr__``.
"""

from __future__ import annotations

import dataclasses
import html
import importlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pandas as pd

from .._io import atomic_directory

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

R = TypeVar("R", bound="Result")
_FORMAT = 1
_META = "result.json"


def figure_and_axes(ax: Axes | None, width: float, height: float) -> tuple[Figure, Axes]:
    """``(ax.figure, ax)`` when ``ax`` is given, else a new pyplot-free figure of that size and its axes."""
    if ax is not None:
        return ax.figure, ax
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig, fig.subplots()


def check_kind(kind: str, kinds: tuple[str, ...], where: str) -> None:
    """An error naming the accepted plot kinds when ``kind`` is not one of them."""
    if kind not in kinds:
        raise ValueError(f"{where}: kind must be one of {', '.join(repr(k) for k in kinds)}; got {kind!r}")


class Result:
    """Base of the workbench's result objects (see the module docstring for the protocol)."""

    def to_frame(self) -> pd.DataFrame:
        """The result's main table."""
        raise NotImplementedError(f"{type(self).__name__} does not define to_frame()")

    def plot(self, kind: str | None = None, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """A matplotlib Figure of the result."""
        raise NotImplementedError(f"{type(self).__name__} does not define plot()")

    def _repr_html_(self) -> str:
        frame = self.to_frame()
        shown = frame.head(20)
        more = f"<p><i>{len(frame) - len(shown)} more rows</i></p>" if len(frame) > len(shown) else ""
        name = type(self).__name__.lower()
        return (
            f"<div class='workbench-{name}'><p>{html.escape(repr(self))}</p>"
            f"{shown.to_html(float_format=lambda v: f'{v:.5g}')}{more}</div>"
        )

    # ------------------------------------------------------------------ on disk
    def _state(self) -> dict[str, Any]:
        """The values ``save`` writes, by name (by default the dataclass fields)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}  # type: ignore[arg-type]

    @classmethod
    def _from_state(cls: type[R], state: dict[str, Any]) -> R:
        return cls(**state)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the result to directory ``path`` atomically (replacing what was there).

        Parameters
        ----------
        path : path-like
            The directory to write.

        Returns
        -------
        Path
            ``path``.
        """
        path = Path(path)
        with atomic_directory(path) as tmp:
            fields = {name: _encode(value, tmp, name) for name, value in self._state().items()}
            meta = {"format": _FORMAT, "type": type(self).__name__, "fields": fields}
            (tmp / _META).write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls: type[R], path: str | os.PathLike[str]) -> R:
        """Read a result written by :meth:`save`.

        Parameters
        ----------
        path : path-like
            A directory written by ``save`` of this class.

        Returns
        -------
        Result
            An instance of this class, equal to the one saved.
        """
        path = Path(path)
        meta_file = path / _META
        if not meta_file.is_file():
            raise FileNotFoundError(f"{path} holds no saved {cls.__name__} (no {_META}); save one with .save(path)")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != _FORMAT or meta.get("type") != cls.__name__:
            raise ValueError(
                f"{path} holds a {meta.get('type')} in format {meta.get('format')}; {cls.__name__}.load "
                f"reads a {cls.__name__} in format {_FORMAT}"
            )
        return cls._from_state({name: _decode(node, path) for name, node in meta["fields"].items()})


# -------------------------------------------------------------------- encoding of field values


def _encode(value: Any, root: Path, name: str) -> Any:
    """A JSON node for ``value``; arrays, frames and nested results go to files under ``root``."""
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.generic):
        return _encode(value.item(), root, name)
    if isinstance(value, int | float):
        return value
    if isinstance(value, Result):
        value.save(root / name)
        return {"$result": name, "type": f"{type(value).__module__}:{type(value).__qualname__}"}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return {"$objects": [_encode(v, root, f"{name}.{i}") for i, v in enumerate(value.tolist())]}
        np.save(root / f"{name}.npy", np.asarray(value), allow_pickle=False)
        kind = getattr(value, "kind", None)  # fold ids remember how they were made
        return {"$npy": f"{name}.npy", **({"fold_kind": kind} if isinstance(kind, str) else {})}
    if isinstance(value, pd.Series):
        frame = value.to_frame(name="values")
        frame.to_parquet(root / f"{name}.parquet")
        return {"$series": f"{name}.parquet", "name": _encode(value.name, root, f"{name}.name")}
    if isinstance(value, pd.DataFrame):
        frame = value.copy(deep=False)
        labels = [_encode(c, root, f"{name}.column") for c in frame.columns]
        frame.columns = [str(i) for i in range(frame.shape[1])]
        frame.to_parquet(root / f"{name}.parquet")
        return {
            "$frame": f"{name}.parquet",
            "columns": labels,
            "columns_name": _encode(value.columns.name, root, f"{name}.columns_name"),
        }
    if isinstance(value, tuple):
        return {"$tuple": [_encode(v, root, f"{name}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, root, f"{name}.{i}") for i, v in enumerate(value)]
    if isinstance(value, dict):
        return {
            "$dict": [
                [_encode(k, root, f"{name}.key"), _encode(v, root, f"{name}.{i}")]
                for i, (k, v) in enumerate(value.items())
            ]
        }
    raise TypeError(
        f"cannot save field {name!r} of type {type(value).__name__}: results hold numbers, text, "
        "arrays, pandas objects and other results"
    )


def _result_class(spec: str) -> type[Result]:
    module, _, qualname = spec.partition(":")
    if not (module == "workbench" or module.startswith("workbench.")):
        raise ValueError(f"a saved result names class {spec!r}, which is not a workbench result")
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    if not (isinstance(cls, type) and issubclass(cls, Result)):
        raise ValueError(f"a saved result names class {spec!r}, which is not a workbench result")
    return cls


def _decode(node: Any, root: Path) -> Any:
    if isinstance(node, list):
        return [_decode(v, root) for v in node]
    if not isinstance(node, dict):
        return node
    if "$npy" in node:
        arr = np.load(root / node["$npy"], allow_pickle=False)
        if "fold_kind" in node:
            from .folds import FoldIds

            return FoldIds(arr, node["fold_kind"])
        return arr
    if "$objects" in node:
        out = np.empty(len(node["$objects"]), dtype=object)
        out[:] = [_decode(v, root) for v in node["$objects"]]
        return out
    if "$series" in node:
        return pd.read_parquet(root / node["$series"])["values"].rename(_decode(node["name"], root))
    if "$frame" in node:
        frame = pd.read_parquet(root / node["$frame"])
        frame.columns = pd.Index(
            [_decode(c, root) for c in node["columns"]], name=_decode(node.get("columns_name"), root)
        )
        return frame
    if "$tuple" in node:
        return tuple(_decode(v, root) for v in node["$tuple"])
    if "$dict" in node:
        return {_decode(k, root): _decode(v, root) for k, v in node["$dict"]}
    if "$result" in node:
        return _result_class(node["type"]).load(root / node["$result"])
    raise ValueError(f"unknown node in a saved result: {sorted(node)}")


__all__ = ["Result", "check_kind", "figure_and_axes"]
