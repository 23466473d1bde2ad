"""A Diffusion Transformer (DiT; Peebles & Xie 2023, "Scalable Diffusion Models with Transformers",
https://arxiv.org/abs/2212.09748), small enough to train on a CPU. Stable Diffusion 3 and Flux are
transformers of this kind trained as rectified flows; at MNIST scale, `train --model dit --path linear`
builds exactly that.

    patchify     the image (C, H, W) is cut into (H/p)(W/p) patches of p x p pixels, each a token
                 (a linear map of its C p^2 values), plus a fixed 2-D sine-cosine position embedding (sec. 3.1)
    condition    c = MLP(timestep embedding of t) + embedding of the label (the null label for CFG)
    blocks       x += gate_1 * Attention(LN(x) (1 + scale_1) + shift_1)
                 x += gate_2 * MLP(LN(x) (1 + scale_2) + shift_2)
                 with (shift, scale, gate) x 2 = Linear(SiLU(c)): adaptive layer norm. "adaLN-Zero"
                 (sec. 3.2): that Linear starts at zero, so every block starts as the identity, which
                 trained best of their four ways to feed in the condition (their fig. 5)
    final layer  LN, shift and scale from c, a linear map back to p x p x C values per token (zero at
                 the start too), and the patches put back together
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import LabelEmbedding, timestep_embedding
from .forward import check_prediction
from .layers import check_image_size, check_input, register_to_config

DIT_WIDTH = 128  # tokens of 128 numbers: the default width
FREQUENCY_DIM = 256  # sinusoidal frequencies of t before the MLP (DiT's TimestepEmbedder)


def position_embedding(dim: int, grid: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine embedding (grid^2, dim): half the channels encode the row, half the column,
    each as the Transformer's 1-D sinusoids (Vaswani et al. 2017, sec. 3.5)."""
    if dim % 4:
        raise ValueError(f"the DiT's width must be a multiple of 4 (2-D sine-cosine positions), got {dim}.")
    rows, cols = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    freqs = 1.0 / 10000 ** (torch.arange(dim // 4) / (dim // 4))

    def one_axis(pos):
        args = pos.reshape(-1, 1).float() * freqs[None]
        return torch.cat([args.sin(), args.cos()], dim=1)

    return torch.cat([one_axis(rows), one_axis(cols)], dim=1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Adaptive layer norm's affine part: x (B, N, D) scaled by 1 + scale and shifted, per image."""
    return x * (1 + scale[:, None]) + shift[:, None]


class DiTBlock(nn.Module):
    """One transformer block with adaLN-Zero conditioning (Peebles & Xie 2023, fig. 3)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.ada[1].weight)  # adaLN-Zero: the block starts as the identity
        nn.init.zeros_(self.ada[1].bias)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(c).chunk(6, dim=1)
        x = x + gate1[:, None] * self.attention(modulate(self.norm1(x), shift1, scale1))
        return x + gate2[:, None] * self.mlp(modulate(self.norm2(x), shift2, scale2))


class DiT(nn.Module):
    """prediction_theta(x_t, t, y) as a transformer over patches. The defaults (patches of 4 pixels: 49 tokens
    for MNIST; width 128, 6 blocks, 4 heads: 1.87M parameters) are DiT-S/4 (width 384, 12 blocks) scaled down
    to a CPU. Patches of 2 pixels see finer detail but make 4x the tokens: at width 96 and 4 blocks they trained
    at 45 images/s against this default's 85 (one thread, batch 64, bf16, measured interleaved on an AMD EPYC
    family 25 model 17 that another job shared; the U-Net: 202)."""

    @property
    def prediction_type(self) -> str:
        """What the network outputs ("eps", "v" or "velocity"): read from the recorded config."""
        return self.config["prediction"]

    @register_to_config
    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        patch_size: int = 4,
        base_channels: int = DIT_WIDTH,  # the token width (DiT's hidden size), named as the U-Nets' width is
        depth: int = 6,
        heads: int = 4,
        num_classes: int | None = None,
        prediction: str = "eps",
        path: str = "vp",
    ):
        super().__init__()
        check_prediction(prediction, path)
        check_image_size(image_size, patch_size, "DiT (patches of patch_size pixels)")
        if base_channels % heads:
            raise ValueError(f"the DiT's width {base_channels} must divide into heads={heads} equal heads.")
        self.image_size, self.in_channels, self.num_classes = image_size, in_channels, num_classes
        self.base_channels, self.patch_size = base_channels, patch_size
        dim, grid = base_channels, image_size // patch_size
        self.patchify = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)  # a linear map per patch
        self.register_buffer("positions", position_embedding(dim, grid)[None], persistent=False)
        self.time_mlp = nn.Sequential(nn.Linear(FREQUENCY_DIM, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.label_emb = LabelEmbedding(num_classes, dim) if num_classes else None
        self.blocks = nn.ModuleList(DiTBlock(dim, heads) for _ in range(depth))
        self.final_norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        self.final = nn.Linear(dim, patch_size * patch_size * in_channels)
        for layer in (self.final_ada[1], self.final):  # zero: the untrained network outputs 0
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t, y=None) -> torch.Tensor:
        t, y = check_input(self, x, t, y)
        b, p, grid = x.shape[0], self.patch_size, self.image_size // self.patch_size
        h = self.patchify(x).flatten(2).transpose(1, 2) + self.positions.to(x.dtype)  # (B, grid^2, D)
        c = self.time_mlp(timestep_embedding(t, FREQUENCY_DIM).to(h.dtype))
        if y is not None:
            c = c + self.label_emb(y)
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_ada(c).chunk(2, dim=1)
        h = self.final(modulate(self.final_norm(h), shift, scale))  # (B, grid^2, p p C)
        h = h.reshape(b, grid, grid, p, p, self.in_channels).permute(0, 5, 1, 3, 2, 4)
        return h.reshape(b, self.in_channels, grid * p, grid * p)

