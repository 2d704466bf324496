"""Matplotlib figures for partial dependence/ICE and SHAP values.

Every function builds and returns a :class:`matplotlib.figure.Figure` without pyplot: nothing is
shown, no global figure state is touched, so a figure saved headless (Agg) is never blank and
notebooks display the returned figure once. Partial dependence plots follow pdpbox's layout (PD
line over thin ICE lines, the feature's distribution underneath; a heat map for two features);
SHAP plots follow shap's (beeswarm and bar summaries, dependence scatter, waterfall).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..data.results import figure_and_axes
from ..data.validation import renamed_params

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .pdp import PartialDependence
    from .shapley import ShapValues

PD_COLOR = "#1A4E5D"
ICE_COLOR = "#66C2D7"
POSITIVE = "#FF0051"
NEGATIVE = "#008BFB"


def _feature_cmap() -> Any:
    """Blue (low) through purple to red (high), as shap colours feature values."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("workbench_feature", [NEGATIVE, POSITIVE])


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _fmt(value: Any) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


# ------------------------------------------------------------------------- partial dependence


def _ice_sample(n: int, n_ice: int, random_state: int) -> np.ndarray:
    if n <= n_ice:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size=n_ice, replace=False))


def _distribution(ax: Axes, values: np.ndarray, categorical: bool, grid: np.ndarray, name: str) -> None:
    if categorical:
        counts = pd.Series(values).value_counts()
        ax.bar(np.arange(len(grid)), [counts.get(g, 0) for g in grid], color=ICE_COLOR, edgecolor=PD_COLOR)
        ax.set_xticks(
            np.arange(len(grid)),
            [_fmt(g) for g in grid],
            rotation=30 if len(grid) > 4 else 0,
            ha="right" if len(grid) > 4 else "center",
        )
    else:
        finite = np.asarray(values, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        lo, hi = min(grid.min(), finite.min()), max(grid.max(), finite.max())
        ax.hist(
            finite,
            bins=min(40, max(5, np.unique(finite).size)),
            range=(lo, hi),
            color=ICE_COLOR,
            edgecolor=PD_COLOR,
            linewidth=0.5,
        )
        ax.plot(grid, np.zeros_like(grid), "|", color=PD_COLOR, markersize=8, label="grid points")
    ax.set_ylabel("rows")
    ax.set_xlabel(name)
    ax.grid(axis="y", alpha=0.3)


def _plot_1d(
    result: PartialDependence,
    ice: bool,
    centered: bool,
    n_ice: int,
    distribution: bool,
    random_state: int,
    ax: Axes | None = None,
) -> Figure:
    if ax is not None:  # one given axes: no room for the distribution panel
        fig, top, bottom = ax.figure, ax, None
    elif distribution:
        fig = _figure(7.5, 5.5)
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    else:
        fig, top = figure_and_axes(None, 7.5, 4.2)
        bottom = None
    grid = result.grid[0]
    categorical = result.categorical[0]
    x = np.arange(len(grid)) if categorical else np.asarray(grid, dtype=np.float64)
    average = result.average
    curves = result.individual if ice else None
    if centered:
        average = average - average[0]
        curves = None if curves is None else curves - curves[:, :1]
    if curves is not None:
        rows = _ice_sample(len(curves), n_ice, random_state)
        top.plot(x, curves[rows].T, color=ICE_COLOR, alpha=0.35, linewidth=0.7)
        top.plot(
            [],
            [],
            color=ICE_COLOR,
            label=f"ICE ({len(rows):,} of {len(curves):,} rows)" if len(rows) < len(curves) else "ICE",
        )
    top.plot(
        x,
        average,
        color=PD_COLOR,
        linewidth=2.5,
        marker="o" if categorical or len(grid) <= 20 else None,
        markersize=5,
        label="average (PD)",
    )
    top.set_ylabel(("centred " if centered else "") + result.target)
    top.set_title(f"Partial dependence of {result.target} on {result.features[0]}", loc="left", fontsize=11)
    top.legend(loc="best", fontsize=8, frameon=False)
    top.grid(alpha=0.3)
    if bottom is not None:
        _distribution(bottom, result.feature_values[0], categorical, grid, result.features[0])
    elif categorical:
        top.set_xticks(x, [_fmt(g) for g in grid])
        top.set_xlabel(result.features[0])
    else:
        top.set_xlabel(result.features[0])
    return fig


def _plot_2d(result: PartialDependence, annotate: bool | None, ax: Axes | None = None) -> Figure:
    fig, ax = figure_and_axes(ax, 7.5, 6)
    values = result.average  # (len(grid[0]), len(grid[1])): rows = feature 0 on the y axis
    image = ax.imshow(values, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    cbar = fig.colorbar(image, ax=ax)
    cbar.set_label(result.target)
    for grid, set_ticks in ((result.grid[0], ax.set_yticks), (result.grid[1], ax.set_xticks)):
        step = max(1, len(grid) // 10)
        idx = np.arange(0, len(grid), step)
        set_ticks(idx, [_fmt(grid[i]) for i in idx])
    ax.set_ylabel(result.features[0])
    ax.set_xlabel(result.features[1])
    if annotate is None:
        annotate = values.size <= 144
    if annotate:
        mid = (np.nanmax(values) + np.nanmin(values)) / 2
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                ax.text(
                    j,
                    i,
                    f"{values[i, j]:.3g}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if values[i, j] < mid else "black",
                )
    ax.set_title(
        f"Partial dependence of {result.target} on {result.features[0]} × {result.features[1]}", loc="left", fontsize=11
    )
    return fig


def plot_partial_dependence(
    result: PartialDependence,
    *,
    ice: bool = True,
    centered: bool = False,
    n_ice: int = 200,
    distribution: bool = True,
    annotate: bool | None = None,
    random_state: int = 0,
    ax: Axes | None = None,
) -> Figure:
    """pdpbox-style figure of a :func:`~workbench.explain.partial_dependence` result.

    One feature: the PD line over up to ``n_ice`` ICE lines (a seeded sample; present when the
    result was computed with ``kind="both"``), optionally ``centered`` at the first grid point,
    and the feature's distribution underneath (not when drawn on a given ``ax``). Two features:
    a heat map of the average.

    Parameters
    ----------
    result : PartialDependence
        What :func:`~workbench.explain.partial_dependence` returned.
    ice : bool, default True
        Draw the ICE lines when the result has them.
    centered : bool, default False
        Start every line at 0 (c-ICE).
    n_ice : int, default 200
        Most ICE lines drawn.
    distribution : bool, default True
        Show the feature's distribution underneath.
    annotate : bool, optional
        Write the values in a 2-D heat map (default: when it is small).
    random_state : int, default 0
        Seed of the ICE sample.
    ax : matplotlib Axes, optional
        Draw there instead of on a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = LGBMClassifier(n_estimators=30, verbose=-1).fit(X[:5000], y[:5000])
    >>> X_valid, y_valid = X[5000:5500], y[5000:5500]
    >>> from workbench.explain import partial_dependence
    >>> fig = plot_partial_dependence(partial_dependence(model, X_valid, "tenure", kind="both"), centered=True)
    >>> type(fig).__name__
    'Figure'
    """
    if result.outputs is not None:
        raise ValueError(
            f"this result has {len(result.outputs)} outputs {list(result.outputs)[:5]}; a plot draws one: "
            "plot result.output(k)"
        )
    if len(result.features) > 2:
        raise ValueError(
            f"a plot draws one or two features; this result has {len(result.features)}: compute the ones to "
            "draw separately"
        )
    if result.is_2d:
        return _plot_2d(result, annotate, ax)
    return _plot_1d(result, ice and result.individual is not None, centered, n_ice, distribution, random_state, ax)


# ---------------------------------------------------------------------------------------- SHAP


def _numeric_codes(column: pd.Series) -> np.ndarray:
    """Feature values as numbers for colouring (categories by their code, text by sorted order)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy().astype(np.float64)
        codes[codes < 0] = np.nan
        return codes
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.astype(np.float64).to_numpy()
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    codes, _ = pd.factorize(column, sort=True)
    out = codes.astype(np.float64)
    out[codes < 0] = np.nan
    return out


def _color_scale(values: np.ndarray) -> np.ndarray:
    """Values to [0, 1] between their 5th and 95th percentiles (NaN stays NaN)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.full_like(values, np.nan)
    lo, hi = np.percentile(finite, [5, 95])
    if hi <= lo:
        lo, hi = finite.min(), finite.max()
    if hi <= lo:
        return np.where(np.isfinite(values), 0.5, np.nan)
    return np.clip((values - lo) / (hi - lo), 0, 1)


def _swarm_offsets(x: np.ndarray, row_height: float, random_state: int) -> np.ndarray:
    """shap-style beeswarm: points in the same x bin stack up and down from the row's centre."""
    n = len(x)
    if n == 0:
        return x
    span = np.ptp(x) or 1.0
    bins = np.round((x - x.min()) / span * 100).astype(np.int64)
    order = np.random.default_rng(random_state).permutation(n)
    offsets = np.zeros(n)
    seen: dict[int, int] = {}
    for i in order:
        k = seen.get(bins[i], 0)
        seen[bins[i]] = k + 1
        offsets[i] = (k + 1) // 2 * (1 if k % 2 else -1)
    peak = np.abs(offsets).max()
    return offsets / peak * row_height if peak > 0 else offsets


def _top_features(sv: ShapValues, top: int) -> list[str]:
    return list(sv.importance().index[:top])


@renamed_params(max_display="top")
def plot_shap_summary(
    sv: ShapValues, kind: str = "beeswarm", top: int = 20, random_state: int = 0, ax: Axes | None = None
) -> Figure:
    """SHAP summary: a ``"beeswarm"`` (one dot per row and feature, coloured by the feature's
    value) or a ``"bar"`` chart of mean |SHAP|, most important feature on top.

    ``top`` features are shown (``max_display``, its former name, still works with a warning);
    given ``ax``, the chart is drawn there.

    Parameters
    ----------
    sv : ShapValues
        What :func:`~workbench.explain.shap_values` returned.
    kind : {"beeswarm", "bar"}, default "beeswarm"
        The chart.
    top : int, default 20
        Features shown.
    random_state : int, default 0
        Seed of the beeswarm's jitter.
    ax : matplotlib Axes, optional
        Draw there instead of on a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = LGBMClassifier(n_estimators=30, verbose=-1).fit(X[:5000], y[:5000])
    >>> X_valid, y_valid = X[5000:5500], y[5000:5500]
    >>> from workbench.explain import shap_values
    >>> sv = shap_values(model, X_valid)
    >>> type(plot_shap_summary(sv, kind="bar", top=5)).__name__
    'Figure'
    """
    if kind not in ("beeswarm", "bar"):
        raise ValueError(f"kind must be 'beeswarm' or 'bar', got {kind!r}")
    features = _top_features(sv, top)
    fig, ax = figure_and_axes(ax, 7.5, 1.2 + 0.38 * len(features))
    positions = np.arange(len(features))[::-1]
    if kind == "bar":
        importance = sv.importance()[features]
        ax.barh(positions, importance.to_numpy(), color=NEGATIVE)
        for pos, value in zip(positions, importance.to_numpy(), strict=True):
            ax.text(value, pos, f" {value:.3g}", va="center", fontsize=8)
        ax.set_xlabel(f"mean |SHAP value| ({sv.target})")
    else:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        cmap = _feature_cmap()
        columns = {name: i for i, name in enumerate(sv.feature_names)}
        for pos, name in zip(positions, features, strict=True):
            x = sv.values[:, columns[name]]
            y = pos + _swarm_offsets(x, 0.38, random_state)
            scaled = _color_scale(_numeric_codes(sv.data[name]))
            missing = ~np.isfinite(scaled)
            ax.scatter(x[missing], y[missing], s=9, color="#999999", linewidths=0, rasterized=True)
            ax.scatter(
                x[~missing],
                y[~missing],
                s=9,
                c=scaled[~missing],
                cmap=cmap,
                vmin=0,
                vmax=1,
                linewidths=0,
                rasterized=True,
            )
        ax.axvline(0, color="#999999", linewidth=0.8, zorder=0)
        cbar = fig.colorbar(ScalarMappable(Normalize(0, 1), cmap), ax=ax, ticks=[0, 1], aspect=40)
        cbar.ax.set_yticklabels(["low", "high"])
        cbar.set_label("feature value")
        ax.set_xlabel(f"SHAP value ({sv.target})")
    ax.set_yticks(positions, features)
    ax.set_ylim(-0.7, len(features) - 0.3)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(sv.sample_note, loc="left", fontsize=9)
    return fig


def _strongest_interaction(sv: ShapValues, feature: str) -> str | None:
    """The feature whose values best explain the spread of ``feature``'s SHAP values."""
    names = sv.feature_names
    j = names.index(feature)
    if len(names) < 2:
        return None
    if sv.interactions is not None:
        strength = np.abs(sv.interactions[:, j, :]).mean(axis=0)
        strength[j] = -1
        return names[int(np.argmax(strength))]
    x = _numeric_codes(sv.data[feature])
    order = np.argsort(np.where(np.isfinite(x), x, np.inf), kind="stable")
    chunks = np.array_split(order, max(1, min(10, len(order) // 20)))
    shap_j = sv.values[:, j]
    best, best_score = None, -1.0
    for k, name in enumerate(names):
        if k == j:
            continue
        other = _numeric_codes(sv.data[name])
        score = 0.0
        for chunk in chunks:
            a, b = other[chunk], shap_j[chunk]
            ok = np.isfinite(a)
            if ok.sum() > 2 and np.std(a[ok]) > 0 and np.std(b[ok]) > 0:
                score += abs(np.corrcoef(a[ok], b[ok])[0, 1])
        if score > best_score:
            best, best_score = name, score
    return best


def plot_shap_dependence(
    sv: ShapValues, feature: str, color_by: str | None = "auto", random_state: int = 0, ax: Axes | None = None
) -> Figure:
    """SHAP dependence: ``feature``'s value against its SHAP value, one dot per row, coloured by
    ``color_by`` (``"auto"``: the feature that interacts most; ``None``: one colour); drawn on
    ``ax`` when given.

    Parameters
    ----------
    sv : ShapValues
        What :func:`~workbench.explain.shap_values` returned.
    feature : str
        The feature on the x axis.
    color_by : str or None, default "auto"
        As above.
    random_state : int, default 0
        Seed of the horizontal jitter of categorical values.
    ax : matplotlib Axes, optional
        Draw there instead of on a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = LGBMClassifier(n_estimators=30, verbose=-1).fit(X[:5000], y[:5000])
    >>> X_valid, y_valid = X[5000:5500], y[5000:5500]
    >>> from workbench.explain import shap_values
    >>> sv = shap_values(model, X_valid)
    >>> fig = plot_shap_dependence(sv, "tenure", color_by="Contract")
    """
    names = sv.feature_names
    if feature not in names:
        from ._inputs import feature_position

        feature_position(sv.data, feature, names)  # raises with a suggestion
    j = names.index(feature)
    if color_by == "auto":
        color_by = _strongest_interaction(sv, feature)
    elif color_by is not None and color_by not in names:
        from ._inputs import feature_position

        feature_position(sv.data, color_by, names)
    fig, ax = figure_and_axes(ax, 7, 4.8)
    column = sv.data[feature]
    categorical = not pd.api.types.is_numeric_dtype(column.dtype) or isinstance(column.dtype, pd.CategoricalDtype)
    x = _numeric_codes(column)
    if categorical:
        x = x + np.random.default_rng(random_state).uniform(-0.2, 0.2, len(x))
        labels = (
            column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else sorted(column.dropna().unique())
        )
        ax.set_xticks(np.arange(len(labels)), [str(c) for c in labels], rotation=30 if len(labels) > 4 else 0)
    y = sv.values[:, j]
    if color_by is None:
        ax.scatter(x, y, s=10, color=NEGATIVE, linewidths=0, rasterized=True)
    else:
        scaled = _color_scale(_numeric_codes(sv.data[color_by]))
        ok = np.isfinite(scaled)
        ax.scatter(x[~ok], y[~ok], s=10, color="#999999", linewidths=0, rasterized=True)
        points = ax.scatter(
            x[ok], y[ok], s=10, c=scaled[ok], cmap=_feature_cmap(), vmin=0, vmax=1, linewidths=0, rasterized=True
        )
        cbar = fig.colorbar(points, ax=ax, ticks=[0, 1], aspect=40)
        cbar.ax.set_yticklabels(["low", "high"])
        cbar.set_label(color_by)
    ax.axhline(0, color="#999999", linewidth=0.8, zorder=0)
    ax.set_xlabel(feature)
    ax.set_ylabel(f"SHAP value of {feature}")
    ax.grid(alpha=0.3)
    ax.set_title(f"{sv.target}; {sv.sample_note}", loc="left", fontsize=9)
    return fig


@renamed_params(max_display="top")
def plot_shap_waterfall(sv: ShapValues, row: int = 0, top: int = 10, ax: Axes | None = None) -> Figure:
    """How one row's prediction is built: from the base value, each feature's SHAP value in
    turn (largest first; beyond ``top`` bars the rest collapsed into one) up to the row's raw score.

    ``row`` is a position among the explained rows (``sv.data.iloc[row]``); drawn on ``ax`` when given.

    Parameters
    ----------
    sv : ShapValues
        What :func:`~workbench.explain.shap_values` returned.
    row : int, default 0
        Position of the row explained.
    top : int, default 10
        Bars before the rest is collapsed into one.
    ax : matplotlib Axes, optional
        Draw there instead of on a new figure.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ValueError
        When ``row`` is not a position among the explained rows.

    Examples
    --------
    >>> from lightgbm import LGBMClassifier
    >>> from workbench.datasets import load_telco
    >>> df = load_telco()
    >>> X, y = df.drop(columns=["customerID", "Churn"]), df["Churn"]
    >>> model = LGBMClassifier(n_estimators=30, verbose=-1).fit(X[:5000], y[:5000])
    >>> X_valid, y_valid = X[5000:5500], y[5000:5500]
    >>> from workbench.explain import shap_values
    >>> sv = shap_values(model, X_valid)
    >>> fig = plot_shap_waterfall(sv, row=0)
    """
    if not -len(sv.values) <= row < len(sv.values):
        raise ValueError(f"row must be a position among the {len(sv.values)} explained rows, got {row}")
    values = sv.values[row]
    data = sv.data.iloc[row]
    order = np.argsort(-np.abs(values), kind="stable")
    shown = order[: top - 1] if len(order) > top else order
    rest = order[len(shown) :]
    labels = [f"{sv.feature_names[k]} = {_fmt(data.iloc[k])}" for k in shown]
    contribs = list(values[shown])
    if len(rest):
        labels.append(f"{len(rest)} other features")
        contribs.append(float(values[rest].sum()))
    # draw from the bottom (smallest) up to the largest on top, starting at the base value
    labels, contribs = labels[::-1], contribs[::-1]
    fig, ax = figure_and_axes(ax, 7.5, 1.4 + 0.42 * len(labels))
    span = float(np.sum(np.abs(contribs))) or 1.0
    position = sv.base_value
    for i, c in enumerate(contribs):
        color = POSITIVE if c >= 0 else NEGATIVE
        ax.barh(i, c, left=position, color=color, height=0.6)
        ax.text(
            position + c + (0.01 * span if c >= 0 else -0.01 * span),
            i,
            f"{c:+.3g}",
            va="center",
            ha="left" if c >= 0 else "right",
            fontsize=8,
        )
        position += c
    ax.set_yticks(np.arange(len(labels)), labels)
    ax.margins(x=0.15)
    ax.axvline(sv.base_value, color="#999999", linestyle="--", linewidth=0.8)
    ax.axvline(position, color="#333333", linestyle="--", linewidth=0.8)
    ax.set_xlabel(sv.target)
    ax.set_title(f"row {sv.data.index[row]}: base value {sv.base_value:.3g} → {position:.3g}", loc="left", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig
