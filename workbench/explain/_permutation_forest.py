"""Permuted raw scores of scikit-learn's deep tree ensembles, walked tree by tree.

The row-major kernel of ``_permutation_engine`` walks each row through every tree in turn, so a
deep forest (a megabyte of nodes) is fetched from memory again for every row, and the walks a
donor row causes are cache misses. Here a block of rows goes through one tree at a time: the tree
stays in the first-level cache while every row, unit and repeat of the block is walked in it.

Per row and tree, the row's own path gives each single-feature unit it tests the interval of
threshold ranks that keeps the row on the path (rows whose path never tests a unit keep their
leaf with no check at all); a donor outside the interval is walked on from the unit's first node
on the path, and the walks are remembered with the donor ranks that share them for the row's
other repeats. Every (unit, repeat) chain sums its trees in tree order from the same start as the
library, so its raw score is bit-identical to ``predict`` on the permuted rows.
"""

from __future__ import annotations

import numba
import numpy as np

from ._permutation_engine import _INTERVAL, _go_left, _walk_from, _walk_tracking, numeric_classes
from ._trees import TreeEnsemble

_ROWS_PER_BLOCK = 256  # rows walked through one tree before the next: their chains stay in cache
_MAX_CHAINS = 160  # (unit, repeat) chains per call


def applies(ensemble: TreeEnsemble, units: list[list[int]]) -> bool:
    """Whether the tree-by-tree kernel serves this call: a scikit-learn, LightGBM or XGBoost model's
    single output, each unit one numeric feature."""
    categorical = set(ensemble.categorical_features)
    return (
        ensemble.library in ("sklearn", "lightgbm", "xgboost")
        and ensemble.num_class == 1
        and len(units) > 0
        and all(len(cols) == 1 and cols[0] not in categorical for cols in units)
    )


@numba.njit(cache=True, inline="always")
def _path_intervals(
    nodes, cat_start, cat_len, words, node, M, i, unit_of, unit_last, tick, stamp, touched, first, lo, hi
):
    """Row ``i``'s walk from ``node``: its leaf and the number of units its path tests, listed in
    ``touched`` with their first node and rank interval (``stamp[u] == tick`` marks them)."""
    n_touch = 0
    while node >= 0:
        f = nodes[node].feat
        u = unit_of[f]
        go = _go_left(nodes, cat_start, cat_len, words, node, M[i, f])
        if u >= 0:
            if stamp[u] != tick:
                stamp[u] = tick
                touched[n_touch] = u
                n_touch += 1
                first[u] = node
                lo[u] = 0
                hi[u] = unit_last[u]
            k = nodes[node].k
            if go:
                hi[u] = min(hi[u], k)
            else:
                lo[u] = max(lo[u], k + 1)
        node = nodes[node].left if go else nodes[node].right
    return ~node, n_touch


@numba.njit(cache=True, inline="always")
def _donor_leaf(nodes, cat_start, cat_len, words, M, i, j, u, b, first, unit_of, unit_last, no_mask, memo):
    """Row ``i``'s leaf with unit ``u`` from donor ``j`` (rank ``b``) below the unit's first node,
    from the walks already made for this row, unit and tree (``memo``: n, then lo, hi, leaf) or a
    new one."""
    if b < 0:  # NaN or zero (no rank): walk
        return _walk_from(nodes, cat_start, cat_len, words, first[u], M, i, j, unit_of, u)
    n = memo[0, 0]
    for s in range(1, n + 1):
        if memo[s, 0] <= b <= memo[s, 1]:
            return memo[s, 2]
    leaf, lo, hi, _ = _walk_tracking(
        nodes, cat_start, cat_len, words, first[u], M, i, j, unit_of, u, _INTERVAL, unit_last[u], no_mask
    )
    memo[n + 1, 0] = lo
    memo[n + 1, 1] = hi
    memo[n + 1, 2] = leaf
    memo[0, 0] = n + 1
    return leaf


@numba.njit(cache=True, inline="always")
def _changed_chains(
    nodes, cats, M, i, k, leaf_value, v0, n_touch, touched, tables, first, lo, hi, memo, acc, fix_q, fix_v
):
    """The chains (unit, repeat) of row ``i`` (``k`` in its block) whose leaf value in this tree is
    not ``v0``: their index in ``fix_q`` and new partial sum in ``fix_v``; returns how many."""
    cat_start, cat_len, words = cats
    unit_of, unit_last, donor_bin, perms, no_mask = tables
    n_rep = perms.shape[0]
    n_fix = 0
    for x in range(n_touch):
        u = touched[x]
        memo[0, 0] = 0
        for r in range(n_rep):
            b = donor_bin[k, u, r]
            if b >= 0 and lo[u] <= b <= hi[u]:
                continue
            j = perms[r, i]
            leaf = _donor_leaf(
                nodes, cat_start, cat_len, words, M, i, j, u, b, first, unit_of, unit_last, no_mask, memo
            )
            v = leaf_value[leaf]
            if v != v0:
                q = u * n_rep + r
                fix_q[n_fix] = q
                fix_v[n_fix] = acc[k, q] + v
                n_fix += 1
    return n_fix


