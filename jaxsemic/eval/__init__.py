"""Evaluation: rate–distortion results, classic codec baselines, BD-rate, RD plots and metrics."""
