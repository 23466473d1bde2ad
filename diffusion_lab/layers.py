"""What both U-Nets are built from besides convolutions: GroupNorm (Wu & He 2018,
https://arxiv.org/abs/1803.08494), the checks on their inputs, and the record of the arguments they
were built with."""

from __future__ import annotations

import functools
import inspect
import math

import torch
from torch import nn

from .text import check_tokens


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    """GroupNorm with `groups` groups, or fewer when `groups` does not divide `channels` (the gcd).

    Each model passes its own count: our U-Net 8 (so a group spans several channels: 4 at 32, as ADM's
    32 groups do at 128; one channel per group would be InstanceNorm, which erases every feature map's
    mean), Yu 2025's minimal U-Net 32.
    """
    return nn.GroupNorm(math.gcd(channels, groups), channels)


def check_image_size(image_size: int, factor: int, name: str) -> None:
    if image_size % factor or image_size < factor:
        raise ValueError(
            f"{name} downsamples by {factor}, so image_size must be a multiple of {factor} "
            f"(28 for MNIST, 32 for CIFAR-10 work); got {image_size}."
        )


def check_input(model: nn.Module, x: torch.Tensor, t, y) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Validate (x, t, y) for a noise predictor; return t (B,) (integer or real timesteps) and y (B,) long.

    y=None on a conditional model means the null label; labels must be 0..num_classes
    (num_classes itself is the null label). A text-conditioned model takes prompt tokens (B, L)
    instead, and y=None means the empty prompt (text.check_tokens).
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
    # t may fall between the training steps: ODE samplers (Euler, Heun with Karras sigmas) ask the
    # network at t(sigma), as diffusers does; the sinusoidal embedding is defined for any real t.
    t = t if t.is_floating_point() else t.long()
    if getattr(model, "text_encoder", None) is not None:
        return t, check_tokens(model, y, b, x.device)
    if model.num_classes is None:
        if y is not None:
            raise ValueError(
                "this model is unconditional (num_classes=None) and takes no labels; pass y=None "
                "or load a class-conditional checkpoint."
            )
        return t, None
    if y is None:
        return t, torch.full((b,), model.num_classes, device=x.device, dtype=torch.long)
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
    return t, y


def register_to_config(init):
    """Decorate a model's __init__ so the model remembers the arguments it was built with, defaults
    included, as a JSON-ready dict in `model.config` (diffusers' idea, without its base class).

    A checkpoint stores that dict, and `build_model(name, **model.config)` builds the same model
    again, even if a default changes later.
    """
    signature = inspect.signature(init)

    @functools.wraps(init)
    def init_and_record(self, *args, **kwargs):
        init(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        arguments = list(bound.arguments.items())[1:]  # without self
        self.config = {k: list(v) if isinstance(v, tuple) else v for k, v in arguments}

    return init_and_record
