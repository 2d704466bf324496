"""Explainability: permutation importance, partial dependence/ICE, SHAP and reports."""

from .pdp import PartialDependence, partial_dependence
from .permutation import (
    PermutationImportances,
    PermutationImportancesByMetric,
    permutation_importance,
    sklearn_permutations,
)
from .plots import plot_partial_dependence, plot_shap_dependence, plot_shap_summary, plot_shap_waterfall
from .selection import FeatureSelection, cv_permutation_importance, drop_noisy_features
from .shapley import ShapValues, interaction_bytes, shap_values

__all__ = [
    "FeatureSelection",
    "PartialDependence",
    "PermutationImportances",
    "PermutationImportancesByMetric",
    "ShapValues",
    "cv_permutation_importance",
    "drop_noisy_features",
    "interaction_bytes",
    "partial_dependence",
    "permutation_importance",
    "plot_partial_dependence",
    "plot_shap_dependence",
    "plot_shap_summary",
    "plot_shap_waterfall",
    "shap_values",
    "sklearn_permutations",
]
