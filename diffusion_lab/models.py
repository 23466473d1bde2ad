"""Build a noise predictor by name, so checkpoints can record "which model" as plain JSON."""

from __future__ import annotations

from torch import nn

from .minimal_unet import MinimalUNet
from .unet import UNet

MODELS = {"unet": UNet, "minimal": MinimalUNet}


def build_model(name: str, **kwargs) -> nn.Module:
    """build_model("unet", image_size=28, in_channels=1, num_classes=10, ...)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    model = MODELS[name](**kwargs)
    model.build_config = {"name": name, "kwargs": kwargs}  # what a checkpoint records
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

