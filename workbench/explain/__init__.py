"""Explainability: permutation importance, partial dependence/ICE, SHAP and reports."""

from .pdp import PartialDependence, partial_dependence

__all__ = [
    "PartialDependence",
    "partial_dependence",
]
