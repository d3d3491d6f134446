"""Scoring: reference centroids, calibrated conformal p-values, known-fraud prototypes."""
