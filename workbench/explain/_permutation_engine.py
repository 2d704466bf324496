"""Compiled kernels behind permutation importance for LightGBM ensembles.

Permuting a unit (one feature, or a group of columns permuted together) gives row ``i`` the unit
values of a donor row ``j``. That changes row ``i``'s leaf in a tree only if its decision path
meets a split on the unit *and* the donor turns the other way at one of those splits. The kernel
walks each row once through every tree, recording per unit the trees whose path meets the unit
and, for a single numeric feature, the interval of threshold ranks (the feature's split
thresholds, sorted) that keeps the row on its path. A repeat then costs, per such tree, one
interval test (numeric feature) or a check of the unit's splits on the path (categorical
features, groups, missing values), and a short walk down from the unit's first split only when
the leaf changes. Rows whose donor falls in the same class (same turn at every split of the unit)
are skipped outright.

Scores are re-added in tree order from the first tree whose leaf changed, starting from the
exact partial sum before it, so permuted raw scores are bit-identical to LightGBM's ``predict``
(updating a total as ``base - old + new`` is not: it changes ties and moves AUC).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numba
import numpy as np

from ._trees import TreeEnsemble

# One node per 32 bytes, so a step down a tree touches one cache line instead of seven arrays.
NODE = np.dtype(
    [("thr", "f8"), ("feat", "i4"), ("left", "i4"), ("right", "i4"), ("flags", "i4"), ("cat", "i4"), ("k", "i4")],
    align=True,
)
_CATEGORICAL, _DEFAULT_LEFT = 1, 2


@numba.njit(cache=True, inline="always")
def _go_left(nodes, cat_start, cat_len, words, node, fval):
    """LightGBM's decision at ``node`` for value ``fval`` (same rules as ``_trees._go_left``)."""
    flags = nodes[node].flags
    if flags & _CATEGORICAL:
        if math.isnan(fval):
            return False
        code = int(fval)
        if code < 0:
            return False
        c = nodes[node].cat
        word = code // 32
        if word >= cat_len[c]:
            return False
        return (words[cat_start[c] + word] >> np.uint32(code % 32)) & np.uint32(1) == np.uint32(1)
    missing = (flags >> 2) & 3
    if math.isnan(fval) and missing != 2:
        fval = 0.0
    if (missing == 1 and abs(fval) <= 1e-35) or (missing == 2 and math.isnan(fval)):
        return (flags & _DEFAULT_LEFT) != 0
    return fval <= nodes[node].thr


@numba.njit(cache=True, inline="always")
def _walk_from(nodes, cat_start, cat_len, words, node, M, i, j, unit_of, u):
    """Leaf reached from ``node`` by row ``i`` whose unit-``u`` features take row ``j``'s values."""
    while node >= 0:
        f = nodes[node].feat
        v = M[j, f] if unit_of[f] == u else M[i, f]
        if _go_left(nodes, cat_start, cat_len, words, node, v):
            node = nodes[node].left
        else:
            node = nodes[node].right
    return ~node


