"""Drift: anytime-valid detectors on the p-value stream, plus descriptive window gauges."""
