"""SEDIC (Song et al.): descriptions, text and mask coding, the .sedic container and the multi-stage decoder."""
