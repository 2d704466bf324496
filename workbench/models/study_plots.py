"""Figures of an Optuna study (pyplot-free): optimisation history, parameter importances and
parallel coordinates. Each takes ``ax=`` and returns the axes it drew on."""

from __future__ import annotations

from typing import Any


def _axes(size: tuple[float, float]) -> Any:
    """Axes on a figure of its own, without pyplot (no GUI backend, nothing left open)."""
    from matplotlib.figure import Figure

    return Figure(figsize=size).add_subplot()


def plot_history(study: Any, ax: Any = None) -> Any:
    """Each completed trial's value by trial number, and the best so far."""
    ax = ax or _axes((6, 3.2))
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    xs, ys = [t.number for t in done], [t.value for t in done]
    better = min if study.direction.name == "MINIMIZE" else max
    best = [better(ys[: i + 1]) for i in range(len(ys))]
    ax.scatter(xs, ys, s=14, label="trial")
    ax.step(xs, best, where="post", color="C3", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("objective")
    ax.set_title("optimisation history")
    ax.legend(loc="best", fontsize=8)
    return ax


def param_importances(study: Any, seed: int = 0) -> dict[str, float]:
    """Optuna's fANOVA importance of each parameter ({} with fewer than two completed trials)."""
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(done) < 2:
        return {}
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        return optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (ValueError, RuntimeError):
        return {}  # e.g. every completed trial has the same parameters


def plot_importances(study: Any, ax: Any = None) -> Any:
    """Horizontal bars of :func:`param_importances`."""
    ax = ax or _axes((6, 3.2))
    imp = param_importances(study)
    names = list(imp)[::-1]
    ax.barh(names, [imp[n] for n in names])
    ax.set_xlabel("importance (fANOVA)")
    ax.set_title("parameter importances")
    return ax


def plot_parallel(study: Any, ax: Any = None) -> Any:
    """Parallel coordinates: each completed trial a line over its parameters (scaled to [0, 1]),
    coloured by its value."""
    import matplotlib
    import numpy as np

    ax = ax or _axes((7, 3.5))
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    names = sorted({k for t in done for k in t.params})
    if not done or not names:
        ax.set_title("parallel coordinates (no completed trials)")
        return ax
    cols = []
    for name in names:
        raw = [t.params.get(name) for t in done]
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw if v is not None):
            vals = np.array([np.nan if v is None else float(v) for v in raw])
        else:
            levels = sorted({str(v) for v in raw})
            vals = np.array([levels.index(str(v)) for v in raw], dtype=float)
        lo, hi = np.nanmin(vals), np.nanmax(vals)
        cols.append((vals - lo) / (hi - lo) if hi > lo else np.full_like(vals, 0.5))
    grid = np.vstack(cols).T
    values = np.array([t.value for t in done])
    span = values.max() - values.min()
    colours = matplotlib.colormaps["viridis"]((values - values.min()) / span if span > 0 else np.full_like(values, 0.5))
    for row, colour in zip(grid, colours):
        ax.plot(range(len(names)), row, color=colour, alpha=0.7, linewidth=1)
    ax.set_xticks(range(len(names)), names, rotation=20)
    ax.set_yticks([])
    ax.set_title("parallel coordinates (colour: objective)")
    return ax
