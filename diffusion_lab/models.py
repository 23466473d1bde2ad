"""Build a noise predictor (or the autoencoder) by name, so checkpoints can record "which model" as plain JSON."""

from __future__ import annotations

from torch import nn

from .autoencoder_net import Autoencoder
from .dit import DiT
from .minimal_unet import MinimalUNet
from .unet import UNet

MODELS = {"unet": UNet, "minimal": MinimalUNet, "dit": DiT, "autoencoder": Autoencoder}


def build_model(name: str, **kwargs) -> nn.Module:
    """build_model("unet", image_size=28, in_channels=1, num_classes=10, ...)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}.")
    return MODELS[name](**kwargs)


def model_record(model: nn.Module) -> dict:
    """What a checkpoint records to build `model` again: {"name": "unet", "kwargs": {...}}, the
    arguments its __init__ received (layers.register_to_config)."""
    names = [name for name, cls in MODELS.items() if type(model) is cls]
    if not names or not hasattr(model, "config"):
        raise ValueError(f"{type(model).__name__} is not one of the models a checkpoint can rebuild "
                         f"({', '.join(cls.__name__ for cls in MODELS.values())}).")
    return {"name": names[0], "kwargs": dict(model.config)}


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

