"""How a noise predictor is told t and y: the sinusoidal timestep embedding, and the label
embedding with its "null" class for classifier-free guidance."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of timesteps (Vaswani et al. 2017, sec. 3.5; DDPM appendix B): integers in
    training; ODE samplers also ask between them (a smooth function of t, so that is well defined).

    Frequencies fall geometrically from 1 to 1/max_period; output is [cos(t f), sin(t f)].
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
