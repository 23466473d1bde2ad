"""Diffusion Lab: DDPM, DDIM and classifier-free guidance, one equation per function."""
