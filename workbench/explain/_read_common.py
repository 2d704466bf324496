"""Build a :class:`~workbench.explain._trees.TreeEnsemble` from trees in the common node-list form.

Readers of other libraries (scikit-learn, XGBoost) describe each tree as a :class:`NodeTree`: nodes
numbered from 0 (the root), a node is a leaf when its left child is -1; a split sends ``x`` left when
``x <= threshold``, a missing value (NaN) the ``default_left`` way, and for categorical splits when
the category code's bit is set in the node's 32-bit words. :func:`assemble` renumbers them into the
engine's global internal/leaf numbering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # the tree engine (and numba) loads when a model is assembled, not when read
    from ._trees import TreeEnsemble


@dataclass
class NodeTree:
    """One tree as parallel per-node arrays (see the module docstring)."""

    left: np.ndarray  # int64[n_nodes]; -1 at leaves
    right: np.ndarray  # int64[n_nodes]
    feature: np.ndarray  # int64[n_nodes]
    threshold: np.ndarray  # float64[n_nodes]
    default_left: np.ndarray  # bool[n_nodes]
    value: np.ndarray  # float64[n_nodes]: the leaf value (ignored at internal nodes)
    count: np.ndarray  # float64[n_nodes]: training weight through the node
    output: int = 0  # the output column this tree adds to
    categories: dict[int, np.ndarray] = field(default_factory=dict)  # node -> uint32 bitset words


def assemble(
    trees: list[NodeTree],
    feature_names: list[str],
    num_class: int,
    objective: str,
    library: str,
    **options: Any,
) -> TreeEnsemble:
    """The flat engine arrays of ``trees`` (options: TreeEnsemble's base_score, divisor, ...)."""
    from ._trees import MISSING_NAN, TreeEnsemble

    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("feat", "thr", "defl", "left", "right", "cnt", "ntree")}
    cat_start: list[int] = []
    cat_len: list[int] = []
    words: list[np.ndarray] = []
    leaf_value, leaf_count, leaf_tree, roots = [], [], [], []
    node_base = leaf_base = word_base = 0
    for t, tree in enumerate(trees):
        if not 0 <= tree.output < num_class:
            raise ValueError(f"tree {t} adds to output {tree.output} of a model with {num_class} outputs")
        is_leaf = tree.left < 0
        internal = np.flatnonzero(~is_leaf)
        leaves = np.flatnonzero(is_leaf)
        code = np.empty(len(tree.left), dtype=np.int64)  # local node -> global child code
        code[internal] = node_base + np.arange(len(internal))
        code[leaves] = ~(leaf_base + np.arange(len(leaves)))
        roots.append(code[0])
        parts["feat"].append(tree.feature[internal])
        parts["thr"].append(tree.threshold[internal])
        parts["defl"].append(tree.default_left[internal])
        parts["left"].append(code[tree.left[internal]])
        parts["right"].append(code[tree.right[internal]])
        parts["cnt"].append(tree.count[internal])
        parts["ntree"].append(np.full(len(internal), t, dtype=np.int64))
        for node in internal:
            bits = tree.categories.get(int(node))
            if bits is None:
                cat_start.append(-1)
                cat_len.append(0)
            else:
                cat_start.append(word_base)
                cat_len.append(len(bits))
                words.append(np.asarray(bits, dtype=np.uint32))
                word_base += len(bits)
        leaf_value.append(tree.value[leaves])
        leaf_count.append(tree.count[leaves])
        leaf_tree.append(np.full(len(leaves), t, dtype=np.int64))
        node_base += len(internal)
        leaf_base += len(leaves)

    def cat(key_parts: list[np.ndarray], dtype: Any) -> np.ndarray:
        return np.concatenate(key_parts).astype(dtype) if key_parts else np.zeros(0, dtype=dtype)

    starts = np.asarray(cat_start, dtype=np.int64)
    split_feature = cat(parts["feat"], np.int64)
    is_cat = starts >= 0
    return TreeEnsemble(
        feature_names=feature_names,
        num_class=num_class,
        objective=objective,
        sigmoid=1.0,
        root=np.asarray(roots, dtype=np.int64),
        tree_class=np.asarray([tree.output for tree in trees], dtype=np.int64),
        split_feature=split_feature,
        threshold=cat(parts["thr"], np.float64),
        is_categorical=is_cat,
        default_left=cat(parts["defl"], np.bool_),
        missing_type=np.full(len(split_feature), MISSING_NAN, dtype=np.int8),
        left=cat(parts["left"], np.int64),
        right=cat(parts["right"], np.int64),
        cat_start=starts,
        cat_len=np.asarray(cat_len, dtype=np.int64),
        cat_words=cat(words, np.uint32),
        node_count=cat(parts["cnt"], np.float64),
        node_tree=cat(parts["ntree"], np.int64),
        leaf_value=cat(leaf_value, np.float64),
        leaf_count=cat(leaf_count, np.float64),
        leaf_tree=cat(leaf_tree, np.int64),
        categorical_features=tuple(sorted(set(split_feature[is_cat].tolist()))),
        library=library,
        **options,
    )
