"""Explainability: permutation importance, partial dependence/ICE, SHAP and reports."""

from .pdp import PartialDependence, partial_dependence
from .plots import plot_partial_dependence, plot_shap_dependence, plot_shap_summary, plot_shap_waterfall
from .report import explain_report
from .shapley import ShapValues, interaction_bytes, shap_values

__all__ = [
    "PartialDependence",
    "partial_dependence",
    "ShapValues",
    "interaction_bytes",
    "shap_values",
    "plot_partial_dependence",
    "plot_shap_dependence",
    "plot_shap_summary",
    "plot_shap_waterfall",
    "explain_report",
]