@numba.njit(cache=True, parallel=True)
def _permuted_raw(
    nodes,
    cat_start,
    cat_len,
    words,
    roots,
    leaf_value,
    num_class,
    init,
    f32,
    max_path,
    M,
    unit_of,
    unit_cls,
    unit_is_interval,
    unit_last,
    unit_bin,
    perms,
    row_start,
    row_stop,
    rows_per_chunk,
    out,
    base_out,
):
    n_trees = roots.shape[0]
    n_units = unit_cls.shape[0]
    n_rep = perms.shape[0]
    K = num_class
    n_chunks = (row_stop - row_start + rows_per_chunk - 1) // rows_per_chunk
    for ch in numba.prange(n_chunks):
        leaf = np.empty(n_trees, dtype=np.int64)
        val = np.empty(n_trees, dtype=np.float64)
        prefix = np.empty(n_trees, dtype=np.float64)
        path_start = np.empty(n_trees + 1, dtype=np.int64)
        path_node = np.empty(n_trees * max_path, dtype=np.int32)
        path_left = np.empty(n_trees * max_path, dtype=np.bool_)
        base = np.empty(K, dtype=np.float64)
        first = np.empty(K, dtype=np.int64)
        stamp = np.empty(n_units, dtype=np.int64)
        cnt = np.empty(n_units, dtype=np.int64)
        aff_tree = np.empty((n_units, n_trees), dtype=np.int32)
        aff_node = np.empty((n_units, n_trees), dtype=np.int32)
        aff_lo = np.empty((n_units, n_trees), dtype=np.int32)
        aff_hi = np.empty((n_units, n_trees), dtype=np.int32)
        changed = np.empty(n_trees, dtype=np.int64)
        start = row_start + ch * rows_per_chunk
        stop = min(row_stop, start + rows_per_chunk)
        for i in range(start, stop):
            # 1. The row's own path in every tree: leaf, value, prefix sum, the unit splits passed
            #    (with the turn taken) and, per unit, the trees whose path meets one of its splits,
            #    the first such node, and for a numeric feature the interval of threshold ranks
            #    that keeps the row on this path.
            for c in range(K):
                base[c] = init[c]
            for u in range(n_units):
                stamp[u] = -1
                cnt[u] = 0
            p = 0
            for t in range(n_trees):
                path_start[t] = p
                node = roots[t]
                while node >= 0:
                    f = nodes[node].feat
                    u = unit_of[f]
                    go = _go_left(nodes, cat_start, cat_len, words, node, M[i, f])
                    if u >= 0:
                        path_node[p] = node
                        path_left[p] = go
                        p += 1
                        if stamp[u] != t:
                            stamp[u] = t
                            a = cnt[u]
                            aff_tree[u, a] = t
                            aff_node[u, a] = node
                            aff_lo[u, a] = 0
                            aff_hi[u, a] = unit_last[u]
                            cnt[u] += 1
                        if unit_is_interval[u]:
                            a = cnt[u] - 1
                            k = nodes[node].k
                            if go:
                                aff_hi[u, a] = min(aff_hi[u, a], k)
                            else:
                                aff_lo[u, a] = max(aff_lo[u, a], k + 1)
                    node = nodes[node].left if go else nodes[node].right
                lf = ~node
                leaf[t] = lf
                v = leaf_value[lf]
                val[t] = v
                c = t % K
                prefix[t] = base[c]
                if f32:  # XGBoost rounds its running sum to float32 after every tree
                    base[c] = np.float32(np.float32(base[c]) + np.float32(v))
                else:
                    base[c] += v
            path_start[n_trees] = p
            for c in range(K):
                base_out[i, c] = base[c]
            # 2. Every unit and repeat. A tree's leaf changes only if the donor row turns the
            #    other way at one of the unit's splits on the path: for a numeric feature, when
            #    the donor's threshold rank leaves the interval; otherwise check those splits.
            #    Changed trees are walked on with the donor's values.
            for u in range(n_units):
                n_aff = cnt[u]
                own = unit_cls[u, i]
                for r in range(n_rep):
                    j = perms[r, i]
                    if n_aff == 0 or unit_cls[u, j] == own:
                        for c in range(K):
                            out[u, r, i, c] = base[c]
                        continue
                    for c in range(K):
                        first[c] = n_trees
                    n_changed = 0
                    b = unit_bin[u, j]
                    for a in range(n_aff):
                        t = aff_tree[u, a]
                        new_leaf = -1
                        if b >= 0:
                            if b < aff_lo[u, a] or b > aff_hi[u, a]:
                                new_leaf = _walk_from(
                                    nodes, cat_start, cat_len, words, aff_node[u, a], M, i, j, unit_of, u
                                )
                        else:
                            for q in range(path_start[t], path_start[t + 1]):
                                node = path_node[q]
                                f = nodes[node].feat
                                if unit_of[f] != u:
                                    continue
                                go = _go_left(nodes, cat_start, cat_len, words, node, M[j, f])
                                if go != path_left[q]:
                                    child = nodes[node].left if go else nodes[node].right
                                    new_leaf = _walk_from(nodes, cat_start, cat_len, words, child, M, i, j, unit_of, u)
                                    break
                        if new_leaf >= 0 and new_leaf != leaf[t]:
                            val[t] = leaf_value[new_leaf]
                            changed[n_changed] = t
                            n_changed += 1
                            c = t % K
                            if first[c] == n_trees:
                                first[c] = t
                    for c in range(K):
                        t = first[c]
                        if t == n_trees:
                            out[u, r, i, c] = base[c]
                            continue
                        acc = prefix[t]
                        while t < n_trees:
                            if f32:
                                acc = np.float32(np.float32(acc) + np.float32(val[t]))
                            else:
                                acc += val[t]
                            t += K
                        out[u, r, i, c] = acc
                    for q in range(n_changed):
                        t = changed[q]
                        val[t] = leaf_value[leaf[t]]


