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

One output of a LightGBM or scikit-learn model whose units are single numeric features goes to
``_permutation_forest`` instead, which walks a block of rows tree by tree (the same numbers).
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
_PATH, _INTERVAL, _MASK = 0, 1, 2  # how a unit tells whether a donor changes a tree (see _row_paths)
_MAX_MASK_CLASSES = 64
_CHAIN_VALUES = 1 << 16  # (unit, repeat, tree) changes held per row block
_ROWS_PER_CHUNK = 32  # rows per parallel task (each allocates its own work arrays)


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


@numba.njit(cache=True)
def _class_masks(nodes, cat_start, cat_len, words, node_ids, values, out):
    """``out[node]``: bit ``k`` set when value ``values[k]`` goes left at ``node`` (for ``node_ids``)."""
    for q in range(node_ids.shape[0]):
        node = node_ids[q]
        bits = np.uint64(0)
        for k in range(values.shape[0]):
            if _go_left(nodes, cat_start, cat_len, words, node, values[k]):
                bits |= np.uint64(1) << np.uint64(k)
        out[node] = bits


@numba.njit(cache=True)
def _max_depth(nodes, roots):
    """The most internal nodes on any root-to-leaf path."""
    best = 0
    stack = np.empty(2 * nodes.shape[0] + 2, dtype=np.int64)
    depth = np.empty(2 * nodes.shape[0] + 2, dtype=np.int64)
    for t in range(roots.shape[0]):
        if roots[t] < 0:
            continue
        stack[0] = roots[t]
        depth[0] = 1
        sp = 1
        while sp > 0:
            sp -= 1
            node = stack[sp]
            d = depth[sp]
            best = max(best, d)
            for child in (nodes[node].left, nodes[node].right):
                if child >= 0:
                    stack[sp] = child
                    depth[sp] = d + 1
                    sp += 1
    return best


@numba.njit(cache=True, inline="always")  # a call per row costs more than the walk of shallow trees
def _row_paths(
    nodes,
    cat_start,
    cat_len,
    words,
    roots,
    leaf_value,
    K,
    init,
    f32,
    M,
    i,
    unit_of,
    unit_mode,
    unit_last,
    node_mask,
    leaf,
    val,
    prefix,
    base,
    path_start,
    path_node,
    path_left,
    stamp,
    cnt,
    aff_tree,
    aff_node,
    aff_lo,
    aff_hi,
    aff_mask,
):
    """Row ``i``'s own path in every tree: leaf, value and prefix sum per tree, and per unit the
    trees whose path meets one of its splits (first such node, and what keeps the row on the path:
    an interval of threshold ranks, a mask of decision classes, or the recorded turns)."""
    n_trees = roots.shape[0]
    for c in range(K):
        base[c] = init[c]
    for u in range(stamp.shape[0]):
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
                mode = unit_mode[u]
                if stamp[u] != t:
                    stamp[u] = t
                    a = cnt[u]
                    aff_tree[u, a] = t
                    aff_node[u, a] = node
                    aff_lo[u, a] = 0
                    aff_hi[u, a] = unit_last[u]
                    aff_mask[u, a] = ~np.uint64(0)
                    cnt[u] += 1
                a = cnt[u] - 1
                if mode == _INTERVAL:
                    k = nodes[node].k
                    if go:
                        aff_hi[u, a] = min(aff_hi[u, a], k)
                    else:
                        aff_lo[u, a] = max(aff_lo[u, a], k + 1)
                elif mode == _MASK:
                    aff_mask[u, a] &= node_mask[node] if go else ~node_mask[node]
                else:
                    path_node[p] = node
                    path_left[p] = go
                    p += 1
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


@numba.njit(cache=True, inline="always")
def _walk_tracking(nodes, cat_start, cat_len, words, node, M, i, j, unit_of, u, mode, last, node_mask):
    """:func:`_walk_from`, also returning which donor values take the same path: the interval of
    threshold ranks (``_INTERVAL`` units) or the mask of decision classes (``_MASK`` units)."""
    lo = 0
    hi = last
    mask = ~np.uint64(0)
    while node >= 0:
        f = nodes[node].feat
        if unit_of[f] == u:
            go = _go_left(nodes, cat_start, cat_len, words, node, M[j, f])
            if mode == _INTERVAL:
                k = nodes[node].k
                if go:
                    hi = min(hi, k)
                else:
                    lo = max(lo, k + 1)
            else:
                mask &= node_mask[node] if go else ~node_mask[node]
        else:
            go = _go_left(nodes, cat_start, cat_len, words, node, M[i, f])
        node = nodes[node].left if go else nodes[node].right
    return ~node, lo, hi, mask


