"""The minimal U-Net of Yu 2025, "Understanding Diffusion Models via Code Execution", https://arxiv.org/abs/2512.07201
(its code: github.com/disanda/GM, DDPM-DDIM-ClassifierFree), kept faithful so learners can compare it with ours.

Two downsamplings (28 -> 14 -> 7), a residual middle block, and two upsamplings back. Skips are
*added* (not concatenated); the time embedding and the label embedding are added only once, at
the middle block; no attention. Every conv is followed by GroupNorm and ReLU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import LabelEmbedding, timestep_embedding
from .forward import check_prediction
from .layers import check_image_size, check_input, group_norm, register_to_config

MINIMAL_WIDTH = 64  # Yu 2025 (https://arxiv.org/abs/2512.07201) uses 128; 64 keeps it trainable on a CPU

GROUPS = 32  # GroupNorm groups, as in Yu 2025's code


class _ConvNormReLU(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int = 1, upsample: bool = False):
        super().__init__()
        self.upsample = upsample
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, padding=1)
        self.norm = group_norm(cout, GROUPS)

    def forward(self, x):
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return F.relu(self.norm(self.conv(x)))


class _ResidualBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.a = _ConvNormReLU(ch, ch)
        self.b = _ConvNormReLU(ch, ch)

    def forward(self, x):
        return self.b(self.a(x)) + x


class MinimalUNet(nn.Module):
    """eps_theta(x_t, t, y) with Yu 2025's layout (arXiv:2512.07201, sec. 6). base_channels=128 there."""

    @property
    def prediction_type(self) -> str:
        """What the network outputs ("eps", "v" or "velocity"): read from the recorded config, never set apart."""
        return self.config["prediction"]

    @register_to_config
    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        base_channels: int = MINIMAL_WIDTH,
        num_classes: int | None = None,
        prediction: str = "eps",
        path: str = "vp",
    ):
        super().__init__()
        check_prediction(prediction, path)  # recorded in model.config as UNet does (paths.py)
        check_image_size(image_size, 4, "MinimalUNet")
        self.image_size, self.in_channels, self.num_classes = image_size, in_channels, num_classes
        c = self.base_channels = base_channels
        self.down1 = _ConvNormReLU(in_channels, c)  # 28x28, C
        self.down2 = _ConvNormReLU(c, c, stride=2)  # 14x14, C
        self.down3 = _ConvNormReLU(c, 2 * c)  # 14x14, 2C
        self.down4 = _ConvNormReLU(2 * c, 2 * c, stride=2)  # 7x7, 2C
        self.middle = _ResidualBlock(2 * c)
        self.time_proj = nn.Linear(c, 2 * c)
        self.label_emb = LabelEmbedding(num_classes, 2 * c) if num_classes else None
        self.up1 = _ConvNormReLU(2 * c, 2 * c, upsample=True)  # 14x14
        self.up2 = _ConvNormReLU(2 * c, c)
        self.up3 = _ConvNormReLU(c, c, upsample=True)  # 28x28
        self.out = nn.Conv2d(c, in_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, t, y=None) -> torch.Tensor:
        t, y = check_input(self, x, t, y)
        x1 = self.down1(x)
        x2 = self.down2(x1)
        x3 = self.down3(x2)
        x4 = self.down4(x3)
        h = self.middle(x4)
        # Conditioning enters only here, as a per-channel bias on the 7x7 features.
        cond = F.relu(self.time_proj(timestep_embedding(t, self.base_channels).to(x.dtype)))
        if y is not None:
            cond = cond + F.relu(self.label_emb(y))
        h = h + cond[:, :, None, None]
        h = self.up1(h + x4)
        h = self.up2(h + x3)
        h = self.up3(h + x2)
        return self.out(h + x1)
