"""Image quality metrics in JAX. Images are float [B,H,W,3] with values in [0, data_range]."""
