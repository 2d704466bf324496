"""Explainability: permutation importance, partial dependence/ICE, SHAP and reports."""

from .permutation import permutation_importance, sklearn_permutations
from .permutation_result import PermutationImportances
from .selection import FeatureSelection, cv_permutation_importance, drop_noisy_features

__all__ = [
    "FeatureSelection",
    "PermutationImportances",
    "cv_permutation_importance",
    "drop_noisy_features",
    "permutation_importance",
    "sklearn_permutations",
]
