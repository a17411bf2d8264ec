"""Entropy models (likelihoods for training), integer coding tables and the range coder."""
