"""How a noise predictor is told t and y: the sinusoidal timestep embedding, and the label
embedding with its "null" class for classifier-free guidance."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of timesteps: f_i = max_period^(-i/half), i = 0..half-1, and
    [cos(t f_0), ..., cos(t f_{half-1}), sin(t f_0), ..., sin(t f_{half-1})]. Integers in training; ODE
    samplers also ask between them (a smooth function of t, so that is well defined).

    The frequencies are the Transformer's position encoding (Vaswani et al. 2017, sec. 3.5,
    https://arxiv.org/abs/1706.03762), which DDPM adopted (Ho et al. 2020, appendix B). The layout is
    guided-diffusion's (Dhariwal & Nichol 2021, github.com/openai/guided-diffusion, `timestep_embedding`;
    Yu 2025's code copies it): all cosines, then all sines, dividing by half. The Transformer interleaves
    sin and cos; DDPM's code and diffusers' default put sin first and divide by half - 1.
    """
    if dim % 2:
        raise ValueError(f"embedding dim must be even, got {dim}.")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class LabelEmbedding(nn.Embedding):
    """num_classes real labels plus one extra "null" label (index num_classes) that stands for
    "no label": classifier-free guidance trains on it (label dropout) and samples with it."""

    def __init__(self, num_classes: int, dim: int):
        super().__init__(num_classes + 1, dim)
        self.num_classes = num_classes