def pack_nodes(ensemble: TreeEnsemble) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ensemble's internal nodes as one :data:`NODE` record each, plus categorical bitset bounds."""
    e = ensemble
    nodes = np.zeros(len(e.split_feature), dtype=NODE)
    nodes["thr"] = e.threshold
    nodes["feat"] = e.split_feature
    nodes["left"] = e.left
    nodes["right"] = e.right
    nodes["flags"] = (
        e.is_categorical.astype(np.int32) * _CATEGORICAL
        + e.default_left.astype(np.int32) * _DEFAULT_LEFT
        + (e.missing_type.astype(np.int32) << 2)
    )
    nodes["k"] = threshold_index(e)[0]
    cat_nodes = np.flatnonzero(e.is_categorical)
    nodes["cat"] = -1
    nodes["cat"][cat_nodes] = np.arange(len(cat_nodes))
    return nodes, e.cat_start[cat_nodes].astype(np.int64), e.cat_len[cat_nodes].astype(np.int64)


def threshold_index(ensemble: TreeEnsemble) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per node, the rank of its threshold among its feature's distinct numeric thresholds.

    Returns ``(node_k, thresholds)`` with ``thresholds[f]`` the sorted distinct thresholds of the
    numeric splits on feature ``f``; ``node_k`` is -1 at categorical nodes.
    """
    node_k = np.full(len(ensemble.split_feature), -1, dtype=np.int64)
    thresholds: list[np.ndarray] = []
    numeric = ~ensemble.is_categorical
    for f in range(ensemble.n_features):
        nodes = np.flatnonzero((ensemble.split_feature == f) & numeric)
        values = np.unique(ensemble.threshold[nodes])
        thresholds.append(values)
        node_k[nodes] = np.searchsorted(values, ensemble.threshold[nodes])
    return node_k, thresholds


def numeric_classes(column: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decision classes of a numeric column: equal class, equal decision at every split.

    Ordinary values are classed by how many thresholds lie below them; NaN and values within
    LightGBM's zero threshold (which splits treat specially) get classes of their own and
    interval index -1, meaning "walk the tree".
    """
    n_bins = len(thresholds) + 1
    interval = np.searchsorted(thresholds, column, side="left").astype(np.int64)
    nan = np.isnan(column)
    zero = np.abs(column) <= 1e-35
    interval[nan] = 0
    cls = interval + n_bins * (zero.astype(np.int64) + 2 * nan.astype(np.int64))
    interval[nan | zero] = -1
    return cls, interval


def categorical_classes(column: np.ndarray) -> np.ndarray:
    """Decision classes of a categorical column: LightGBM looks at ``int(value)`` if it is >= 0."""
    with np.errstate(invalid="ignore"):
        code = np.trunc(column)
        bad = ~np.isfinite(code) | (code < 0) | (code >= 2**31)
    return np.where(bad, -1.0, code).astype(np.int64)


def max_path_length(ensemble: TreeEnsemble) -> int:
    """The most internal nodes on any root-to-leaf path of the ensemble."""
    depth = np.zeros(len(ensemble.split_feature), dtype=np.int64)
    best = 0
    for root in ensemble.root:
        if root < 0:
            continue
        depth[root] = 1
        stack = [int(root)]
        while stack:
            node = stack.pop()
            best = max(best, int(depth[node]))
            for child in (ensemble.left[node], ensemble.right[node]):
                if child >= 0:
                    depth[child] = depth[node] + 1
                    stack.append(int(child))
    return best


