"""Compiled partial dependence for tree ensembles: all grid points in one pass per tree.

For one row and one tree, the grid points of feature ``f`` share the row's path except at nodes
that split on ``f``. There the walk follows both branches, each with the grid points that go that
way; elsewhere it follows the row. Every leaf reached receives the grid points that end there.

* **interval** walk: when every split on ``f`` sends a prefix of the sorted grid left (numeric
  splits), a set of grid points is an interval ``[lo, hi)``; a leaf adds its value to a difference
  array at ``lo`` and subtracts it at ``hi``, and one prefix sum per row gives all grid points.
  Cost: the path plus the extra branches, independent of the grid size.
* **mask** walk: any split pattern (categorical splits, zero-as-missing) with at most 64 grid
  points: the set is a bit mask and a leaf adds its value to each grid point in it, in tree order.

``recursion`` is Friedman's weighted walk: at a node on a target feature follow the grid value,
elsewhere both children weighted by their share of the training rows (the trees' counts).
"""

from __future__ import annotations

import numba
import numpy as np

from ._trees import TreeEnsemble, _go_left, _node_arrays, predict_raw

MAX_MASK_GRID = 64
_ROW_BLOCK = 64  # rows walked tree by tree together


@numba.njit(cache=True)
def _left_matrix(e_thr, e_cat, e_defl, e_miss, e_cstart, e_clen, e_words, nodes, values):
    """``out[j, g]``: whether grid value ``values[g]`` goes left at internal node ``nodes[j]``."""
    out = np.empty((nodes.shape[0], values.shape[0]), dtype=np.bool_)
    for j in range(nodes.shape[0]):
        for g in range(values.shape[0]):
            out[j, g] = _go_left(e_thr, e_cat, e_defl, e_miss, e_cstart, e_clen, e_words, nodes[j], values[g])
    return out


@numba.njit(cache=True, inline="always")
def _descend(e_feat, e_thr, e_cat, e_defl, e_miss, e_left, e_right, e_cstart, e_clen, e_words, node, row, feature):
    """Follow ``row`` from ``node`` down to a leaf, or to the first node that splits on ``feature``."""
    while node >= 0 and e_feat[node] != feature:
        if _go_left(e_thr, e_cat, e_defl, e_miss, e_cstart, e_clen, e_words, node, row[e_feat[node]]):
            node = e_left[node]
        else:
            node = e_right[node]
    return node


