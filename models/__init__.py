"""Demand-forecasting models: scikit-learn-compatible estimators and vectorised kernels."""
