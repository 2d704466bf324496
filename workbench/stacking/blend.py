"""Weighted blending of out-of-fold predictions: non-negative weights that optimise any metric."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.results import Result, check_kind, figure_and_axes
from ..data.validation import Interval, validate_params, warn_renamed
from ..models import CVResult, Metric, get_metric, infer_task


@dataclass
class BlendResult(Result):
    """Blend weights (non-negative, summing to 1) and what they give on OOF and test predictions.

    ``to_frame()`` has every model's weight and own score and the blend's; ``plot()`` draws the weights.
    """

    weights: pd.Series
    score: float
    member_scores: pd.Series
    oof: np.ndarray
    test_pred: np.ndarray | None
    metric: str
    greater_is_better: bool
    rank: bool

    def apply(self, predictions: Sequence[Any] | Mapping[str, Any] | pd.DataFrame) -> np.ndarray:
        """Blend new predictions (one per model, same order or names as the weights)."""
        arrays = _as_arrays(predictions, list(self.weights.index))[1]
        if len(arrays) != len(self.weights):
            raise ValueError(f"got {len(arrays)} predictions for {len(self.weights)} blended models")
        stacked = np.stack([_ranked(a) if self.rank else np.asarray(a, dtype=np.float64) for a in arrays])
        return np.tensordot(self.weights.to_numpy(), stacked, axes=1)

    def summary(self) -> pd.DataFrame:
        """Former name of :meth:`to_frame` (warns)."""
        warn_renamed("BlendResult", "summary()", "to_frame()")
        return self.to_frame()

    def plot(self, kind: str = "weights", ax: Any = None) -> Any:
        """Figure of the blend weights, each bar labelled with the model's own OOF score."""
        check_kind(kind, ("weights",), "BlendResult.plot")
        fig, ax = figure_and_axes(ax, 6, 1.2 + 0.35 * len(self.weights))
        pos = np.arange(len(self.weights))[::-1]
        ax.barh(pos, self.weights.to_numpy(), color="#2a9d8f")
        for p, w, s in zip(pos, self.weights.to_numpy(), self.member_scores.to_numpy(), strict=True):
            ax.text(w, p, f" {self.metric} {s:.5f}", va="center", fontsize=8)
        ax.set_yticks(pos, [str(n) for n in self.weights.index])
        ax.set_xlim(0, 1.25)
        ax.set_xlabel("weight")
        ax.set_title(f"Blend: {self.metric} {self.score:.5f}{' on ranks' if self.rank else ''}", loc="left")
        return fig

    def to_frame(self) -> pd.DataFrame:
        """Weight and own OOF score of every model, plus the blend's score."""
        table = pd.DataFrame({"weight": self.weights, self.metric: self.member_scores})
        table.loc["blend"] = [self.weights.sum(), self.score]
        return table

    def __repr__(self) -> str:
        kept = ", ".join(f"{k}={v:.3f}" for k, v in self.weights.items() if v > 0)
        return f"BlendResult({self.metric}={self.score:.5f}{' on ranks' if self.rank else ''}; {kept})"

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(float_format=lambda v: f"{v:.5f}")


def _as_arrays(preds: Any, names: list[str] | None = None) -> tuple[list[str], list[np.ndarray]]:
    if isinstance(preds, pd.DataFrame):
        return [str(c) for c in preds.columns], [preds[c].to_numpy(dtype=np.float64) for c in preds.columns]
    if isinstance(preds, Mapping):
        return [str(k) for k in preds], [np.asarray(v, dtype=np.float64) for v in preds.values()]
    if isinstance(preds, (str, bytes)) or not isinstance(preds, Sequence):
        raise TypeError("give predictions as a list (arrays or CVResults), a {name: array} dict or a DataFrame")
    arrays = [np.asarray(p.oof if isinstance(p, CVResult) else p, dtype=np.float64) for p in preds]
    if names is None:
        names = []
        for i, p in enumerate(preds):
            names.append(p.estimator if isinstance(p, CVResult) and p.estimator else f"model{i}")
        names = [n if names.count(n) == 1 else f"{n}_{i}" for i, n in enumerate(names)]
    return names, arrays


def _ranked(p: np.ndarray) -> np.ndarray:
    """Ranks scaled to (0, 1], per column, NaN kept: makes differently calibrated models comparable."""
    from scipy.stats import rankdata

    p = np.asarray(p, dtype=np.float64)
    ranks = rankdata(p, axis=0, nan_policy="omit")
    count = np.sum(~np.isnan(p), axis=0)
    return ranks / count


