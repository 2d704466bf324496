"""The generic permutation engine: any fitted estimator, any scorer.

The repeats of a unit (a feature, or a group of columns permuted together) are stacked into one
frame and predicted with one call per predict method; each repeat is then scored on its slice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ._permutation_sampling import sampled
from .scorers import Responses, score

_MAX_BATCH_CELLS = 2**24  # cells of the stacked permuted copies per predict call

Units = list[list[int]]


def generic_scores(
    model: Any,
    X: Any,
    y: np.ndarray,
    weights: np.ndarray | None,
    scorer: Callable[..., float],
    units: Units,
    rows: np.ndarray | None,
    perms: np.ndarray,
    progress: bool,
) -> tuple[Any, Any]:
    """Baseline score on all rows and ``scores[unit, repeat]`` with the unit permuted.

    A scorer returning ``{metric: score}`` gives a dict of baselines and a dict of score arrays.
    """
    from tqdm.auto import tqdm

    baseline = score(scorer, model, X, y, weights)
    keys = list(baseline) if isinstance(baseline, dict) else [None]
    batches = _Batches(sampled(X, rows), perms)
    y_eval, w_eval = sampled(y, rows), sampled(weights, rows)
    scores = {key: np.empty((len(units), perms.shape[0]), dtype=np.float64) for key in keys}
    bar = tqdm(units, desc="permutation importance", unit="feature", disable=not progress, leave=False)
    for u, cols in enumerate(bar):
        for reps in batches.repeat_batches():
            big, restore = batches.permuted(cols, reps)
            cache: dict[str, np.ndarray] = {}
            for k, r in enumerate(reps):
                piece, fetch = batches.piece(model, big, k, cache)
                value = score(scorer, Responses(model, piece, fetch), piece, y_eval, w_eval)
                for key in keys:
                    scores[key][u, r] = value if key is None else value[key]
            restore()
    return baseline, (scores[None] if keys == [None] else scores)


class _Batches:
    """Stacked copies of the evaluated rows, a batch of repeats at a time, with one unit permuted."""

    def __init__(self, X_eval: Any, perms: np.ndarray) -> None:
        self.X_eval, self.perms = X_eval, perms
        self.n_repeats, self.m = perms.shape
        per_copy = max(1, self.m * X_eval.shape[1])
        self.batch = max(1, min(self.n_repeats, _MAX_BATCH_CELLS // per_copy))
        self.frame = isinstance(X_eval, pd.DataFrame)
        self._tiled: dict[int, Any] = {}

    def repeat_batches(self) -> list[list[int]]:
        return [list(range(r0, min(self.n_repeats, r0 + self.batch))) for r0 in range(0, self.n_repeats, self.batch)]

    def _tile(self, nb: int) -> Any:
        if nb not in self._tiled:
            X = self.X_eval
            self._tiled[nb] = pd.concat([X] * nb, ignore_index=True) if self.frame else np.tile(X, (nb, 1))
        return self._tiled[nb]

    def permuted(self, cols: list[int], reps: list[int]) -> tuple[Any, Callable[[], None]]:
        """The stacked copies for ``reps`` with ``cols`` permuted, and how to undo it in place."""
        X, perms = self.X_eval, self.perms
        if self.frame:
            big = self._tile(len(reps)).copy(deep=False)
            for c in cols:
                col = X.iloc[:, c]
                big.isetitem(c, pd.concat([col.iloc[perms[r]] for r in reps], ignore_index=True))
            return big, lambda: None
        big = self._tile(len(reps))
        saved = big[:, cols].copy()
        big[:, cols] = np.concatenate([X[perms[r]][:, cols] for r in reps])

        def restore() -> None:
            big[:, cols] = saved

        return big, restore

    def piece(self, model: Any, big: Any, k: int, cache: dict[str, np.ndarray]) -> tuple[Any, Callable[[str], Any]]:
        """Copy ``k`` of ``big``, and a fetch that predicts all of ``big`` once per method."""
        m = self.m
        piece = big.iloc[k * m : (k + 1) * m] if self.frame else big[k * m : (k + 1) * m]
        if self.frame:
            piece.index = self.X_eval.index

        def fetch(name: str) -> np.ndarray:
            if name not in cache:
                cache[name] = np.asarray(getattr(model, name)(big))
            return cache[name][k * m : (k + 1) * m]

        return piece, fetch