@numba.njit(cache=True, parallel=True)
def _ice_intervals(
    e_feat,
    e_thr,
    e_cat,
    e_defl,
    e_miss,
    e_left,
    e_right,
    e_cstart,
    e_clen,
    e_words,
    roots,
    tree_class,
    leaf_value,
    X,
    feature,
    split_k,
    n_grid,
    num_class,
    stack_size,
):
    n = X.shape[0]
    out = np.zeros((n, n_grid + 1, num_class), dtype=np.float64)
    for blk in numba.prange((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        st_node = np.empty(stack_size, dtype=np.int64)
        st_lo = np.empty(stack_size, dtype=np.int64)
        st_hi = np.empty(stack_size, dtype=np.int64)
        i0 = blk * _ROW_BLOCK
        i1 = min(n, i0 + _ROW_BLOCK)
        for ti in range(roots.shape[0] * (i1 - i0)):  # tree by tree over the block: the tree stays
            t = ti // (i1 - i0)  # in cache, and each row still meets the trees in order
            i = i0 + ti % (i1 - i0)
            row = X[i]
            acc = out[i]
            c = tree_class[t]
            st_node[0] = roots[t]
            st_lo[0] = 0
            st_hi[0] = n_grid
            sp = 1
            while sp > 0:
                sp -= 1
                node = st_node[sp]
                lo = st_lo[sp]
                hi = st_hi[sp]
                while True:
                    node = _descend(
                        e_feat,
                        e_thr,
                        e_cat,
                        e_defl,
                        e_miss,
                        e_left,
                        e_right,
                        e_cstart,
                        e_clen,
                        e_words,
                        node,
                        row,
                        feature,
                    )
                    if node < 0:
                        break
                    k = split_k[node]
                    if k <= lo:
                        node = e_right[node]
                    elif k >= hi:
                        node = e_left[node]
                    else:
                        st_node[sp] = e_right[node]
                        st_lo[sp] = k
                        st_hi[sp] = hi
                        sp += 1
                        hi = k
                        node = e_left[node]
                value = leaf_value[~node]
                acc[lo, c] += value
                acc[hi, c] -= value
        for i in range(i0, i1):
            acc = out[i]
            for g in range(1, n_grid):
                for c in range(num_class):
                    acc[g, c] += acc[g - 1, c]
    return out


@numba.njit(cache=True, parallel=True)
def _ice_masks(
    e_feat,
    e_thr,
    e_cat,
    e_defl,
    e_miss,
    e_left,
    e_right,
    e_cstart,
    e_clen,
    e_words,
    roots,
    tree_class,
    leaf_value,
    X,
    feature,
    left_bits,
    n_grid,
    num_class,
    stack_size,
    init,
    f32,
):
    n = X.shape[0]
    out = np.empty((n, n_grid, num_class), dtype=np.float64)
    full = np.uint64(0)
    for g in range(n_grid):
        full |= np.uint64(1) << np.uint64(g)
    for blk in numba.prange((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        i0 = blk * _ROW_BLOCK
        i1 = min(n, i0 + _ROW_BLOCK)
        # XGBoost's running sums are float32 (float32 additions round as its float32(float(a) + b))
        sums = np.empty((i1 - i0, num_class, n_grid), dtype=np.float64)
        sums32 = np.empty((i1 - i0, num_class, n_grid), dtype=np.float32)
        for b in range(i1 - i0):
            for c in range(num_class):
                for g in range(n_grid):
                    sums[b, c, g] = init[c]
                    sums32[b, c, g] = np.float32(init[c])
        st_node = np.empty(stack_size, dtype=np.int64)
        st_mask = np.empty(stack_size, dtype=np.uint64)
        for ti in range(roots.shape[0] * (i1 - i0)):  # tree by tree over the block: the tree stays
            t = ti // (i1 - i0)  # in cache, and each row still meets the trees in order
            i = i0 + ti % (i1 - i0)
            row = X[i]
            acc = sums[i - i0]
            acc32 = sums32[i - i0]
            c = tree_class[t]
            st_node[0] = roots[t]
            st_mask[0] = full
            sp = 1
            while sp > 0:
                sp -= 1
                node = st_node[sp]
                mask = st_mask[sp]
                while True:
                    node = _descend(
                        e_feat,
                        e_thr,
                        e_cat,
                        e_defl,
                        e_miss,
                        e_left,
                        e_right,
                        e_cstart,
                        e_clen,
                        e_words,
                        node,
                        row,
                        feature,
                    )
                    if node < 0:
                        break
                    lm = mask & left_bits[node]
                    rm = mask & ~left_bits[node]
                    if lm == 0:
                        node = e_right[node]
                    elif rm == 0:
                        node = e_left[node]
                    else:
                        st_node[sp] = e_right[node]
                        st_mask[sp] = rm
                        sp += 1
                        mask = lm
                        node = e_left[node]
                value = leaf_value[~node]
                value32 = np.float32(value)
                if mask == full:  # every grid point: one vector add
                    if f32:
                        for g in range(n_grid):
                            acc32[c, g] += value32
                    else:
                        for g in range(n_grid):
                            acc[c, g] += value
                    continue
                if f32:  # adding zero leaves a float32 sum as it is: no branch per grid point
                    for g in range(n_grid):
                        acc32[c, g] += value32 if (mask >> np.uint64(g)) & np.uint64(1) else np.float32(0.0)
                else:
                    for g in range(n_grid):
                        if (mask >> np.uint64(g)) & np.uint64(1):
                            acc[c, g] += value
        for i in range(i0, i1):
            for g in range(n_grid):
                for c in range(num_class):
                    out[i, g, c] = sums32[i - i0, c, g] if f32 else sums[i - i0, c, g]
    return out


@numba.njit(cache=True, parallel=True)
def _recursion(
    e_feat,
    e_thr,
    e_cat,
    e_defl,
    e_miss,
    e_left,
    e_right,
    e_cstart,
    e_clen,
    e_words,
    node_count,
    leaf_count,
    roots,
    tree_class,
    leaf_value,
    features,
    points,
    num_class,
    stack_size,
):
    n_points = points.shape[0]
    out = np.zeros((n_points, num_class), dtype=np.float64)
    for p in numba.prange(n_points):
        st_node = np.empty(stack_size, dtype=np.int64)
        st_w = np.empty(stack_size, dtype=np.float64)
        for t in range(roots.shape[0]):
            c = tree_class[t]
            total = 0.0
            st_node[0] = roots[t]
            st_w[0] = 1.0
            sp = 1
            while sp > 0:
                sp -= 1
                node = st_node[sp]
                w = st_w[sp]
                if node < 0:
                    total += w * leaf_value[~node]
                    continue
                target = -1
                for j in range(features.shape[0]):
                    if e_feat[node] == features[j]:
                        target = j
                if target >= 0:
                    if _go_left(e_thr, e_cat, e_defl, e_miss, e_cstart, e_clen, e_words, node, points[p, target]):
                        st_node[sp] = e_left[node]
                    else:
                        st_node[sp] = e_right[node]
                    st_w[sp] = w
                    sp += 1
                else:
                    lc = e_left[node]
                    rc = e_right[node]
                    n_left = node_count[lc] if lc >= 0 else leaf_count[~lc]
                    n_right = node_count[rc] if rc >= 0 else leaf_count[~rc]
                    both = n_left + n_right
                    if both <= 0.0:
                        n_left = 1.0
                        n_right = 1.0
                        both = 2.0
                    st_node[sp] = lc
                    st_w[sp] = w * n_left / both
                    st_node[sp + 1] = rc
                    st_w[sp + 1] = w * n_right / both
                    sp += 2
            out[p, c] += total
    return out


def _stack_size(ensemble: TreeEnsemble) -> int:
    """An upper bound on the walk's stack: internal nodes of the largest tree, plus two."""
    if ensemble.node_tree.size == 0:
        return 2
    return int(np.bincount(ensemble.node_tree).max()) + 2


def grid_layout(
    ensemble: TreeEnsemble, feature: int, values: np.ndarray, allow_interval: bool = True
) -> tuple[str, np.ndarray]:
    """How to walk the grid ``values`` (ascending for ``interval``): ``(mode, per-node data)``.

    ``interval``: per node on ``feature``, how many leading grid values go left (``int64[n_nodes]``);
    ``mask``: per node, the bit mask of grid values going left (``uint64[n_nodes]``);
    ``brute``: neither applies (a non-prefix split pattern with more than 64 grid values).
    """
    nodes = np.flatnonzero(ensemble.split_feature == feature)
    e = ensemble
    left = _left_matrix(
        e.threshold,
        e.is_categorical,
        e.default_left,
        e.missing_type,
        e.cat_start,
        e.cat_len,
        e.cat_words,
        nodes.astype(np.int64),
        np.ascontiguousarray(values, dtype=np.float64),
    )
    counts = left.sum(axis=1)
    prefix = np.arange(len(values))[None, :] < counts[:, None]
    sorted_grid = bool(np.all(np.diff(values) >= 0))
    if allow_interval and sorted_grid and np.array_equal(left, prefix):
        split_k = np.zeros(len(e.split_feature), dtype=np.int64)
        split_k[nodes] = counts
        return "interval", split_k
    if len(values) <= MAX_MASK_GRID:
        weights = np.uint64(1) << np.arange(len(values), dtype=np.uint64)
        bits = np.zeros(len(e.split_feature), dtype=np.uint64)
        bits[nodes] = np.bitwise_or.reduce(np.where(left, weights[None, :], np.uint64(0)), axis=1) if len(nodes) else 0
        return "mask", bits
    return "brute", np.zeros(0, dtype=np.int64)


def ice_raw(ensemble: TreeEnsemble, X: np.ndarray, feature: int, values: np.ndarray) -> np.ndarray:
    """Raw scores ``float64[n_rows, n_values, num_class]`` with column ``feature`` set to each value.

    ``X`` is the model-space matrix (:func:`~workbench.explain._trees.to_matrix`); ``values`` are
    model-space values (category codes for categorical features), without NaN.
    """
    from ._oblivious import fits, ice_raw_oblivious, oblivious_view

    e = ensemble
    view = oblivious_view(e)
    if fits(view, len(X)):  # oblivious trees: the grid's bits once per tree, a table lookup per row
        return _finish(e, ice_raw_oblivious(view, e, X, feature, values))
    X = np.ascontiguousarray(X, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    # float32 running sums need the tree order: the mask walk, not the interval walk
    mode, data = grid_layout(e, feature, ordered, allow_interval=not e.float32_sums)
    common = (*_node_arrays(e), e.root, e.tree_class, e.leaf_value, X, np.int64(feature))
    if mode == "interval":
        raw = _ice_intervals(*common, data, np.int64(len(values)), np.int64(e.num_class), np.int64(_stack_size(e)))
        raw = raw[:, : len(values)]
    elif mode == "mask":
        f32 = bool(e.float32_sums)
        init = np.zeros(e.num_class) if not f32 or e.base_score is None else np.asarray(e.base_score, dtype=np.float64)
        raw = _ice_masks(
            *common, data, np.int64(len(values)), np.int64(e.num_class), np.int64(_stack_size(e)), init, f32
        )
    else:
        raw = np.empty((X.shape[0], len(values), e.num_class))
        work = X.copy()
        for g, value in enumerate(ordered):
            work[:, feature] = value
            raw[:, g] = predict_raw(e, work)
    if mode == "interval" or (mode == "mask" and not e.float32_sums):
        raw = _finish(e, raw)
    out = np.empty_like(raw)
    out[:, order] = raw
    return out


def ice_output(ensemble: TreeEnsemble, X: np.ndarray, feature: int, values: np.ndarray) -> np.ndarray:
    """:func:`ice_raw` as ``predict``'s outputs (:func:`~workbench.explain._trees.raw_to_output`).

    Oblivious trees with a sigmoid and nothing added to the sum take it as the ICE kernel writes
    each value (``sum + 0.0`` differs from ``sum`` only in the sign of a zero, which the sigmoid
    does not see).
    """
    from ._oblivious import fits, ice_raw_oblivious, oblivious_view
    from ._trees import raw_to_output, sigmoid_scale

    e = ensemble
    view = oblivious_view(e)
    scale = sigmoid_scale(e)
    plain = e.divisor == 1.0 and (e.base_score is None or not np.any(e.base_score))
    if scale is not None and plain and fits(view, len(X)):
        return ice_raw_oblivious(view, e, X, feature, values, sigmoid=scale)
    raw = ice_raw(e, X, feature, values)
    return raw_to_output(e, raw.reshape(-1, raw.shape[-1])).reshape(raw.shape)


def _finish(ensemble: TreeEnsemble, raw: np.ndarray) -> np.ndarray:
    """Sums of leaf values (last axis: outputs) to raw scores: plus the base score, over the divisor."""
    if ensemble.base_score is not None:
        raw = raw + ensemble.base_score
    return raw if ensemble.divisor == 1.0 else raw / ensemble.divisor


def recursion_raw(ensemble: TreeEnsemble, features: list[int], points: np.ndarray) -> np.ndarray:
    """Friedman's weighted-walk partial dependence on the raw scale: ``float64[n_points, num_class]``.

    ``points`` is ``float64[n_points, len(features)]`` in model space.
    """
    e = ensemble
    raw = _recursion(
        *_node_arrays(e),
        e.node_count,
        e.leaf_count,
        e.root,
        e.tree_class,
        e.leaf_value,
        np.asarray(features, dtype=np.int64),
        np.ascontiguousarray(points, dtype=np.float64),
        np.int64(e.num_class),
        np.int64(2 * _stack_size(e)),
    )
    return _finish(e, raw)
