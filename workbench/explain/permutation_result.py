"""The result of permutation importance: table, eli5-style HTML, bar/box plot and eli5 interop."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..data.results import Result, check_kind, figure_and_axes
from ..data.validation import warn_renamed


@dataclass
class PermutationImportances(Result):
    """Drop in score when a feature (or a group of columns) is permuted, per repeat.

    ``importances`` has one row per feature or group, in the order of the input columns, and one
    column per repeat: ``baseline_score - permuted_score`` (positive: the model relies on it).
    ``to_frame()`` is the sorted summary. Like scikit-learn's result it has ``importances_mean`` and
    ``importances_std`` (input order); ``to_sklearn()`` returns exactly that ``Bunch``.
    ``feature_groups`` maps each group of columns permuted together to its columns.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = LGBMClassifier(n_estimators=30, verbose=-1).fit(X[:5000], y[:5000])
    >>> X_valid, y_valid = X[5000:5500], y[5000:5500]
    >>> from workbench.explain import permutation_importance
    >>> result = permutation_importance(model, X_valid, y_valid, scoring="roc_auc", n_repeats=3, progress=False)
    >>> result
    PermutationImportances(19 features, scoring=roc_auc, baseline=0.82..., repeats=3, engine=tree)
    >>> result.to_frame().head(3).round(3)  # mean, std and every repeat, most important first
                   mean    std  repeat_0  repeat_1  repeat_2
    feature
    Contract      0.139  0.005     0.132     0.143     0.143
    tenure        0.031  0.004     0.026     0.032     0.035
    TotalCharges  0.012  0.004     0.010     0.008     0.017
    >>> type(result.plot(kind="box")).__name__
    'Figure'
    """

    importances: pd.DataFrame
    baseline_score: float
    scoring: str
    n_rows: int
    random_state: Any = None
    feature_groups: dict[str, list[Any]] = field(default_factory=dict)
    engine: str = "generic"
    elapsed_s: float = 0.0

    @property
    def groups(self) -> dict[str, list[Any]]:
        """Former name of ``feature_groups`` (warns)."""
        warn_renamed("PermutationImportances", "groups", "feature_groups")
        return self.feature_groups

    @property
    def n_repeats(self) -> int:
        return self.importances.shape[1]

    @property
    def mean(self) -> pd.Series:
        """Mean importance per feature, in input order."""
        return self.importances.mean(axis=1).rename("mean")

    @property
    def std(self) -> pd.Series:
        """Standard deviation over repeats (``ddof=0``, as scikit-learn), in input order."""
        return pd.Series(self.importances.to_numpy().std(axis=1), index=self.importances.index, name="std")

    @property
    def frame(self) -> pd.DataFrame:
        """Former name of :meth:`to_frame` (warns)."""
        warn_renamed("PermutationImportances", "frame", "to_frame()")
        return self.to_frame()

    def to_frame(self) -> pd.DataFrame:
        """``mean``, ``std`` and the per-repeat importances, most important first."""
        out = pd.concat([self.mean, self.std, self.importances], axis=1)
        order = np.lexsort((np.arange(len(out)), -out["mean"].to_numpy()))
        return out.iloc[order]

    @property
    def importances_mean(self) -> np.ndarray:
        """As in scikit-learn's result: mean per feature, input order."""
        return self.importances.to_numpy().mean(axis=1)

    @property
    def importances_std(self) -> np.ndarray:
        """As in scikit-learn's result: std per feature (``ddof=0``), input order."""
        return self.importances.to_numpy().std(axis=1)

    def top_features(self, top: int = 10) -> pd.Series:
        """Mean importance of the ``top`` most important features or groups, most important first."""
        return self.to_frame()["mean"].iloc[:top]

    def top(self, k: int = 10) -> list[Any]:
        """Former spelling of ``list(top_features(top=k).index)`` (warns)."""
        warn_renamed("PermutationImportances", "top(k)", "top_features(top)")
        return list(self.top_features(k).index)

    def to_sklearn(self) -> Any:
        """A ``sklearn.utils.Bunch`` with ``importances_mean``, ``importances_std``, ``importances``."""
        from sklearn.utils import Bunch

        return Bunch(
            importances_mean=self.importances_mean,
            importances_std=self.importances_std,
            importances=self.importances.to_numpy(),
        )

    def to_eli5(self, top: int | None = None) -> Any:
        """An ``eli5`` explanation, for ``eli5.format_as_html`` / ``format_as_text`` / ``format_as_dataframe``.

        Examples
        --------
        >>> import eli5
        >>> from lightgbm import LGBMClassifier
        >>> from workbench.datasets import load_telco
        >>> from workbench.explain import permutation_importance
        >>> df = load_telco()
        >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
        >>> model = LGBMClassifier(n_estimators=30, verbose=-1).fit(X[:5000], y[:5000])
        >>> X_valid, y_valid = X[5000:5500], y[5000:5500]
        >>> result = permutation_importance(model, X_valid, y_valid, scoring="roc_auc", n_repeats=3, progress=False)
        >>> eli5.format_as_dataframe(result.to_eli5()).head(2).round(3)
          feature  weight    std
        0  Contract   0.139  0.005
        1    tenure   0.031  0.004
        """
        from eli5.base import Explanation, FeatureImportances, FeatureWeight

        frame = self.to_frame()
        shown = frame if top is None else frame.iloc[:top]
        weights = [
            FeatureWeight(feature=str(name), weight=float(row["mean"]), std=float(row["std"]))
            for name, row in shown.iterrows()
        ]
        return Explanation(
            estimator=self.scoring,
            method="permutation importance",
            description=self._description(),
            feature_importances=FeatureImportances(importances=weights, remaining=len(frame) - len(shown)),
        )

    def plot(self, kind: str = "bar", top: int = 20, ax: Any = None) -> Any:
        """Horizontal bar (mean ± std) or box (per-repeat spread) plot of the ``top`` features.

        Returns the matplotlib ``Figure`` (built without pyplot, so it works headless).
        """
        check_kind(kind, ("bar", "box"), "PermutationImportances.plot")
        frame = self.to_frame().iloc[:top].iloc[::-1]
        names = [str(n) for n in frame.index]
        fig, ax = figure_and_axes(ax, 7, 1.2 + 0.32 * len(frame))
        pos = np.arange(len(frame))
        if kind == "bar":
            colors = ["#2a9d8f" if v > 0 else "#e76f51" for v in frame["mean"]]
            ax.barh(pos, frame["mean"], xerr=frame["std"], color=colors, ecolor="#444444", capsize=2)
        else:
            repeats = frame[self.importances.columns].to_numpy()
            try:
                ax.boxplot(list(repeats), positions=pos, orientation="horizontal", widths=0.6)
            except TypeError:  # matplotlib < 3.10
                ax.boxplot(list(repeats), positions=pos, vert=False, widths=0.6)
        ax.set_yticks(pos, names)
        ax.axvline(0.0, color="#888888", linewidth=0.8)
        ax.set_xlabel(f"decrease in {self.scoring}")
        ax.set_title(f"Permutation importance ({self.n_repeats} repeats, {self.n_rows:,} rows)")
        return fig

    def _description(self) -> str:
        return (
            f"Decrease in {self.scoring} when the feature is permuted (baseline {self.baseline_score:.6g}; "
            f"{self.n_repeats} repeats on {self.n_rows:,} rows; engine {self.engine})."
        )

    def __repr__(self) -> str:
        return (
            f"PermutationImportances({len(self.importances)} features, scoring={self.scoring}, "
            f"baseline={self.baseline_score:.6g}, repeats={self.n_repeats}, engine={self.engine})"
        )

    def _repr_html_(self, top: int = 20) -> str:
        frame = self.to_frame()
        shown = frame.iloc[:top]
        scale = float(np.abs(frame["mean"]).max()) or 1.0
        rows = []
        for name, row in shown.iterrows():
            weight = float(row["mean"])
            strength = min(1.0, abs(weight) / scale) ** 0.7
            hue = 120 if weight > 0 else 0
            light = 100.0 - 25.0 * strength if weight != 0 else 100.0
            label = html.escape(str(name))
            if name in self.feature_groups:
                label += f" <small>({len(self.feature_groups[name])} columns)</small>"
            rows.append(
                f"<tr style='background-color: hsl({hue}, 100.00%, {light:.2f}%); border: none;'>"
                f"<td style='padding: 0 1em 0 0.5em; text-align: right; border: none;'>"
                f"{weight:.4f} &plusmn; {2 * float(row['std']):.4f}</td>"
                f"<td style='padding: 0 0.5em; text-align: left; border: none;'>{label}</td></tr>"
            )
        more = len(frame) - len(shown)
        if more:
            rows.append(
                f"<tr><td colspan='2' style='text-align: center; border: none;'><i>&hellip; {more} more "
                "&hellip;</i></td></tr>"
            )
        return (
            "<div class='workbench-permutation-importance'>"
            f"<p style='margin: 0 0 0.5em 0'>{html.escape(self._description())}</p>"
            "<table style='border-collapse: collapse; border: none;'><thead><tr style='border: none;'>"
            "<th style='padding: 0 1em 0 0.5em; text-align: right; border: none;'>Weight</th>"
            "<th style='padding: 0 0.5em; text-align: left; border: none;'>Feature</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )


class PermutationImportancesByMetric(dict, Result):
    """Permutation importance for several metrics at once: ``{metric: PermutationImportances}``.

    What :func:`~workbench.explain.permutation_importance` returns for a multi-metric
    ``scoring`` (as scikit-learn returns a dict of ``Bunch``); every metric saw the same
    permutations. ``to_sklearn()`` is scikit-learn's dict of ``Bunch``; ``to_frame()`` the
    ``mean`` and ``std`` per metric, side by side; ``plot(metric=...)`` one metric's plot.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LinearRegression
    >>> from workbench.explain import permutation_importance
    >>> X = np.random.default_rng(0).normal(size=(200, 3))
    >>> y = X @ [1.0, 0.5, 0.0]
    >>> model = LinearRegression().fit(X, y)
    >>> by_metric = permutation_importance(model, X, y, scoring=["r2", "neg_mean_absolute_error"], progress=False)
    >>> list(by_metric), by_metric["r2"].importances_mean.round(2).tolist()
    (['r2', 'neg_mean_absolute_error'], [1.57, 0.41, 0.0])
    >>> sorted(by_metric.to_sklearn()["r2"])
    ['importances', 'importances_mean', 'importances_std']
    """

    def to_sklearn(self) -> dict[str, Any]:
        """``{metric: Bunch(importances_mean, importances_std, importances)}``, as scikit-learn."""
        return {name: result.to_sklearn() for name, result in self.items()}

    def to_frame(self) -> pd.DataFrame:
        """One row per feature (input order), a ``(metric, mean|std)`` column pair per metric."""
        parts = {name: pd.concat([r.mean, r.std], axis=1) for name, r in self.items()}
        return pd.concat(parts, axis=1)

    def plot(self, kind: str = "bar", top: int = 20, ax: Any = None, metric: str | None = None) -> Any:
        """:meth:`PermutationImportances.plot` of ``metric`` (default: the first)."""
        if metric is not None and metric not in self:
            raise ValueError(f"metric {metric!r} is not among the metrics {list(self)}")
        return self[metric if metric is not None else next(iter(self))].plot(kind=kind, top=top, ax=ax)

    def _state(self) -> dict[str, Any]:
        return {"results": dict(self)}

    @classmethod
    def _from_state(cls, state: dict[str, Any]) -> PermutationImportancesByMetric:
        return cls(state["results"])

    def __repr__(self) -> str:
        inner = ", ".join(f"{name!r}: {result!r}" for name, result in self.items())
        return f"PermutationImportancesByMetric({{{inner}}})"