@validate_params({"rank": ["boolean"], "n_iter": [Interval(int, 1, None)]})
def blend(
    oof_list: Sequence[Any] | Mapping[str, Any] | pd.DataFrame,
    y: Any,
    metric: str | Metric | Callable[..., float] | None = None,
    test_list: Sequence[Any] | Mapping[str, Any] | pd.DataFrame | None = None,
    rank: bool = False,
    n_iter: int = 100,
    task: str | None = None,
) -> BlendResult:
    """Find non-negative weights (summing to 1) that optimise ``metric`` on out-of-fold predictions.

    Greedy forward selection with replacement (Caruana et al., 2004): start from the best single
    model, then repeatedly add the model that most improves the blend; weights are how often each
    was added, at the best step seen, so the blend never scores worse than the best single model.
    Works for any metric, differentiable or not (AUC). ``oof_list`` is a list of arrays or
    :class:`CVResult` objects (their ``test_pred`` is blended when ``test_list`` is not given), a
    ``{name: array}`` dict or a DataFrame such as ``stack.level_oof(1)``. ``rank=True`` blends
    per-model ranks (on OOF and, separately, on test rows) instead of raw predictions.

    Parameters
    ----------
    oof_list : list of arrays or CVResults, dict of arrays or DataFrame
        The out-of-fold predictions of each model, one row per training row.
    y : array-like
        The target.
    metric : str, Metric or callable, optional
        What the weights optimise; the task's default metric when not given.
    test_list : same kinds as ``oof_list``, optional
        Test predictions in the same model order, blended with the found weights.
    rank : bool, default False
        Blend per-model ranks instead of raw predictions.
    n_iter : int, default 100
        Steps of the greedy selection.
    task : {"binary", "multiclass", "regression"}, optional
        Inferred from ``y`` when not given.

    Returns
    -------
    BlendResult
        ``weights``, ``score``, the blended ``oof`` and ``test_pred``.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> from workbench.features import build
    >>> from workbench.models import default_logreg, train_cv
    >>> df = load_telco()
    >>> X, y = build(df, target="Churn").fit_transform(df), df["Churn"]
    >>> lgbm = train_cv(LGBMClassifier(n_estimators=50, verbose=-1), X, y, folds=3, progress=False)
    >>> logreg = train_cv(default_logreg(), X, y, folds=3, progress=False)
    >>> b = blend({"lgbm": lgbm.oof, "logreg": logreg.oof}, y, metric="auc")
    >>> b
    BlendResult(auc=0.847...; lgbm=0.333, logreg=0.667)
    """
    names, arrays = _as_arrays(oof_list)
    if len(arrays) < 1:
        raise ValueError("blend needs at least one model's out-of-fold predictions")
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1:
        raise ValueError(f"out-of-fold predictions differ in shape: {dict(zip(names, (a.shape for a in arrays)))}")
    y_arr = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y)
    if len(y_arr) != len(arrays[0]):
        raise ValueError(f"y has {len(y_arr)} rows but the predictions have {len(arrays[0])}")
    task = task or infer_task(y_arr)
    if rank and task == "regression":
        raise ValueError("rank=True averages ranks, which loses the scale a regression needs; use rank=False")
    metric_ = get_metric(metric, task)
    classes = np.unique(y_arr) if task != "regression" else None
    y_enc = np.searchsorted(classes, y_arr) if classes is not None else y_arr.astype(np.float64)

    if test_list is None and isinstance(oof_list, Sequence) and all(isinstance(p, CVResult) for p in oof_list):
        if all(p.test_pred is not None for p in oof_list):
            test_list = [p.test_pred for p in oof_list]
    stacked = np.stack([_ranked(a) if rank else a for a in arrays])
    flat = stacked.reshape(len(arrays), len(y_arr), -1)
    rows = ~np.isnan(flat).any(axis=(0, 2))
    if not rows.any():
        raise ValueError("no row has every model's out-of-fold prediction")
    P = stacked[:, rows]
    y_ok = y_enc[rows]

    member_scores = np.array([metric_(y_ok, p) for p in P])
    first = int(np.argmax(member_scores) if metric_.greater_is_better else np.argmin(member_scores))
    counts = np.zeros(len(arrays), dtype=np.int64)
    counts[first] = 1
    total = P[first].copy()
    best_score, best_counts = member_scores[first], counts.copy()
    for _ in range(n_iter - 1):
        step = counts.sum() + 1
        candidates = [metric_(y_ok, (total + P[j]) / step) for j in range(len(arrays))]
        j = int(np.argmax(candidates) if metric_.greater_is_better else np.argmin(candidates))
        counts[j] += 1
        total += P[j]
        if metric_.better(candidates[j], best_score):
            best_score, best_counts = candidates[j], counts.copy()
    weights = pd.Series(best_counts / best_counts.sum(), index=names, name="weight")
    oof = np.tensordot(weights.to_numpy(), stacked, axes=1)
    result = BlendResult(
        weights=weights,
        score=float(best_score),
        member_scores=pd.Series(member_scores, index=names),
        oof=oof,
        test_pred=None,
        metric=metric_.name,
        greater_is_better=metric_.greater_is_better,
        rank=rank,
    )
    if test_list is not None:
        result.test_pred = result.apply(test_list)
    return result


__all__ = ["BlendResult", "blend"]