@numba.njit(cache=True, parallel=True)
def _forest_permuted(
    nodes, cat_start, cat_len, words, roots, leaf_value, init, M, unit_of, unit_last, unit_bin, perms, block, out, raw
):
    n_trees = roots.shape[0]
    n_units = unit_last.shape[0]
    n_rep = perms.shape[0]
    m = M.shape[0]
    n_chains = n_units * n_rep
    no_mask = np.zeros(0, dtype=np.uint64)
    for bk in numba.prange((m + block - 1) // block):
        start = bk * block
        nb = min(m, start + block) - start
        acc = np.full((nb, n_chains), init[0])  # chain q = u * n_rep + r
        own = np.full(nb, init[0])
        leaf_sum = np.full(1, init[0])  # a leaf value in the sums' type (float32 for XGBoost)
        stamp = np.full(n_units, -1, dtype=np.int64)
        touched = np.empty(n_units, dtype=np.int64)
        first = np.empty(n_units, dtype=np.int64)
        lo = np.empty(n_units, dtype=np.int64)
        hi = np.empty(n_units, dtype=np.int64)
        fix_q = np.empty(n_chains, dtype=np.int64)
        fix_v = np.empty(n_chains, dtype=np.float64)
        memo = np.empty((n_rep + 1, 3), dtype=np.int64)
        donor_bin = np.empty((nb, n_units, n_rep), dtype=np.int32)  # read at every tree: gathered once
        for k in range(nb):
            for u in range(n_units):
                for r in range(n_rep):
                    donor_bin[k, u, r] = unit_bin[u, perms[r, start + k]]
        tables = (unit_of, unit_last, donor_bin, perms, no_mask)
        cats = (cat_start, cat_len, words)
        tick = 0
        for t in range(n_trees):
            for k in range(nb):
                i = start + k
                tick += 1
                lf, n_touch = _path_intervals(
                    nodes,
                    cat_start,
                    cat_len,
                    words,
                    roots[t],
                    M,
                    i,
                    unit_of,
                    unit_last,
                    tick,
                    stamp,
                    touched,
                    first,
                    lo,
                    hi,
                )
                v0 = leaf_value[lf]
                n_fix = _changed_chains(
                    nodes,
                    cats,
                    M,
                    i,
                    k,
                    leaf_value,
                    v0,
                    n_touch,
                    touched,
                    tables,
                    first,
                    lo,
                    hi,
                    memo,
                    acc,
                    fix_q,
                    fix_v,
                )
                own[k] += v0
                leaf_sum[0] = v0
                add = leaf_sum[0]
                for q in range(n_chains):
                    acc[k, q] += add
                for x in range(n_fix):
                    acc[k, fix_q[x]] = fix_v[x]
        for k in range(nb):
            raw[start + k, 0] = own[k]
            for u in range(n_units):
                for r in range(n_rep):
                    out[u, r, start + k, 0] = acc[k, u * n_rep + r]


def permuted_raw_scores(
    ensemble: TreeEnsemble,
    M: np.ndarray,
    units: list[list[int]],
    perms: np.ndarray,
    packed: tuple[np.ndarray, tuple],
    thresholds: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """``(permuted, raw)`` as :func:`~workbench.explain._permutation_engine.permuted_raw_scores`
    returns them, before a forest's division (``packed``: the nodes and categorical bounds of
    ``pack_nodes``, ``thresholds``: each feature's sorted distinct thresholds).

    Units no tree splits on keep the unpermuted score; the others go in groups of at most
    :data:`_MAX_CHAINS` (unit, repeat) chains, as every chain is added to at every tree.
    """
    m, n_rep = M.shape[0], perms.shape[0]
    out = np.empty((len(units), n_rep, m, 1), dtype=np.float64)
    raw = np.empty((m, 1), dtype=np.float64)
    split = set(np.unique(ensemble.split_feature).tolist())
    used = [u for u, (f,) in enumerate(units) if f in split]
    per_call = max(1, _MAX_CHAINS // n_rep)
    perms = np.ascontiguousarray(perms, dtype=np.int64)
    for g in range(0, max(1, len(used)), per_call):
        group = used[g : g + per_call]
        part = np.empty((len(group), n_rep, m, 1), dtype=np.float64)
        _run(ensemble, M, [units[u][0] for u in group], perms, packed, thresholds, part, raw)
        out[group] = part
    for u in sorted(set(range(len(units))) - set(used)):
        out[u] = raw
    return out, raw


def _run(ensemble, M, features, perms, packed, thresholds, out, raw) -> None:
    nodes, cats = packed
    unit_of = np.full(ensemble.n_features, -1, dtype=np.int64)
    unit_last = np.empty(len(features), dtype=np.int64)
    unit_bin = np.empty((len(features), M.shape[0]), dtype=np.int64)
    for u, f in enumerate(features):
        unit_of[f] = u
        unit_last[u] = len(thresholds[f])
        unit_bin[u] = numeric_classes(M[:, f], thresholds[f])[1]  # -1: NaN or zero, walked
    base = ensemble.base_score
    # XGBoost's running sums are float32: chains held in float32 round as its float32 additions do
    # (a float32 plus a float32-valued leaf, added in float64 and stored, is rounded once)
    dtype = np.float32 if ensemble.float32_sums else np.float64
    init = np.zeros(1, dtype=dtype) if base is None else np.asarray(base, dtype=dtype)[:1]
    root, values = ensemble.root, ensemble.leaf_value
    args = (unit_of, unit_last, unit_bin, perms, _ROWS_PER_BLOCK, out, raw)
    _forest_permuted(nodes, *cats, root, values, init, M, *args)
