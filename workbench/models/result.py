"""The outcome of cross-validated training, its HTML summary and its on-disk form."""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_directory
from .._version import __version__
from ..data.results import Result, check_kind, figure_and_axes
from ..data.validation import renamed_params, warn_renamed
from . import _estimators
from .metrics import METRICS, Metric, get_metric
from .persist import load_model, save_model

_FORMAT = 1


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return repr(value)


@dataclass
class CVResult(Result):
    """Out-of-fold (``oof``) and fold-averaged test predictions, fold models and scores.

    A :class:`~workbench.data.results.Result`: ``to_frame()`` is the per-fold table,
    ``plot(kind="folds" | "importance")`` draws fold scores or gain importance.

    Predictions are positive-class probabilities (binary), ``(n, n_classes)`` probabilities in
    the order of ``classes`` (multiclass) or values (regression). ``folds`` gives each row's
    validation fold (``-1``: never validated, time folds only; its ``oof`` is NaN). Fold models
    of classifiers were fitted on class indices: ``classes[i]`` is the label of index ``i``.
    """

    oof: np.ndarray
    test_pred: np.ndarray | None
    models: list[Any]
    fold_scores: list[float]
    score: float
    metric: str
    greater_is_better: bool
    task: str
    classes: list[Any] | None
    folds: np.ndarray
    feature_names: list[str]
    timings: pd.DataFrame
    feature_importance: pd.DataFrame | None = None
    estimator: str = ""
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n_splits(self) -> int:
        return len(self.fold_scores)

    @property
    def score_std(self) -> float:
        return float(np.std(self.fold_scores))

    def predict(self, X: Any) -> np.ndarray:
        """Average of the fold models' predictions on new data, in the same form as ``oof``."""
        if not self.models:
            raise ValueError(
                f"this {self.estimator} result holds no fold models (loaded with models=False, or given without "
                "them); load it with CVResult.load(path) to predict"
            )
        n_classes = 0 if self.classes is None else len(self.classes)
        preds = [_estimators.predict(m, X, self.task, n_classes) for m in self.models]
        return np.mean(preds, axis=0)

    def get_metric(self) -> Metric:
        """The :class:`Metric` that scored this result (a built-in by name, else a stand-in)."""
        if self.metric in METRICS:
            return get_metric(self.metric, self.task)
        return Metric(self.metric, lambda y, p: float("nan"), self.greater_is_better)

    @renamed_params(k="top")
    def top_features(self, top: int = 10) -> pd.Series:
        """Mean gain importance of the ``top`` strongest features (LightGBM only; empty otherwise)."""
        if self.feature_importance is None:
            return pd.Series(dtype=float, name="gain")
        return self.feature_importance["mean"].sort_values(ascending=False).head(top).rename("gain")

    def summary(self) -> pd.DataFrame:
        """Former name of :meth:`to_frame` (warns)."""
        warn_renamed("CVResult", "summary()", "to_frame()")
        return self.to_frame()

    def to_frame(self) -> pd.DataFrame:
        """Per-fold scores and timings, plus an ``overall`` row (OOF score, summed times)."""
        table = self.timings.copy()
        table.insert(1, self.metric, self.fold_scores)
        overall = {"fold": "overall", self.metric: self.score}
        for col in ("fit_s", "predict_s", "n_val"):
            if col in table:
                overall[col] = table[col].sum()
        return pd.concat([table, pd.DataFrame([overall])], ignore_index=True)

    def __repr__(self) -> str:
        return (
            f"CVResult({self.estimator}, {self.metric}={self.score:.5f} ± {self.score_std:.5f}, "
            f"{self.n_splits} folds, task={self.task})"
        )

    def _repr_html_(self) -> str:
        esc = html.escape
        folds = "".join(
            f"<tr><td>{r['fold']}</td><td>{r[self.metric]:.5f}</td><td>{r.get('fit_s', 0):.2f}s</td>"
            f"<td>{'' if pd.isna(r.get('best_iteration')) else int(r['best_iteration'])}</td></tr>"
            for r in self.to_frame().iloc[:-1].to_dict("records")
        )
        top = self.top_features(10)
        feats = "".join(f"<tr><td>{esc(str(n))}</td><td>{v:,.1f}</td></tr>" for n, v in top.items())
        feats_table = (
            f"<table><thead><tr><th>feature</th><th>gain</th></tr></thead><tbody>{feats}</tbody></table>"
            if len(top)
            else ""
        )
        total = float(self.timings["fit_s"].sum()) if "fit_s" in self.timings else 0.0
        return (
            f"<div class='workbench-cvresult'><b>{esc(self.estimator)}</b> — {esc(self.task)}, "
            f"{self.n_splits} folds, {total:.1f}s<br><b>{esc(self.metric)}</b> OOF {self.score:.5f} "
            f"(folds {np.mean(self.fold_scores):.5f} ± {self.score_std:.5f})"
            "<div style='display:flex;gap:2em'><table><thead><tr><th>fold</th>"
            f"<th>{esc(self.metric)}</th><th>fit</th><th>best iter</th></tr></thead><tbody>{folds}</tbody></table>"
            f"{feats_table}</div></div>"
        )

    def plot(self, kind: str = "folds", ax: Any = None, top: int = 20) -> Any:
        """Figure of the fold scores (``kind="folds"``, the OOF score as a line) or of the mean
        gain importance of the ``top`` features (``kind="importance"``, LightGBM only)."""
        check_kind(kind, ("folds", "importance"), "CVResult.plot")
        if kind == "importance":
            gain = self.top_features(top)
            if gain.empty:
                raise ValueError(
                    f"this {self.estimator} result has no gain importance (LightGBM models have one); use kind='folds'"
                )
            fig, ax = figure_and_axes(ax, 7, 1.2 + 0.32 * len(gain))
            ax.barh(np.arange(len(gain))[::-1], gain.to_numpy(), color="#2a9d8f")
            ax.set_yticks(np.arange(len(gain))[::-1], [str(n) for n in gain.index])
            ax.set_xlabel("mean gain over folds")
            ax.set_title(f"{self.estimator}: top {len(gain)} features", loc="left")
            return fig
        fig, ax = figure_and_axes(ax, 6, 3.5)
        ax.bar(np.arange(self.n_splits), self.fold_scores, color="#66C2D7")
        ax.axhline(self.score, color="#1A4E5D", linewidth=2, label=f"OOF {self.score:.5f}")
        ax.set_xticks(np.arange(self.n_splits), [f"fold {k}" for k in range(self.n_splits)])
        low, high = min(self.fold_scores + [self.score]), max(self.fold_scores + [self.score])
        pad = (high - low) * 0.5 or abs(high) * 0.01 or 0.01
        ax.set_ylim(low - pad, high + pad)
        ax.set_ylabel(self.metric)
        ax.legend(loc="best", frameon=False)
        ax.set_title(f"{self.estimator}: {self.metric} per fold", loc="left")
        return fig

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the result to directory ``path`` atomically (replacing what was there).

        Layout: ``result.json`` (scores, metric, task, classes, timings), ``oof.npy``,
        ``test_pred.npy``, ``folds.npy``, ``feature_importance.parquet`` and each fold model in
        ``models/`` as written by :func:`workbench.models.persist.save_model`: ``fold_K.joblib``
        for its writer, and the forms other users can load without unpickling (LightGBM's text
        model ``fold_K.lgbm.txt`` with ``fold_K.lgbm.json``, or ``fold_K.skops``).
        """
        path = Path(path)
        with atomic_directory(path) as tmp:
            np.save(tmp / "oof.npy", self.oof)
            np.save(tmp / "folds.npy", np.asarray(self.folds))
            if self.test_pred is not None:
                np.save(tmp / "test_pred.npy", self.test_pred)
            (tmp / "models").mkdir()
            for k, model in enumerate(self.models):
                save_model(model, tmp / "models", f"fold_{k}")
            if self.feature_importance is not None:
                self.feature_importance.to_parquet(tmp / "feature_importance.parquet")
            meta = {
                "format": _FORMAT,
                "workbench_version": __version__,
                "estimator": self.estimator,
                "params": _jsonable(self.params),
                "task": self.task,
                "metric": self.metric,
                "greater_is_better": self.greater_is_better,
                "score": self.score,
                "fold_scores": [float(s) for s in self.fold_scores],
                "classes": _jsonable(self.classes),
                "classes_dtype": None if self.classes is None else str(np.asarray(self.classes).dtype),
                "feature_names": self.feature_names,
                "folds_kind": getattr(self.folds, "kind", "kfold"),
                "n_models": len(self.models),
                "timings": json.loads(self.timings.to_json(orient="records")),
            }
            (tmp / "result.json").write_text(json.dumps(meta, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike[str], models: bool = True, trust: bool = False) -> CVResult:
        """Read a result written by :meth:`save`.

        Parameters
        ----------
        path
            The directory :meth:`save` wrote.
        models
            Load the fold models; ``False`` skips them (faster, no ``predict``).
        trust
            Unpickle fold models another user wrote. Without it, fold models load from LightGBM's
            text model or from skops (types skops trusts by default only), and a pickle only when
            it is your own file; anything else raises :class:`~workbench.models.persist.UntrustedFileError`.

        Returns
        -------
        CVResult
            The result, with its fold models unless ``models=False``.
        """
        from ..data import FoldIds

        path = Path(path)
        meta_file = path / "result.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{path} holds no saved CVResult (no result.json); save one with CVResult.save")
        meta = json.loads(meta_file.read_text())
        if meta.get("format") != _FORMAT:
            raise ValueError(f"{path} was saved in format {meta.get('format')}, this version reads format {_FORMAT}")
        test_file = path / "test_pred.npy"
        fi_file = path / "feature_importance.parquet"
        classes = meta["classes"]
        if classes is not None:
            classes = np.asarray(classes, dtype=meta["classes_dtype"]).tolist()
        return cls(
            oof=np.load(path / "oof.npy"),
            test_pred=np.load(test_file) if test_file.exists() else None,
            models=[
                load_model(path / "models", f"fold_{k}", trust=trust, fix=f"CVResult.load({str(path)!r}, trust=True)")
                for k in range(meta["n_models"])
            ]
            if models
            else [],
            fold_scores=meta["fold_scores"],
            score=meta["score"],
            metric=meta["metric"],
            greater_is_better=meta["greater_is_better"],
            task=meta["task"],
            classes=classes,
            folds=FoldIds(np.load(path / "folds.npy"), meta["folds_kind"]),
            feature_names=meta["feature_names"],
            timings=pd.DataFrame(meta["timings"]),
            feature_importance=pd.read_parquet(fi_file) if fi_file.exists() else None,
            estimator=meta["estimator"],
            params=meta["params"],
        )
