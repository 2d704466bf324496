"""What a fitted stack shows: a per-model score table, prediction correlations and a plot of both."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.results import check_kind, figure_and_axes
from ..models import Metric

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .stack import Stack


def summary_table(stack: Stack) -> pd.DataFrame:
    """One row per model: level, name, OOF score and its fold spread, source, time, inputs.

    ``score`` is the model's out-of-fold score over the rows its level validated; ``source`` is
    ``fit`` (trained this run), ``cache`` (loaded) or ``given`` (a precomputed result); ``fit_s``
    is the summed fold fitting time recorded when it was trained; ``seconds`` this run's wall time.
    A last ``stack`` row scores the average of the top level when it has several models.
    """
    rows: list[dict[str, Any]] = []
    for m in stack.models_:
        r = m.result
        rows.append(
            {
                "level": m.level,
                "model": m.name,
                "column": m.label,
                "estimator": r.estimator,
                "score": float(r.score),
                "score_std": float(np.std(r.fold_scores)) if r.fold_scores else float("nan"),
                "folds": r.n_splits,
                "source": m.source,
                "fit_s": float(r.timings["fit_s"].sum()) if "fit_s" in r.timings else float("nan"),
                "seconds": m.seconds,
                "n_features": len(r.feature_names),
            }
        )
    top = [m for m in stack.models_ if m.level == stack.n_levels]
    if len(top) > 1:
        rows.append(
            {
                "level": stack.n_levels,
                "model": "stack",
                "column": f"level{stack.n_levels}/mean",
                "estimator": "mean",
                "score": float(stack.score_),
                "score_std": float("nan"),
                "folds": np.nan,
                "source": "",
                "fit_s": float("nan"),
                "seconds": float("nan"),
                "n_features": len(top),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs["metric"] = stack.metric_.name
    return table


def prediction_correlation(oof: pd.DataFrame, method: str = "pearson") -> pd.DataFrame:
    """Correlation matrix of out-of-fold prediction columns over the rows where all are present.

    Highly correlated models add little to a stack; diverse ones with good scores add most.

    Parameters
    ----------
    oof : DataFrame
        One column of out-of-fold predictions per model.
    method : {"pearson", "spearman", "kendall"}, default "pearson"
        As pandas' ``DataFrame.corr`` reads it.

    Returns
    -------
    DataFrame
        Models by models.

    Examples
    --------
    >>> import pandas as pd
    >>> oof = pd.DataFrame({"lgbm": [0.1, 0.4, 0.8, 0.9], "logreg": [0.2, 0.3, 0.7, 0.95]})
    >>> prediction_correlation(oof).round(2)
            lgbm  logreg
    lgbm    1.00    0.96
    logreg  0.96    1.00
    """
    if method not in ("pearson", "spearman", "kendall"):
        raise ValueError(f"unknown correlation method {method!r}; use 'pearson', 'spearman' or 'kendall'")
    complete = oof.dropna()
    if len(complete) < 2:
        raise ValueError("fewer than two rows have every out-of-fold prediction; nothing to correlate")
    return complete.corr(method=method)


def plot_stack(
    summary: pd.DataFrame,
    correlation: pd.DataFrame,
    metric: Metric,
    title: str = "correlation",
    kind: str = "both",
    ax: Any = None,
) -> Figure:
    """Each model's OOF score (error bars: ± std over folds, colour: level) and a correlation heatmap.

    ``kind``: ``"both"`` (two panels), ``"scores"`` or ``"correlation"`` (one panel, drawn on
    ``ax`` when given). Returns a matplotlib ``Figure`` (no pyplot state, works headless); show
    it in a notebook by leaving it as the cell's value, or ``fig.savefig("stack.png")``.

    Parameters
    ----------
    summary : DataFrame
        One row per model (:func:`summary_table`).
    correlation : DataFrame
        Correlation of the models' OOF predictions (:func:`prediction_correlation`).
    metric : Metric
        The metric of the scores.
    title : str, default "correlation"
        Title of the heat map.
    kind : {"both", "scores", "correlation"}, default "both"
        As above.
    ax : matplotlib Axes, optional
        Draw one panel there.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    check_kind(kind, ("both", "scores", "correlation"), "Stack.plot")
    height = max(3.0, 0.45 * len(summary) + 1.5)
    if kind == "both":
        if ax is not None:
            raise ValueError(
                "kind='both' draws two panels and cannot use one given ax; "
                "use kind='scores' or kind='correlation' with ax"
            )
        fig = Figure(figsize=(11, height), layout="constrained")
        ax_score, ax_corr = fig.subplots(1, 2, width_ratios=[1.1, 1])
    elif kind == "scores":
        fig, ax_score = figure_and_axes(ax, 6, height)
    else:
        fig, ax_corr = figure_and_axes(ax, 5.5, height)
    if kind != "correlation":
        _plot_scores(ax_score, summary, metric)
    if kind != "scores":
        _plot_correlation(fig, ax_corr, correlation, title)
    return fig


def _plot_scores(ax_score: Any, summary: pd.DataFrame, metric: Metric) -> None:
    positions = np.arange(len(summary))[::-1]
    scores = summary["score"].to_numpy(dtype=float)
    stds = summary["score_std"].fillna(0).to_numpy(dtype=float)
    for pos, score, std, level in zip(positions, scores, stds, summary["level"]):
        ax_score.errorbar(score, pos, xerr=std, fmt="o", color=f"C{int(level) - 1}", capsize=4, markersize=7)
        ax_score.annotate(
            f"{score:.4f}", (score, pos), textcoords="offset points", xytext=(0, 7), ha="center", fontsize="small"
        )
    ax_score.set_yticks(positions, summary["column"])
    ax_score.set_ylim(-0.7, len(summary) - 0.3)
    ax_score.grid(axis="x", alpha=0.3)
    level1 = summary[summary["level"] == 1]["score"]
    if len(level1):
        best = level1.max() if metric.greater_is_better else level1.min()
        ax_score.axvline(best, color="grey", linestyle="--", linewidth=1, label="best level-1 model")
        ax_score.legend(loc="lower right", fontsize="small")
    ax_score.set_xlabel(f"out-of-fold {metric.name} ({'higher' if metric.greater_is_better else 'lower'} is better)")
    ax_score.set_title("CV score by model")


def _plot_correlation(fig: Figure, ax_corr: Any, correlation: pd.DataFrame, title: str) -> None:
    values = correlation.to_numpy(dtype=float)
    image = ax_corr.imshow(values, vmin=min(float(np.nanmin(values)), 1 - 1e-3), vmax=1.0, cmap="viridis")
    labels = [str(c).split("/", 1)[-1] for c in correlation.columns]
    ax_corr.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax_corr.set_yticks(range(len(labels)), labels)
    if len(labels) <= 12:
        for i in range(len(labels)):
            for j in range(len(labels)):
                ax_corr.text(
                    j,
                    i,
                    f"{values[i, j]:.2f}",
                    ha="center",
                    va="center",
                    fontsize="small",
                    color="white" if image.norm(values[i, j]) < 0.6 else "black",
                )
    fig.colorbar(image, ax=ax_corr, shrink=0.8)
    ax_corr.set_title(title)


__all__ = ["plot_stack", "prediction_correlation", "summary_table"]
