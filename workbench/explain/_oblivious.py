"""Oblivious (symmetric) trees in the tree engine: a leaf is a number with one bit per level.

Every level ``l`` of an oblivious tree tests one split for all rows, and the leaf's index is
``sum(bit_l << l)``, ``bit_l`` set when the row goes right at level ``l`` (CatBoost's layout; the
reader unfolds such a tree into a full binary tree whose heap-ordered leaves are in that order).
:func:`oblivious_view` finds the levels back in the engine's arrays, checking the structure node by
node. Then:

Every row's leaf index in every tree is computed once, a level at a time down a block of rows.

* **permutation importance**: a unit changes only the bits of the levels that test one of its
  columns (``mask``), so the permuted leaf is ``(own & ~mask) | (donor & mask)``: no walk and no
  comparison; trees that never test the unit keep the row's value. The chains (unit, repeat) are
  re-added in tree order from the first tree testing one of the units re-added together, each from
  the row's exact partial sum there (as the general engine does), so raw scores stay bit-identical
  to the library's sum.
* **ICE**: at a grid value, each level testing the feature has the same bit for every row, so the
  grid's bits are computed once per tree (one comparison per level and grid point), and a tree
  testing the feature gives a row's values at every grid point as one row of a table indexed by the
  row's other bits; the sums are taken in tree order.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from ._permutation_engine import _ROWS_PER_CHUNK, _go_left, pack_nodes
from ._trees import TreeEnsemble

_MAX_DEPTH = 16  # leaf indices are held as uint16 (CatBoost's deepest trees)
_MAX_INDICES = 1 << 26  # (row, tree) leaf indices held at once: more falls back to the general engine
_CHAIN_VALUES = 1 << 14  # (tree, chain) values per row: the chains re-added together stay in cache
_PERMUTED_BLOCK = 16384  # rows per launch of the permutation kernel (and per progress update)
_MAX_TABLE = 1 << 22  # values of the ICE lookup table (32 MiB); deeper trees look each leaf up
_ROW_BLOCK = 256  # rows whose leaf indices are computed together, one level at a time
_ICE_ROW_BLOCK = 512  # rows whose ICE sums are taken together (each tree's table read once per block)


@dataclass(frozen=True)
class ObliviousTrees:
    """The levels of every tree of an ensemble whose trees are all oblivious."""

    depth: np.ndarray  # int64[n_trees]
    level_node: np.ndarray  # int64[n_trees, max_depth]: a node holding level l's split (bit l)
    level_feature: np.ndarray  # int64[n_trees, max_depth]
    leaf_base: np.ndarray  # int64[n_trees]: the global leaf of index 0
    level_threshold: np.ndarray  # float64[n_trees, max_depth]: a value above it goes right (bit set)
    level_nan_right: np.ndarray  # bool[n_trees, max_depth]: NaN goes right
    level_categorical: np.ndarray  # bool[n_trees, max_depth]: a category bitset split (see ``nodes``)
    nodes: np.ndarray  # the engine's packed nodes (_permutation_engine.NODE)
    cat_start: np.ndarray
    cat_len: np.ndarray

    def arrays(self, words: np.ndarray) -> tuple[np.ndarray, ...]:
        """What the kernels take to compute a leaf index (``words``: the ensemble's category bitsets)."""
        return (
            self.nodes, self.cat_start, self.cat_len, words, self.depth, self.level_node, self.level_feature,
            self.level_threshold, self.level_nan_right, self.level_categorical,
        )  # fmt: skip


def oblivious_view(ensemble: TreeEnsemble) -> ObliviousTrees | None:
    """The ensemble's levels when every tree is oblivious in the reader's unfolded layout, else None.

    Only CatBoost's reader unfolds oblivious trees; its output is checked here node by node (the
    same split at every node of a level, children in heap order, leaves numbered in heap order).
    Remembered while the ensemble lives (a model's ensemble is itself cached).
    """
    if ensemble.library != "catboost":
        return None
    known = _VIEWS.get(id(ensemble))
    if known is not None and known[0]() is ensemble:
        return known[1]
    view = _read_view(ensemble)
    key = id(ensemble)
    _VIEWS[key] = (weakref.ref(ensemble), view)
    weakref.finalize(ensemble, _VIEWS.pop, key, None)
    return view


_VIEWS: dict[int, tuple[weakref.ref, ObliviousTrees | None]] = {}


def _read_view(e: TreeEnsemble) -> ObliviousTrees | None:
    from ._trees import MISSING_NAN

    if (
        e.library != "catboost"
        or (e.missing_type != MISSING_NAN).any()
        or not np.array_equal(e.tree_class, np.arange(e.n_trees) % max(1, e.num_class))
    ):
        return None
    roots = np.asarray(e.root, dtype=np.int64)
    n_internal = np.zeros(len(roots), dtype=np.int64)
    inner = roots >= 0
    sizes = np.bincount(e.node_tree, minlength=int(e.node_tree.max(initial=-1)) + 1)
    n_internal[inner] = sizes[e.node_tree[roots[inner]]]
    depth = np.zeros(len(roots), dtype=np.int64)
    depth[inner] = np.round(np.log2(n_internal[inner] + 1)).astype(np.int64)
    if not np.array_equal((1 << depth) - 1, n_internal):
        return None
    max_depth = int(depth.max(initial=0))
    if max_depth > _MAX_DEPTH:
        return None
    level = np.arange(max_depth)
    heap_depth = depth[:, None] - 1 - level[None, :]
    valid = heap_depth >= 0
    level_node = np.where(valid, roots[:, None] + (1 << np.maximum(heap_depth, 0)) - 1, -1)
    leaf_base = np.where(inner, 0, ~roots)
    first_leaf = np.where(inner, roots + (n_internal - 1) // 2, 0)  # the leftmost last-level node
    leaf_base[inner] = ~e.left[first_leaf[inner]]
    if not _heap_ordered(e, roots[inner], n_internal[inner], leaf_base[inner]):
        return None
    nodes, cat_start, cat_len = pack_nodes(e)
    at = np.maximum(level_node, 0)
    feature = np.where(valid, e.split_feature[at], -1)
    nan_right = valid & ~e.default_left[at]
    categorical = valid & e.is_categorical[at]
    return ObliviousTrees(
        depth, level_node, feature, leaf_base, e.threshold[at], nan_right, categorical, nodes, cat_start, cat_len
    )


def _heap_ordered(e: TreeEnsemble, roots: np.ndarray, n_internal: np.ndarray, leaf_base: np.ndarray) -> bool:
    """Whether each tree's nodes are numbered in heap order with one split per level."""
    if len(roots) == 0:
        return True
    local = np.concatenate([np.arange(n) for n in n_internal])
    root = np.repeat(roots, n_internal)
    node = root + local
    first = np.repeat(leaf_base, n_internal)
    n = np.repeat(n_internal, n_internal)
    rep = root + (1 << np.floor(np.log2(local + 1)).astype(np.int64)) - 1  # the level's first node

    def child(k: np.ndarray) -> np.ndarray:
        return np.where(k < n, root + k, ~(first + k - n))

    same = (
        (e.split_feature[node] == e.split_feature[rep])
        & ((e.threshold[node] == e.threshold[rep]) | (np.isnan(e.threshold[node]) & np.isnan(e.threshold[rep])))
        & (e.default_left[node] == e.default_left[rep])
        & (e.missing_type[node] == e.missing_type[rep])
        & (e.is_categorical[node] == e.is_categorical[rep])
        & (e.left[node] == child(2 * local + 1))
        & (e.right[node] == child(2 * local + 2))
    )
    if not same.all():
        return False
    for a, b in zip(node[e.is_categorical[node]], rep[e.is_categorical[node]], strict=True):
        words_a = e.cat_words[e.cat_start[a] : e.cat_start[a] + e.cat_len[a]]
        words_b = e.cat_words[e.cat_start[b] : e.cat_start[b] + e.cat_len[b]]
        if not np.array_equal(words_a, words_b):
            return False
    return True


@numba.njit(cache=True, inline="always")
def _level_bit(nodes, cat_start, cat_len, words, level_node, threshold, nan_right, categorical, t, lv, x):
    """1 when value ``x`` goes right at level ``lv`` of tree ``t``, else 0."""
    if categorical[t, lv]:
        return 0 if _go_left(nodes, cat_start, cat_len, words, level_node[t, lv], x) else 1
    return np.int64((x > threshold[t, lv]) | (math.isnan(x) & nan_right[t, lv]))


@numba.njit(cache=True, inline="always")
def _block_bits(
    nodes, cat_start, cat_len, words, depth, level_node, level_feature, threshold, nan_right, categorical, MT, t, i0,
    bits,
):  # fmt: skip
    """``bits[k]``: the leaf index of row ``i0 + k`` in tree ``t``, one level at a time down the block.

    ``MT`` is the matrix transposed (one column per row), so a level's test runs over contiguous values.
    """
    bits[:] = 0
    for lv in range(depth[t]):
        x = MT[level_feature[t, lv], i0 : i0 + bits.shape[0]]
        if categorical[t, lv]:
            for k in range(bits.shape[0]):
                if not _go_left(nodes, cat_start, cat_len, words, level_node[t, lv], x[k]):
                    bits[k] |= 1 << lv
            continue
        thr = threshold[t, lv]
        nan = nan_right[t, lv]
        for k in range(bits.shape[0]):
            bits[k] |= np.int64((x[k] > thr) | (math.isnan(x[k]) & nan)) << lv


@numba.njit(cache=True, parallel=True)
def _leaf_indices(
    nodes, cat_start, cat_len, words, depth, level_node, level_feature, threshold, nan_right, categorical, MT
):  # fmt: skip
    """``out[i, t]``: row ``i``'s leaf index in tree ``t`` (bit ``l`` set when it goes right at level ``l``)."""
    n, n_trees = MT.shape[1], depth.shape[0]
    out = np.empty((n, n_trees), dtype=np.uint16)
    for blk in numba.prange((n + _ROW_BLOCK - 1) // _ROW_BLOCK):
        i0 = blk * _ROW_BLOCK
        bits = np.empty(min(n, i0 + _ROW_BLOCK) - i0, dtype=np.int64)
        for t in range(n_trees):
            _block_bits(
                nodes, cat_start, cat_len, words, depth, level_node, level_feature, threshold, nan_right, categorical,
                MT, t, i0, bits,
            )  # fmt: skip
            for k in range(bits.shape[0]):
                out[i0 + k, t] = bits[k]
    return out


@numba.njit(cache=True, parallel=True)
def _permuted_oblivious(
    idx, leaf_base, leaf_value, tree_class, K, init, aff_start, aff_tree, aff_mask, blocks, perms, row_start,
    row_stop, out, base_out,
):  # fmt: skip
    """Raw scores of every row with each unit permuted (``out[u, r, i]``) and without (``base_out``).

    ``idx[i, t]`` is row ``i``'s leaf index in tree ``t``. Unit ``u`` sets the bits ``aff_mask[a]``
    of tree ``aff_tree[a]``, ``a`` in ``aff_start[u]:aff_start[u + 1]``, to the donor's. The units
    of a block (``blocks[b]:blocks[b + 1]``) are re-added together, one chain per unit and repeat:
    ``W[t, q]`` is tree ``t``'s value in chain ``q`` (the row's own, or the donor's leaf's), and the
    chains are summed in tree order from the block's first tree testing one of its units, each from
    the row's exact partial sum there, so every sum is the library's own, term for term.
    """
    n_trees = leaf_base.shape[0]
    n_rep = perms.shape[0]
    n_chunks = (row_stop - row_start + _ROWS_PER_CHUNK - 1) // _ROWS_PER_CHUNK
    max_chains = 0
    for b in range(blocks.shape[0] - 1):
        max_chains = max(max_chains, (blocks[b + 1] - blocks[b]) * n_rep)
    for ch in numba.prange(n_chunks):
        val = np.empty(n_trees, dtype=np.float64)
        prefix = np.empty(n_trees, dtype=np.float64)
        base = np.empty(K, dtype=np.float64)
        own = np.empty(n_trees, dtype=np.int64)
        donors = np.empty((n_trees, n_rep), dtype=np.int64)
        W = np.empty((n_trees, max_chains), dtype=np.float64)
        acc = np.empty(max_chains, dtype=np.float64)
        start = row_start + ch * _ROWS_PER_CHUNK
        stop = min(row_stop, start + _ROWS_PER_CHUNK)
        for i in range(start, stop):
            for c in range(K):
                base[c] = init[c]
            for t in range(n_trees):
                own[t] = idx[i, t]
                v = leaf_value[leaf_base[t] + own[t]]
                val[t] = v
                c = tree_class[t]
                prefix[t] = base[c]
                base[c] += v
            for c in range(K):
                base_out[i, c] = base[c]
            for r in range(n_rep):  # the donors' leaf indices, side by side per tree
                j = perms[r, i]
                for t in range(n_trees):
                    donors[t, r] = idx[j, t]
            for b in range(blocks.shape[0] - 1):
                u0, u1 = blocks[b], blocks[b + 1]
                nq = (u1 - u0) * n_rep
                for t in range(n_trees):
                    v = val[t]
                    for q in range(nq):
                        W[t, q] = v
                first = n_trees  # the block's first tree testing one of its units
                for u in range(u0, u1):
                    q0 = (u - u0) * n_rep
                    if aff_start[u] < aff_start[u + 1]:
                        first = min(first, aff_tree[aff_start[u]])
                    for a in range(aff_start[u], aff_start[u + 1]):
                        t = aff_tree[a]
                        m = aff_mask[a]
                        o = own[t]
                        if m & (m - 1) == 0:  # one level: the row's own leaf, or the one across that level
                            vt = val[t]
                            vf = leaf_value[leaf_base[t] + (o ^ m)]
                            for r in range(n_rep):
                                W[t, q0 + r] = vf if (donors[t, r] ^ o) & m else vt
                        else:
                            rest = leaf_base[t] + (o & ~m)
                            for r in range(n_rep):
                                W[t, q0 + r] = leaf_value[rest + (donors[t, r] & m)]
                for c in range(K):
                    t = first + (c - first) % K  # the class's first tree from there
                    if t >= n_trees:  # no tree of this class is tested: every chain keeps the row's own sum
                        for u in range(u0, u1):
                            for r in range(n_rep):
                                out[u, r, i, c] = base[c]
                        continue
                    a0 = prefix[t]
                    for q in range(nq):
                        acc[q] = a0
                    while t < n_trees:
                        for q in range(nq):
                            acc[q] += W[t, q]
                        t += K
                    for u in range(u0, u1):
                        for r in range(n_rep):
                            out[u, r, i, c] = acc[(u - u0) * n_rep + r]


def _blocks(n_units: int, n_trees: int, n_rep: int) -> np.ndarray:
    """Unit block bounds: about :data:`_CHAIN_VALUES` (chain, tree) values per block."""
    per_block = max(1, min(n_units, _CHAIN_VALUES // max(1, n_rep * n_trees)))
    return np.append(np.arange(0, n_units, per_block), n_units).astype(np.int64)


def _unit_levels(view: ObliviousTrees, units: list[list[int]], n_features: int) -> tuple[np.ndarray, ...]:
    """Per unit, the trees with a level testing one of its columns, those levels, and their bit mask."""
    unit_of = np.full(n_features + 1, -1, dtype=np.int64)  # the last entry: past a tree's depth
    for u, cols in enumerate(units):
        unit_of[cols] = u
    level_unit = unit_of[view.level_feature]  # [n_trees, max_depth]; -1 where no unit (or no level)
    bit = np.int64(1) << np.arange(level_unit.shape[1], dtype=np.int64)
    aff_start, aff_tree, aff_mask = [0], [], []
    for u in range(len(units)):
        masks = np.where(level_unit == u, bit[None, :], 0).sum(axis=1)  # distinct bits: the sum is the OR
        trees = np.flatnonzero(masks)
        aff_tree.append(trees)
        aff_mask.append(masks[trees])
        aff_start.append(aff_start[-1] + len(trees))
    flat = [np.concatenate(a).astype(np.int64) if a else np.zeros(0, dtype=np.int64) for a in (aff_tree, aff_mask)]
    return np.asarray(aff_start, dtype=np.int64), flat[0], flat[1]


def fits(view: ObliviousTrees | None, n_rows: int) -> bool:
    """Whether the oblivious kernels serve ``n_rows`` rows (their leaf indices are held at once)."""
    return view is not None and n_rows * len(view.depth) <= _MAX_INDICES


def leaf_indices(view: ObliviousTrees, ensemble: TreeEnsemble, M: np.ndarray) -> np.ndarray:
    """Every row's leaf index in every tree: ``uint16[n_rows, n_trees]``."""
    return _leaf_indices(*view.arrays(ensemble.cat_words), np.ascontiguousarray(np.transpose(M), dtype=np.float64))


def permuted_raw_oblivious(
    view: ObliviousTrees,
    ensemble: TreeEnsemble,
    M: np.ndarray,
    units: list[list[int]],
    perms: np.ndarray,
    on_rows: Callable[[int], None] | None = None,
    block_rows: int = 2048,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`~workbench.explain._permutation_engine.permuted_raw_scores` for oblivious trees."""
    m, K = M.shape[0], ensemble.num_class
    idx = leaf_indices(view, ensemble, M)
    perms = np.ascontiguousarray(perms, dtype=np.int64)
    aff_start, aff_tree, aff_mask = _unit_levels(view, units, ensemble.n_features)
    blocks = _blocks(len(units), ensemble.n_trees, perms.shape[0])
    out = np.empty((len(units), perms.shape[0], m, K), dtype=np.float64)
    raw = np.empty((m, K), dtype=np.float64)
    base = ensemble.base_score
    init = np.zeros(K) if base is None else np.asarray(base, dtype=np.float64)
    block_rows = max(block_rows, _PERMUTED_BLOCK)  # each parallel launch waits for its slowest thread
    for start in range(0, m, block_rows):
        stop = min(m, start + block_rows)
        _permuted_oblivious(
            idx, view.leaf_base, ensemble.leaf_value, ensemble.tree_class, K, init, aff_start, aff_tree, aff_mask,
            blocks, perms, start, stop, out, raw,
        )  # fmt: skip
        if on_rows is not None:
            on_rows(stop - start)
    if ensemble.divisor != 1.0:
        out /= ensemble.divisor
        raw /= ensemble.divisor
    return out, raw


@numba.njit(cache=True)
def _grid_bits(
    nodes, cat_start, cat_len, words, depth, level_node, level_feature, threshold, nan_right, categorical, feature,
    values,
):  # fmt: skip
    """Per tree, the bits of the levels testing ``feature`` (``mask``) and their value at each grid point."""
    n_trees = depth.shape[0]
    mask = np.zeros(n_trees, dtype=np.int64)
    bits = np.zeros((n_trees, values.shape[0]), dtype=np.int64)
    for t in range(n_trees):
        for lv in range(depth[t]):
            if level_feature[t, lv] != feature:
                continue
            mask[t] |= 1 << lv
            for g in range(values.shape[0]):
                bit = _level_bit(
                    nodes, cat_start, cat_len, words, level_node, threshold, nan_right, categorical, t, lv, values[g]
                )
                bits[t, g] |= bit << lv
    return mask, bits


@numba.njit(cache=True)
def _grid_table(leaf_base, leaf_value, depth, mask, grid_bits):
    """``table[a, rest, g]``: the leaf value at grid point ``g`` of the ``a``-th tree testing the
    feature, for a row whose other levels' bits are ``rest`` (a row's ICE there: one contiguous read)."""
    trees = np.flatnonzero(mask)
    n_grid = grid_bits.shape[1]
    width = 1
    for t in trees:
        width = max(width, 1 << depth[t])
    table = np.zeros((trees.shape[0], width, n_grid), dtype=np.float64)
    for a in range(trees.shape[0]):
        t = trees[a]
        for rest in range(1 << depth[t]):
            if rest & mask[t]:
                continue
            for g in range(n_grid):
                table[a, rest, g] = leaf_value[leaf_base[t] + (rest | grid_bits[t, g])]
    return table


@numba.njit(cache=True, inline="always")
def _add_tree(acc, table, a, leaf_base, leaf_value, mask, grid_bits, c, t, bits):
    """Add tree ``t``'s values at every grid point to class ``c``'s sums; returns the next table's index."""
    m = mask[t]
    if m == 0:  # a tree not testing the feature: the row's own leaf at every grid point
        for k in range(bits.shape[0]):
            v = leaf_value[leaf_base[t] + bits[k]]
            for g in range(acc.shape[2]):
                acc[k, c, g] += v
        return a
    if table.shape[0] == 0:  # trees too deep for a table: look each leaf up
        for k in range(bits.shape[0]):
            rest = leaf_base[t] + (bits[k] & ~m)
            for g in range(acc.shape[2]):
                acc[k, c, g] += leaf_value[rest + grid_bits[t, g]]
        return a
    for k in range(bits.shape[0]):
        row = table[a, bits[k] & ~m]
        for g in range(acc.shape[2]):
            acc[k, c, g] += row[g]
    return a + 1


@numba.njit(cache=True, inline="always")
def _add_two_trees(acc, table, a, leaf_base, leaf_value, mask, t, bits, bits_next):
    """Add trees ``t`` and ``t + 1`` (one output, tables built) in one pass: ``(sum + x_t) + x_t+1``,
    the same additions in the same order; returns the next table's index."""
    m1, m2 = mask[t], mask[t + 1]
    a2 = a + 1 if m1 != 0 else a
    n_grid = acc.shape[2]
    if m1 == 0 and m2 == 0:
        for k in range(bits.shape[0]):
            v1 = leaf_value[leaf_base[t] + bits[k]]
            v2 = leaf_value[leaf_base[t + 1] + bits_next[k]]
            for g in range(n_grid):
                acc[k, 0, g] = (acc[k, 0, g] + v1) + v2
    elif m2 == 0:
        for k in range(bits.shape[0]):
            row1 = table[a, bits[k] & ~m1]
            v2 = leaf_value[leaf_base[t + 1] + bits_next[k]]
            for g in range(n_grid):
                acc[k, 0, g] = (acc[k, 0, g] + row1[g]) + v2
    elif m1 == 0:
        for k in range(bits.shape[0]):
            v1 = leaf_value[leaf_base[t] + bits[k]]
            row2 = table[a2, bits_next[k] & ~m2]
            for g in range(n_grid):
                acc[k, 0, g] = (acc[k, 0, g] + v1) + row2[g]
    else:
        for k in range(bits.shape[0]):
            row1 = table[a, bits[k] & ~m1]
            row2 = table[a2, bits_next[k] & ~m2]
            for g in range(n_grid):
                acc[k, 0, g] = (acc[k, 0, g] + row1[g]) + row2[g]
    return a2 + 1 if m2 != 0 else a2


@numba.njit(cache=True, parallel=True)
def _ice_oblivious(
    nodes, cat_start, cat_len, words, depth, level_node, level_feature, threshold, nan_right, categorical, MT,
    leaf_base, leaf_value, tree_class, K, mask, grid_bits, table, sigmoid, scale,
):  # fmt: skip
    """``out[i, g, c]``: row ``i``'s sum of leaf values (in tree order) with the feature at grid point ``g``
    (with ``sigmoid``: ``1 / (1 + exp(-scale * sum))``, as :func:`~workbench.explain._trees.raw_to_output`).

    A tree testing the feature adds, per grid point, the leaf its other levels' bits and the grid
    point's bits give: a row of ``table`` (:func:`_grid_table`), or looked up when ``table`` is empty.
    """
    n, n_trees, n_grid = MT.shape[1], leaf_base.shape[0], grid_bits.shape[1]
    out = np.empty((n, n_grid, K), dtype=np.float64)
    for blk in numba.prange((n + _ICE_ROW_BLOCK - 1) // _ICE_ROW_BLOCK):
        i0 = blk * _ICE_ROW_BLOCK
        bits = np.empty(min(n, i0 + _ICE_ROW_BLOCK) - i0, dtype=np.int64)
        pair = np.empty(bits.shape[0], dtype=np.int64)
        acc = np.zeros((bits.shape[0], K, n_grid), dtype=np.float64)
        a = 0  # the trees testing the feature so far (their tables)
        t = 0
        while t < n_trees:
            _block_bits(
                nodes, cat_start, cat_len, words, depth, level_node, level_feature, threshold, nan_right, categorical,
                MT, t, i0, bits,
            )  # fmt: skip
            if K == 1 and t + 1 < n_trees and table.shape[0] > 0:  # two trees per pass over the sums
                _block_bits(
                    nodes, cat_start, cat_len, words, depth, level_node, level_feature, threshold, nan_right,
                    categorical, MT, t + 1, i0, pair,
                )  # fmt: skip
                a = _add_two_trees(acc, table, a, leaf_base, leaf_value, mask, t, bits, pair)
                t += 2
            else:
                a = _add_tree(acc, table, a, leaf_base, leaf_value, mask, grid_bits, tree_class[t], t, bits)
                t += 1
        for k in range(bits.shape[0]):
            for g in range(n_grid):
                for c in range(K):
                    v = acc[k, c, g]
                    out[i0 + k, g, c] = 1.0 / (1.0 + math.exp(-scale * v)) if sigmoid else v
    return out


def ice_raw_oblivious(
    view: ObliviousTrees,
    ensemble: TreeEnsemble,
    X: np.ndarray,
    feature: int,
    values: np.ndarray,
    sigmoid: float | None = None,
) -> np.ndarray:
    """Sums of leaf values ``float64[n_rows, n_values, num_class]`` with column ``feature`` set to each value.

    ``sigmoid``: the scale of a sigmoid applied to each sum as it is written.
    """
    e = ensemble
    values = np.ascontiguousarray(values, dtype=np.float64)
    arrays = view.arrays(e.cat_words)
    mask, bits = _grid_bits(*arrays, np.int64(feature), values)
    width = 1 << int(view.depth[mask != 0].max(initial=0))
    if np.count_nonzero(mask) * width * len(values) <= _MAX_TABLE:
        table = _grid_table(view.leaf_base, e.leaf_value, view.depth, mask, bits)
    else:
        table = np.zeros((0, 1, len(values)), dtype=np.float64)
    MT = np.ascontiguousarray(np.transpose(X), dtype=np.float64)
    K = np.int64(e.num_class)
    transform = (sigmoid is not None, np.float64(1.0 if sigmoid is None else sigmoid))
    return _ice_oblivious(*arrays, MT, view.leaf_base, e.leaf_value, e.tree_class, K, mask, bits, table, *transform)
