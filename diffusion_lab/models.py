"""Build a noise predictor by name, so checkpoints can record "which model" as plain JSON."""

from __future__ import annotations

from torch import nn

from .forward import eps_from_v
from .minimal_unet import MinimalUNet
from .unet import UNet

MODELS = {"unet": UNet, "minimal": MinimalUNet}


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


class EpsFromV(nn.Module):
    """A v-predicting network, answering with eps like every sampler expects (forward.eps_from_v)."""

    def __init__(self, net: nn.Module, schedule):
        super().__init__()
        self.net, self.schedule = net, schedule
        self.num_classes, self.in_channels, self.image_size = net.num_classes, net.in_channels, net.image_size

    def forward(self, x, t, y=None):
        return eps_from_v(x, self.net(x, t, y), t, self.schedule)
