"""Stable Diffusion components in Flax (UNet, ControlNet, VAE, schedulers) with diffusers weight import."""
