"""Explainability: permutation importance, partial dependence/ICE, SHAP and reports."""