@numba.njit(cache=True, inline="always")
def _new_leaf(
    nodes,
    cat_start,
    cat_len,
    words,
    M,
    i,
    j,
    u,
    a,
    t,
    mode,
    b,
    unit_of,
    unit_last,
    node_mask,
    aff_node,
    aff_lo,
    aff_hi,
    aff_mask,
    path_start,
    path_node,
    path_left,
    memo_n,
    memo_lo,
    memo_hi,
    memo_mask,
    memo_leaf,
):
    """Row ``i``'s leaf in tree ``t`` with unit ``u`` from donor ``j``, or -1 when it keeps its path.

    Walks below the unit's first split are remembered per tree with the donor values that share
    them (``memo_*``, for this row and unit), so a later donor in the same range walks no more.
    """
    if mode == _PATH:
        for q in range(path_start[t], path_start[t + 1]):
            node = path_node[q]
            f = nodes[node].feat
            if unit_of[f] != u:
                continue
            go = _go_left(nodes, cat_start, cat_len, words, node, M[j, f])
            if go != path_left[q]:
                child = nodes[node].left if go else nodes[node].right
                return _walk_from(nodes, cat_start, cat_len, words, child, M, i, j, unit_of, u)
        return -1
    if mode == _MASK:
        if (aff_mask[u, a] >> np.uint64(b)) & np.uint64(1):
            return -1
        for s in range(memo_n[a]):
            if (memo_mask[a, s] >> np.uint64(b)) & np.uint64(1):
                return memo_leaf[a, s]
    else:
        if b < 0:  # NaN or zero: no rank, walk
            return _walk_from(nodes, cat_start, cat_len, words, aff_node[u, a], M, i, j, unit_of, u)
        if aff_lo[u, a] <= b <= aff_hi[u, a]:
            return -1
        for s in range(memo_n[a]):
            if memo_lo[a, s] <= b <= memo_hi[a, s]:
                return memo_leaf[a, s]
    leaf, lo, hi, mask = _walk_tracking(
        nodes, cat_start, cat_len, words, aff_node[u, a], M, i, j, unit_of, u, mode, unit_last[u], node_mask
    )
    s = memo_n[a]
    memo_lo[a, s] = lo
    memo_hi[a, s] = hi
    memo_mask[a, s] = mask
    memo_leaf[a, s] = leaf
    memo_n[a] = s + 1
    return leaf


