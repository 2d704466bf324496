"""Path-dependent TreeSHAP and SHAP interaction values, compiled, on the flat LightGBM ensemble.

This is Lundberg et al.'s algorithm (Algorithm 2 of "Consistent individualized feature attribution
for tree ensembles", with the conditioning used for interaction values), walked with an explicit
stack. Splits are decided by LightGBM's own rules (categorical bitsets, missing values), which is
what shap's TreeExplainer gets wrong for LightGBM's categorical splits. Node weights are
LightGBM's training counts, as in its ``pred_contrib``.

Interaction values: ``Φ[j, k] = (φ_k | j present − φ_k | j absent) / 2`` for ``k ≠ j`` and
``Φ[j, j] = φ_j − Σ_{k≠j} Φ[j, k]``; only the trees that split on ``j`` contribute to row ``j``.
"""

from __future__ import annotations

import numba
import numpy as np

from ._trees import TreeEnsemble, _go_left, _node_arrays


@numba.njit(cache=True)
def _extend(pf, pz, po, pw, d, zero, one, feature):
    pf[d] = feature
    pz[d] = zero
    po[d] = one
    pw[d] = 1.0 if d == 0 else 0.0
    for i in range(d - 1, -1, -1):
        pw[i + 1] += one * pw[i] * (i + 1) / (d + 1)
        pw[i] = zero * pw[i] * (d - i) / (d + 1)


@numba.njit(cache=True)
def _unwind(pf, pz, po, pw, d, k):
    one = po[k]
    zero = pz[k]
    next_one = pw[d]
    for i in range(d - 1, -1, -1):
        if one != 0.0:
            tmp = pw[i]
            pw[i] = next_one * (d + 1) / ((i + 1) * one)
            next_one = tmp - pw[i] * zero * (d - i) / (d + 1)
        else:
            pw[i] = pw[i] * (d + 1) / (zero * (d - i))
    for i in range(k, d):
        pf[i] = pf[i + 1]
        pz[i] = pz[i + 1]
        po[i] = po[i + 1]


@numba.njit(cache=True)
def _unwound_sum(pz, po, pw, d, k):
    one = po[k]
    zero = pz[k]
    next_one = pw[d]
    total = 0.0
    if one != 0.0:
        for i in range(d - 1, -1, -1):
            tmp = next_one / ((i + 1) * one)
            total += tmp
            next_one = pw[i] - tmp * zero * (d - i)
    else:
        for i in range(d - 1, -1, -1):
            total += pw[i] / (zero * (d - i))
    return total * (d + 1)


@numba.njit(cache=True)
def _tree_shap(
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
    leaf_value,
    root,
    row,
    phi,
    condition,
    cond_feature,
    width,
):
    """Add one tree's SHAP values for ``row`` to ``phi`` (conditioned on ``cond_feature`` if ``condition``)."""
    if root < 0:
        return
    slots = 2 * width + 2
    st_node = np.empty(slots, dtype=np.int64)
    st_depth = np.empty(slots, dtype=np.int64)
    st_zero = np.empty(slots)
    st_one = np.empty(slots)
    st_feat = np.empty(slots, dtype=np.int64)
    st_cond = np.empty(slots)
    path_f = np.empty((slots, width), dtype=np.int64)
    path_z = np.empty((slots, width))
    path_o = np.empty((slots, width))
    path_w = np.empty((slots, width))
    wf = np.empty(width, dtype=np.int64)
    wz = np.empty(width)
    wo = np.empty(width)
    ww = np.empty(width)
    st_node[0] = root
    st_depth[0] = 0
    st_zero[0] = 1.0
    st_one[0] = 1.0
    st_feat[0] = -1
    st_cond[0] = 1.0
    sp = 1
    while sp > 0:
        sp -= 1
        node = st_node[sp]
        d = st_depth[sp]
        cond_fraction = st_cond[sp]
        if cond_fraction == 0.0:
            continue
        for i in range(d + 1):
            wf[i] = path_f[sp, i]
            wz[i] = path_z[sp, i]
            wo[i] = path_o[sp, i]
            ww[i] = path_w[sp, i]
        if condition == 0 or cond_feature != st_feat[sp]:
            _extend(wf, wz, wo, ww, d, st_zero[sp], st_one[sp], st_feat[sp])
        if node < 0:
            value = leaf_value[~node]
            for i in range(1, d + 1):
                w = _unwound_sum(wz, wo, ww, d, i)
                phi[wf[i]] += w * (wo[i] - wz[i]) * value * cond_fraction
            continue
        split = e_feat[node]
        if _go_left(e_thr, e_cat, e_defl, e_miss, e_cstart, e_clen, e_words, node, row[split]):
            hot, cold = e_left[node], e_right[node]
        else:
            hot, cold = e_right[node], e_left[node]
        total = node_count[node]
        hot_zero = (node_count[hot] if hot >= 0 else leaf_count[~hot]) / total
        cold_zero = (node_count[cold] if cold >= 0 else leaf_count[~cold]) / total
        incoming_zero = 1.0
        incoming_one = 1.0
        k = 0
        while k <= d and wf[k] != split:
            k += 1
        if k <= d:
            incoming_zero = wz[k]
            incoming_one = wo[k]
            _unwind(wf, wz, wo, ww, d, k)
            d -= 1
        hot_cond = cond_fraction
        cold_cond = cond_fraction
        if condition > 0 and split == cond_feature:
            cold_cond = 0.0
            d -= 1
        elif condition < 0 and split == cond_feature:
            hot_cond *= hot_zero
            cold_cond *= cold_zero
            d -= 1
        for child, zero, one, cf in (
            (cold, cold_zero * incoming_zero, 0.0, cold_cond),
            (hot, hot_zero * incoming_zero, incoming_one, hot_cond),
        ):
            st_node[sp] = child
            st_depth[sp] = d + 1
            st_zero[sp] = zero
            st_one[sp] = one
            st_feat[sp] = split
            st_cond[sp] = cf
            for i in range(d + 2):
                path_f[sp, i] = wf[i]
                path_z[sp, i] = wz[i]
                path_o[sp, i] = wo[i]
                path_w[sp, i] = ww[i]
            sp += 1


