"""Semantic branch: Flax ports of BERT, CLIP text and BLIP with Hugging Face weight import."""