@numba.njit(cache=True)
def _resum(K, f32, base, prefix, val, first, starts, ch_q, ch_v, nq, acc, acc32, tmp, tmp32, chain_u, chain_r, out, i):
    """Every chain's raw scores, re-added in tree order from the first changed tree of each class.

    All chains start at the earliest change of the class: re-adding a tree's unchanged value to
    the exact partial sum reproduces the next partial sum, so each chain is bit-identical to the
    library's sum; the chains advance together (one vector add per tree), and a chain's changed
    trees add their new value instead (``starts``: the changes grouped by tree).
    """
    n_trees = val.shape[0]
    for c in range(K):
        t = first[c]
        if t >= n_trees:  # no tree of this class changed: every chain keeps the row's own sum
            for q in range(nq):
                out[chain_u[q], chain_r[q], i, c] = base[c]
            continue
        if f32:
            a0 = np.float32(prefix[t])
            for q in range(nq):
                acc32[q] = a0
            while t < n_trees:
                v = np.float32(val[t])
                s, e = starts[t], starts[t + 1]
                for k in range(s, e):
                    tmp32[k - s] = acc32[ch_q[k]] + np.float32(ch_v[k])
                for q in range(nq):
                    acc32[q] += v
                for k in range(s, e):
                    acc32[ch_q[k]] = tmp32[k - s]
                t += K
            for q in range(nq):
                out[chain_u[q], chain_r[q], i, c] = acc32[q]
        else:
            a0 = prefix[t]
            for q in range(nq):
                acc[q] = a0
            while t < n_trees:
                v = val[t]
                s, e = starts[t], starts[t + 1]
                for k in range(s, e):
                    tmp[k - s] = acc[ch_q[k]] + ch_v[k]
                for q in range(nq):
                    acc[q] += v
                for k in range(s, e):
                    acc[ch_q[k]] = tmp[k - s]
                t += K
            for q in range(nq):
                out[chain_u[q], chain_r[q], i, c] = acc[q]


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
    unit_mode,
    unit_last,
    unit_bin,
    node_mask,
    perms,
    row_start,
    row_stop,
    rows_per_chunk,
    unit_block,
    out,
    base_out,
):
    n_trees = roots.shape[0]
    n_units = unit_cls.shape[0]
    n_rep = perms.shape[0]
    K = num_class
    n_chunks = (row_stop - row_start + rows_per_chunk - 1) // rows_per_chunk
    max_chains = unit_block * n_rep
    max_changes = max_chains * n_trees
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
        aff_mask = np.empty((n_units, n_trees), dtype=np.uint64)
        chain_u = np.empty(max_chains, dtype=np.int64)
        memo_n = np.empty(n_trees, dtype=np.int64)
        memo_lo = np.empty((n_trees, n_rep), dtype=np.int64)
        memo_hi = np.empty((n_trees, n_rep), dtype=np.int64)
        memo_mask = np.empty((n_trees, n_rep), dtype=np.uint64)
        memo_leaf = np.empty((n_trees, n_rep), dtype=np.int64)
        chain_r = np.empty(max_chains, dtype=np.int64)
        rec_t = np.empty(max_changes, dtype=np.int32)
        rec_q = np.empty(max_changes, dtype=np.int32)
        rec_v = np.empty(max_changes, dtype=np.float64)
        ch_q = np.empty(max_changes, dtype=np.int32)
        ch_v = np.empty(max_changes, dtype=np.float64)
        starts = np.empty(n_trees + 1, dtype=np.int64)
        acc = np.empty(max_chains, dtype=np.float64)
        acc32 = np.empty(max_chains, dtype=np.float32)
        tmp = np.empty(max_chains, dtype=np.float64)
        tmp32 = np.empty(max_chains, dtype=np.float32)
        start = row_start + ch * rows_per_chunk
        stop = min(row_stop, start + rows_per_chunk)
        for i in range(start, stop):
            _row_paths(
                nodes,
                cat_start,
                cat_len,
                words,
                roots,
                leaf_value,
                K,
                init,
                f32,
                M,
                i,
                unit_of,
                unit_mode,
                unit_last,
                node_mask,
                leaf,
                val,
                prefix,
                base,
                path_start,
                path_node,
                path_left,
                stamp,
                cnt,
                aff_tree,
                aff_node,
                aff_lo,
                aff_hi,
                aff_mask,
            )
            for c in range(K):
                base_out[i, c] = base[c]
            # Every unit and repeat ("chain"): the trees whose leaf the donor row changes (a tree
            # changes only if the donor turns the other way at one of the unit's splits on the
            # row's path), then all changed chains of a block of units re-added together.
            for u0 in range(0, n_units, unit_block):
                u1 = min(n_units, u0 + unit_block)
                nq = 0
                n_rec = 0
                for c in range(K):
                    first[c] = n_trees
                for u in range(u0, u1):
                    n_aff = cnt[u]
                    own = unit_cls[u, i]
                    mode = unit_mode[u]
                    for a in range(n_aff):
                        memo_n[a] = 0
                    for r in range(n_rep):
                        j = perms[r, i]
                        changed = False
                        if n_aff > 0 and unit_cls[u, j] != own:
                            b = unit_bin[u, j]
                            for a in range(n_aff):
                                t = aff_tree[u, a]
                                new_leaf = _new_leaf(
                                    nodes,
                                    cat_start,
                                    cat_len,
                                    words,
                                    M,
                                    i,
                                    j,
                                    u,
                                    a,
                                    t,
                                    mode,
                                    b,
                                    unit_of,
                                    unit_last,
                                    node_mask,
                                    aff_node,
                                    aff_lo,
                                    aff_hi,
                                    aff_mask,
                                    path_start,
                                    path_node,
                                    path_left,
                                    memo_n,
                                    memo_lo,
                                    memo_hi,
                                    memo_mask,
                                    memo_leaf,
                                )
                                if new_leaf >= 0 and leaf_value[new_leaf] != val[t]:
                                    rec_t[n_rec] = t
                                    rec_q[n_rec] = nq
                                    rec_v[n_rec] = leaf_value[new_leaf]
                                    n_rec += 1
                                    c = t % K
                                    if t < first[c]:
                                        first[c] = t
                                    changed = True
                        if changed:
                            chain_u[nq] = u
                            chain_r[nq] = r
                            nq += 1
                        else:
                            for c in range(K):
                                out[u, r, i, c] = base[c]
                if nq == 0:
                    continue
                for t in range(n_trees + 1):  # the changes grouped by tree (a counting sort)
                    starts[t] = 0
                for k in range(n_rec):
                    starts[rec_t[k] + 1] += 1
                for t in range(n_trees):
                    starts[t + 1] += starts[t]
                for k in range(n_rec):
                    t = rec_t[k]
                    pos = starts[t]
                    ch_q[pos] = rec_q[k]
                    ch_v[pos] = rec_v[k]
                    starts[t] = pos + 1
                for t in range(n_trees, 0, -1):
                    starts[t] = starts[t - 1]
                starts[0] = 0
                _resum(
                    K,
                    f32,
                    base,
                    prefix,
                    val,
                    first,
                    starts,
                    ch_q,
                    ch_v,
                    nq,
                    acc,
                    acc32,
                    tmp,
                    tmp32,
                    chain_u,
                    chain_r,
                    out,
                    i,
                )