def permuted_raw_scores(
    ensemble: TreeEnsemble,
    M: np.ndarray,
    units: list[list[int]],
    perms: np.ndarray,
    on_rows: Callable[[int], None] | None = None,
    block_rows: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores with each unit permuted, and without: ``(permuted, raw)``.

    ``permuted`` is ``float64[n_units, n_repeats, n_rows, num_class]``, ``raw`` the unpermuted
    ``float64[n_rows, num_class]`` (equal to LightGBM's raw ``predict``). ``perms[r, i]`` is the
    row whose unit values row ``i`` receives in repeat ``r``; ``units`` are disjoint lists of
    column indices of ``M``. Rows are done in blocks of ``block_rows``, reported to ``on_rows``.
    """
    M = np.ascontiguousarray(M, dtype=np.float64)
    m = M.shape[0]
    _, thresholds = threshold_index(ensemble)
    categorical = set(ensemble.categorical_features)
    unit_of = np.full(ensemble.n_features, -1, dtype=np.int64)
    unit_cls = np.empty((len(units), m), dtype=np.int64)
    unit_is_interval = np.zeros(len(units), dtype=np.bool_)
    unit_last = np.zeros(len(units), dtype=np.int64)
    unit_bin = np.full((len(units), m), -1, dtype=np.int64)
    for u, cols in enumerate(units):
        unit_of[cols] = u
        per_col = []
        for f in cols:
            if f in categorical:
                per_col.append(categorical_classes(M[:, f]))
                continue
            cls, rank = numeric_classes(M[:, f], thresholds[f])
            per_col.append(cls)
            if len(cols) == 1:
                unit_is_interval[u] = True
                unit_last[u] = len(thresholds[f])
                unit_bin[u] = rank
        if len(per_col) == 1:
            unit_cls[u] = per_col[0]
        else:
            unit_cls[u] = np.unique(np.column_stack(per_col), axis=0, return_inverse=True)[1].ravel()
    out = np.empty((len(units), perms.shape[0], m, ensemble.num_class), dtype=np.float64)
    raw = np.empty((m, ensemble.num_class), dtype=np.float64)
    nodes, cat_start, cat_len = pack_nodes(ensemble)
    perms = np.ascontiguousarray(perms, dtype=np.int64)
    max_path = max(1, max_path_length(ensemble))
    base = ensemble.base_score
    init = np.zeros(ensemble.num_class) if base is None else np.asarray(base, dtype=np.float64)
    for start in range(0, m, block_rows):
        stop = min(m, start + block_rows)
        _permuted_raw(
            nodes,
            cat_start,
            cat_len,
            ensemble.cat_words,
            ensemble.root,
            ensemble.leaf_value,
            ensemble.num_class,
            init,
            ensemble.float32_sums,
            max_path,
            M,
            unit_of,
            unit_cls,
            unit_is_interval,
            unit_last,
            unit_bin,
            perms,
            start,
            stop,
            64,
            out,
            raw,
        )
        if on_rows is not None:
            on_rows(stop - start)
    if ensemble.divisor != 1.0:  # averaging forests: the sum over the trees, divided as the library does
        out /= ensemble.divisor
        raw /= ensemble.divisor
    return out, raw


# --- Metrics over many permuted score vectors at once ---


@numba.njit(cache=True, parallel=True)
def _roc_auc_rows(scores, positive):
    n_sets, m = scores.shape
    pos_idx = np.flatnonzero(positive)
    neg_idx = np.flatnonzero(~positive)
    n_pos, n_neg = pos_idx.shape[0], neg_idx.shape[0]
    out = np.empty(n_sets, dtype=np.float64)
    for b in numba.prange(n_sets):
        s = scores[b]
        pos = np.sort(s[pos_idx])
        neg = np.sort(s[neg_idx])
        # Each positive beats the negatives below it and ties with the equal ones (half credit).
        area = 0.0
        below = 0
        k = 0
        while k < n_pos:
            value = pos[k]
            same = 1
            while k + same < n_pos and pos[k + same] == value:
                same += 1
            while below < n_neg and neg[below] < value:
                below += 1
            equal = 0
            while below + equal < n_neg and neg[below + equal] == value:
                equal += 1
            area += same * (below + 0.5 * equal)
            k += same
        out[b] = area / (float(n_pos) * float(n_neg))
    return out


def roc_auc_many(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of ``scores`` against the boolean ``positive`` labels (ties count half)."""
    return _roc_auc_rows(np.ascontiguousarray(scores, dtype=np.float64), np.ascontiguousarray(positive, dtype=np.bool_))
