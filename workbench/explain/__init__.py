"""Explainability: permutation importance, partial dependence/ICE, SHAP and reports."""

from .permutation import PermutationImportances, permutation_importance, sklearn_permutations
from .selection import FeatureSelection, cv_permutation_importance, drop_noisy_features

__all__ = [
    "FeatureSelection",
    "PermutationImportances",
    "cv_permutation_importance",
    "drop_noisy_features",
    "permutation_importance",
    "sklearn_permutations",
]