def pack_nodes(ensemble: TreeEnsemble, node_k: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ensemble's internal nodes as one :data:`NODE` record each, plus categorical bitset bounds
    (``node_k``: :func:`threshold_index`'s ranks, when already computed)."""
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
    nodes["k"] = threshold_index(e)[0] if node_k is None else node_k
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
    return int(_max_depth(pack_nodes(ensemble)[0], ensemble.root))


def _unit_tables(
    ensemble: TreeEnsemble,
    M: np.ndarray,
    units: list[list[int]],
    nodes: np.ndarray,
    cats: tuple,
    thresholds: list[np.ndarray],
):
    """Per unit: decision classes of every row, the test that finds changed trees, and its data.

    A single feature whose rows fall in at most 64 decision classes is tested by a mask of the
    classes that keep a row on its path (node masks in ``node_mask``); another numeric feature by
    an interval of threshold ranks; anything else (groups, many categories) by re-checking the
    unit's splits on the path.
    """
    m = M.shape[0]
    categorical = set(ensemble.categorical_features)
    unit_of = np.full(ensemble.n_features, -1, dtype=np.int64)
    unit_cls = np.empty((len(units), m), dtype=np.int64)
    unit_mode = np.full(len(units), _PATH, dtype=np.int64)
    unit_last = np.zeros(len(units), dtype=np.int64)
    unit_bin = np.full((len(units), m), -1, dtype=np.int64)
    node_mask = np.zeros(len(ensemble.split_feature), dtype=np.uint64)
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
                unit_mode[u] = _INTERVAL
                unit_last[u] = len(thresholds[f])
                unit_bin[u] = rank
        if len(per_col) > 1:
            unit_cls[u] = np.unique(np.column_stack(per_col), axis=0, return_inverse=True)[1].ravel()
            continue
        _, rep, dense = np.unique(per_col[0], return_index=True, return_inverse=True)
        unit_cls[u] = dense.ravel()
        if len(rep) <= _MAX_MASK_CLASSES:
            f = cols[0]
            unit_mode[u] = _MASK
            unit_bin[u] = dense.ravel()
            on_f = np.flatnonzero(ensemble.split_feature == f)
            _class_masks(nodes, *cats, on_f, np.ascontiguousarray(M[rep, f]), node_mask)
    return unit_of, unit_cls, unit_mode, unit_last, unit_bin, node_mask


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
    from ._oblivious import fits, oblivious_view, permuted_raw_oblivious

    view = oblivious_view(ensemble)
    if fits(view, len(M)):  # every level of a tree tests one split: the leaf is a number, one bit per level
        return permuted_raw_oblivious(view, ensemble, M, units, perms, on_rows, block_rows)
    M = np.ascontiguousarray(M, dtype=np.float64)
    m = M.shape[0]
    node_k, thresholds = threshold_index(ensemble)
    nodes, cat_start, cat_len = pack_nodes(ensemble, node_k)
    cats = (cat_start, cat_len, ensemble.cat_words)
    from . import _permutation_forest as forest

    if forest.applies(ensemble, units):  # deep scikit-learn trees: walked tree by tree, rows in blocks
        out, raw = forest.permuted_raw_scores(ensemble, M, units, perms, (nodes, cats), thresholds)
        if on_rows is not None:
            on_rows(m)
        return _divided(ensemble, out, raw)
    tables = _unit_tables(ensemble, M, units, nodes, cats, thresholds)
    unit_of, unit_cls, unit_mode, unit_last, unit_bin, node_mask = tables
    out = np.empty((len(units), perms.shape[0], m, ensemble.num_class), dtype=np.float64)
    raw = np.empty((m, ensemble.num_class), dtype=np.float64)
    perms = np.ascontiguousarray(perms, dtype=np.int64)
    max_path = int(_max_depth(nodes, ensemble.root)) if (unit_mode == _PATH).any() else 0
    base = ensemble.base_score
    init = np.zeros(ensemble.num_class) if base is None else np.asarray(base, dtype=np.float64)
    # chains re-added together: enough for the vector adds, few enough to stay in cache
    unit_block = max(1, min(len(units), _CHAIN_VALUES // max(1, perms.shape[0] * ensemble.n_trees)))
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
            unit_mode,
            unit_last,
            unit_bin,
            node_mask,
            perms,
            start,
            stop,
            _ROWS_PER_CHUNK,
            unit_block,
            out,
            raw,
        )
        if on_rows is not None:
            on_rows(stop - start)
    return _divided(ensemble, out, raw)


def _divided(ensemble: TreeEnsemble, out: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if ensemble.divisor != 1.0:  # averaging forests: the sum over the trees, divided as the library does
        out /= ensemble.divisor
        raw /= ensemble.divisor
    return out, raw


# --- Metrics over many permuted score vectors at once ---


@numba.njit(cache=True)
def _sorted(values):
    """``values`` sorted ascending: a radix sort of their bits, a byte at a time (``np.sort`` with NaN).

    A float's bits, with the sign bit set for a positive one and every bit flipped for a negative
    one, order as the floats do; a byte that every value shares needs no pass.
    """
    n = values.shape[0]
    sign = np.uint64(1) << np.uint64(63)
    counts = np.zeros((8, 256), dtype=np.int64)
    keys = np.empty(n, dtype=np.uint64)
    raw_bits = values.view(np.uint64)
    for i in range(n):
        if math.isnan(values[i]):
            return np.sort(values)
        k = raw_bits[i]
        k = ~k if k & sign else k | sign
        keys[i] = k
        for p in range(8):
            counts[p, (k >> np.uint64(8 * p)) & np.uint64(255)] += 1
    src, dst = keys, np.empty(n, dtype=np.uint64)
    for p in range(8):
        shift = np.uint64(8 * p)
        at = counts[p]
        if n == 0 or at[(src[0] >> shift) & np.uint64(255)] == n:
            continue
        total = 0
        for d in range(256):
            c = at[d]
            at[d] = total
            total += c
        for i in range(n):
            d = (src[i] >> shift) & np.uint64(255)
            dst[at[d]] = src[i]
            at[d] += 1
        src, dst = dst, src
    out = np.empty(n, dtype=np.float64)
    bits = out.view(np.uint64)
    for i in range(n):
        k = src[i]
        bits[i] = k & ~sign if k & sign else ~k
    return out


@numba.njit(cache=True, parallel=True)
def _roc_auc_rows(scores, positive):
    n_sets, m = scores.shape
    pos_idx = np.flatnonzero(positive)
    neg_idx = np.flatnonzero(~positive)
    n_pos, n_neg = pos_idx.shape[0], neg_idx.shape[0]
    out = np.empty(n_sets, dtype=np.float64)
    for b in numba.prange(n_sets):
        s = scores[b]
        pos = _sorted(s[pos_idx])
        neg = _sorted(s[neg_idx])
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
