"""What every noise predictor shares: the timestep embedding, the label embedding with its
"null" class for classifier-free guidance, and the checks on its inputs."""

from __future__ import annotations

import math

import torch
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al. 2017, sec. 3.5; DDPM appendix B).

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


def check_input(model: nn.Module, x: torch.Tensor, t, y) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate (x, t, y) for a noise predictor; return t and y as long tensors of shape (B,).

    y=None on a conditional model means the null label; labels must be 0..num_classes
    (num_classes itself is the null label).
    """
    c, s = model.in_channels, model.image_size
    if x.ndim != 4 or x.shape[1] != c or x.shape[2] != s or x.shape[3] != s:
        raise ValueError(
            f"{type(model).__name__} expects images of shape (B, {c}, {s}, {s}), got "
            f"{tuple(x.shape)}; build the model with in_channels/image_size matching your data."
        )
    b = x.shape[0]
    t = torch.as_tensor(t, device=x.device)
    if t.ndim == 0:
        t = t.expand(b)
    if t.shape != (b,):
        raise ValueError(f"t must be a scalar or have shape ({b},), got {tuple(t.shape)}.")
    if t.is_floating_point() and not torch.equal(t, t.round()):
        raise ValueError("t must hold integer timesteps (0-based).")
    if model.num_classes is None:
        if y is not None:
            raise ValueError(
                "this model is unconditional (num_classes=None) and takes no labels; pass y=None "
                "or load a class-conditional checkpoint."
            )
        return t.long(), None
    if y is None:
        return t.long(), torch.full((b,), model.num_classes, device=x.device, dtype=torch.long)
    y = torch.as_tensor(y, device=x.device).long()
    if y.ndim == 0:
        y = y.expand(b)
    if y.shape != (b,):
        raise ValueError(f"labels y must be a scalar or have shape ({b},), got {tuple(y.shape)}.")
    if y.min() < 0 or y.max() > model.num_classes:
        raise ValueError(
            f"label {y[(y < 0) | (y > model.num_classes)][0].item()} is outside the classes "
            f"0..{model.num_classes - 1} (and {model.num_classes} = null/unconditional)."
        )
    return t.long(), y


def group_norm(channels: int, groups: int = 32) -> nn.GroupNorm:
    """GroupNorm with as many groups as divide the channels, at most `groups`."""
    g = math.gcd(channels, groups)
    return nn.GroupNorm(g, channels)


def check_image_size(image_size: int, factor: int, name: str) -> None:
    if image_size % factor or image_size < factor:
        raise ValueError(
            f"{name} downsamples by {factor}, so image_size must be a multiple of {factor} "
            f"(28 for MNIST, 32 for CIFAR-10 work); got {image_size}."
        )