@numba.njit(cache=True, nogil=True)
def _interactions(
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
    leaf_value,
    roots,
    tree_class,
    X,
    num_class,
    width,
    trees_of,
    trees_start,
):
    n, m = X.shape
    out = np.zeros((n, num_class, m, m))
    for i in range(n):
        row = X[i]
        phi = np.zeros((num_class, m))
        for t in range(roots.shape[0]):
            _tree_shap(
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
                leaf_value,
                roots[t],
                row,
                phi[tree_class[t]],
                0,
                -1,
                width,
            )
        on = np.zeros((num_class, m))
        off = np.zeros((num_class, m))
        for j in range(m):
            on[:] = 0.0
            off[:] = 0.0
            for q in range(trees_start[j], trees_start[j + 1]):
                t = trees_of[q]
                c = tree_class[t]
                _tree_shap(
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
                    leaf_value,
                    roots[t],
                    row,
                    on[c],
                    1,
                    j,
                    width,
                )
                _tree_shap(
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
                    leaf_value,
                    roots[t],
                    row,
                    off[c],
                    -1,
                    j,
                    width,
                )
            for c in range(num_class):
                out[i, c, j, j] = phi[c, j]
                for k in range(m):
                    if k != j:
                        value = (on[c, k] - off[c, k]) / 2.0
                        out[i, c, j, k] = value
                        out[i, c, j, j] -= value
    return out


def _path_width(ensemble: TreeEnsemble) -> int:
    """Longest root-to-leaf path over the trees, plus room for the path's dummy entry."""
    depth = np.zeros(len(ensemble.split_feature), dtype=np.int64)
    deepest = 0
    for root in ensemble.root:
        if root < 0:
            continue
        stack = [(int(root), 1)]
        while stack:
            node, level = stack.pop()
            depth[node] = level
            deepest = max(deepest, level)
            for child in (ensemble.left[node], ensemble.right[node]):
                if child >= 0:
                    stack.append((int(child), level + 1))
    return deepest + 3


def _common(ensemble: TreeEnsemble) -> tuple:
    e = ensemble
    return (*_node_arrays(e), e.node_count, e.leaf_count, e.leaf_value, e.root, e.tree_class)


def tree_shap_interactions(ensemble: TreeEnsemble, X: np.ndarray) -> np.ndarray:
    """SHAP interaction values ``(n, num_class, features, features)`` of model-space rows ``X``.

    Rows are split over threads (the kernel releases the GIL), one block per CPU.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    X = np.ascontiguousarray(X, dtype=np.float64)
    m = X.shape[1]
    per_feature = [ensemble.trees_using(j) for j in range(m)]
    trees_of = np.concatenate([*per_feature, np.zeros(0, dtype=np.int64)]).astype(np.int64)
    trees_start = np.concatenate([[0], np.cumsum([len(p) for p in per_feature])]).astype(np.int64)
    args = (*_common(ensemble),)
    extra = (np.int64(ensemble.num_class), np.int64(_path_width(ensemble)), trees_of, trees_start)
    blocks = np.array_split(np.arange(len(X)), max(1, min(os.cpu_count() or 1, len(X))))
    with ThreadPoolExecutor(max_workers=len(blocks)) as pool:
        parts = list(pool.map(lambda rows: _interactions(*args, X[rows], *extra), blocks))
    return np.concatenate(parts, axis=0)
