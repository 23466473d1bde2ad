"""The course's default noise predictor: a small DDPM/ADM-style U-Net.

Differences from the minimal U-Net, each the standard choice of DDPM and ADM (Ho et al. 2020,
appendix B, https://arxiv.org/abs/2006.11239; Dhariwal & Nichol 2021, https://arxiv.org/abs/2105.05233).
Standard, not proven here: chapter 08 measures them, and at a short training budget t and y in
every block did no better than in the middle blocks only.
- the time (and label) embedding goes into *every* residual block, as a per-channel scale and
  shift after its GroupNorm, so each resolution knows how noisy its input is (time_embedding="middle"
  keeps only the middle blocks', as Yu 2025's minimal U-Net does, for the comparison in chapter 08);
- skips are concatenated, SiLU activations, GroupNorm before each conv;
- optional self-attention at the lowest resolution (7x7 for MNIST), where it is cheap, and, for larger
  images, after each residual block at the resolutions in `attention_resolutions` (DDPM: 16x16 of CIFAR-10).
- optional text conditioning (vocab_size=...): a small transformer encodes the prompt's tokens
  (text.TextEncoder) and a cross-attention block after every residual block lets each position read
  them (Rombach et al. 2022, sec. 3.3). Without it the model is exactly as before, so older
  checkpoints load unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import LabelEmbedding, timestep_embedding
from .forward import check_prediction
from .layers import check_image_size, check_input, group_norm, register_to_config
from .text import PAD, TextEncoder

# Channels at the top level, the training recipe's default too: the measured winner on a CPU for 28x28
# digits at equal minutes (scripts/recipe_sweep.py).
UNET_WIDTH = 16

GROUPS = 8  # GroupNorm groups: each spans several channels (see layers.group_norm)
TIME_EMBEDDINGS = ("every", "middle")  # where t and y enter: every residual block, or the middle ones only


class ResBlock(nn.Module):
    """h = conv(act(norm(x))); h = norm(h) * (1 + scale) + shift; h = conv(act(h)); return h + skip(x).

    (scale, shift) come from the time/label embedding (ADM's "scale-shift norm", Dhariwal &
    Nichol 2021). They are applied *after* the normalisation: a bias added before it would be
    partly subtracted again by the norm.
    """

    def __init__(self, cin: int, cout: int, emb_dim: int | None, dropout: float = 0.0, attention: bool = False):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin, GROUPS), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout) if emb_dim else None  # None: this block is not told t
        self.norm2, self.conv2 = group_norm(cout, GROUPS), nn.Conv2d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        if attention:  # DDPM's AttnBlock after the residual block, at the resolutions asked for
            self.attn = Attention(cout)

    def forward(self, x, emb):
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        if self.emb is not None:
            scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
            h = h * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h))) + self.skip(x)
        return self.attn(h) if hasattr(self, "attn") else h


class Attention(nn.Module):
    """Single-head self-attention over the pixels of a (small) feature map, with a residual."""

    def __init__(self, ch: int):
        super().__init__()
        self.norm, self.qkv, self.proj = group_norm(ch, GROUPS), nn.Conv2d(ch, 3 * ch, 1), nn.Conv2d(ch, ch, 1)

    def forward(self, x):
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(c)) v
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class CrossAttention(nn.Module):
    """Image positions attend to prompt tokens (latent diffusion, eq. 3 and sec. 3.3):

        Q = W_q norm(h)  (one query per pixel/latent position)    K = W_k c,  V = W_v c  (one per token)
        out = h + W_o softmax(Q K^T / sqrt(d) + mask) V           (mask: -inf for padding tokens)

    Single-head, so each position has one weight per token: the attention map of a word is the
    weight every position gives it (keep_attention=True stores the last one, (B, HW, L)).
    """

    def __init__(self, ch: int, context_dim: int):
        super().__init__()
        self.norm, self.q = group_norm(ch, GROUPS), nn.Conv2d(ch, ch, 1)
        self.k, self.v = nn.Linear(context_dim, ch), nn.Linear(context_dim, ch)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)  # starts as the identity: the text enters gradually
        nn.init.zeros_(self.proj.bias)
        self.keep_attention, self.attention = False, None

    def forward(self, h, context, keep):
        b, c, hh, ww = h.shape
        q = self.q(self.norm(h)).flatten(2).transpose(1, 2)  # (B, HW, C)
        k, v = self.k(context), self.v(context)  # (B, L, C)
        weights = attention_weights(q, k, keep)  # (B, HW, L)
        if self.keep_attention:
            self.attention = weights.detach()
        out = (weights @ v).transpose(1, 2).reshape(b, c, hh, ww)
        return h + self.proj(out)


def attention_weights(q: torch.Tensor, k: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) over the tokens, padding masked: q (B, N, d), k (B, L, d), keep (B, L) bool."""
    scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~keep[:, None, :], float("-inf"))
    return scores.float().softmax(dim=-1).to(q.dtype)


class UNet(nn.Module):
    """eps_theta(x_t, t, y). channel_mults gives one level per entry; each level after the first
    halves the resolution (28 -> 14 -> 7 with the default three levels)."""

    @property
    def prediction_type(self) -> str:
        """What the network outputs ("eps", "v" or "velocity"): read from the recorded config, never set apart."""
        return self.config["prediction"]

    @register_to_config
    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        base_channels: int = UNET_WIDTH,
        channel_mults: tuple[int, ...] = (1, 2, 2),
        num_res_blocks: int = 1,
        attention: bool = True,
        num_classes: int | None = None,
        dropout: float = 0.0,
        time_embedding: str = "every",
        vocab_size: int | None = None,
        text_dim: int = 64,
        text_depth: int = 2,
        text_heads: int = 4,
        attention_resolutions: tuple[int, ...] = (),
        prediction: str = "eps",
        path: str = "vp",
    ):
        super().__init__()
        # What the network is trained to output: the noise eps (Ho et al. 2020,
        # https://arxiv.org/abs/2006.11239) or v (Salimans & Ho 2022, https://arxiv.org/abs/2202.00512).
        # Part of the recorded config, so a checkpoint and a hand-built model both say it.
        check_prediction(prediction, path)  # eps or v on the VP path; the velocity on the linear path (paths.py)
        if time_embedding not in TIME_EMBEDDINGS:
            raise ValueError(f"time_embedding must be 'every' or 'middle' (Yu 2025's wiring), got {time_embedding!r}.")
        channel_mults = tuple(channel_mults)
        self.time_embedding = time_embedding
        check_image_size(image_size, 2 ** (len(channel_mults) - 1), "UNet")
        if num_classes and vocab_size:
            raise ValueError("a U-Net is conditioned on labels (num_classes) or on text (vocab_size), not both.")
        self.image_size, self.in_channels, self.num_classes = image_size, in_channels, num_classes
        self.text_encoder = TextEncoder(vocab_size, text_dim, text_depth, text_heads) if vocab_size else None
        self.base_channels = base_channels
        emb_dim = 4 * base_channels
        outer = emb_dim if time_embedding == "every" else None  # the ablation: only the middle sees t, y
        self.time_mlp = nn.Sequential(
            nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.label_emb = LabelEmbedding(num_classes, emb_dim) if num_classes else None
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)

        sizes = [image_size // 2**level for level in range(len(channel_mults))]
        if not set(attention_resolutions) <= set(sizes):
            raise ValueError(f"attention_resolutions {tuple(attention_resolutions)}: this U-Net's levels are "
                             f"{', '.join(map(str, sizes))} pixels wide; choose among those.")
        attend = [size in tuple(attention_resolutions) for size in sizes]
        self.down, skips, ch = nn.ModuleList(), [base_channels], base_channels
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                self.down.append(ResBlock(ch, base_channels * mult, outer, dropout, attend[level]))
                ch = base_channels * mult
                skips.append(ch)
            if level < len(channel_mults) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))  # downsample
                skips.append(ch)

        self.mid1 = ResBlock(ch, ch, emb_dim, dropout)
        self.mid_attn = Attention(ch) if attention else nn.Identity()
        self.mid2 = ResBlock(ch, ch, emb_dim, dropout)

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for _ in range(num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), base_channels * mult, outer, dropout, attend[level]))
                ch = base_channels * mult
            if level > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode="nearest"))
        # One cross-attention block after every residual block, at every resolution, when text-conditioned.
        blocks = [m for m in self.modules() if isinstance(m, ResBlock)]
        self.cross = nn.ModuleList(CrossAttention(b.conv2.out_channels, text_dim) for b in blocks) \
            if vocab_size else None
        self.norm_out, self.conv_out = group_norm(ch, GROUPS), nn.Conv2d(ch, in_channels, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)  # start as "predict zero noise": stabler early steps
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, x: torch.Tensor, t, y=None) -> torch.Tensor:
        """y: a label per image (class-conditional), prompt tokens (B, L) (text), or None (null)."""
        t, y = check_input(self, x, t, y)
        emb = self.time_mlp(timestep_embedding(t, self.base_channels).to(x.dtype))
        if self.label_emb is not None:
            emb = emb + self.label_emb(y)
        cross = iter(self.cross or ())
        if self.text_encoder is not None:
            context, keep = self.text_encoder(y), y != PAD

        def block(layer, h):  # a residual block, then (text models) its cross-attention
            h = layer(h, emb)
            return next(cross)(h, context, keep) if self.cross is not None else h

        h = self.conv_in(x)
        hs = [h]
        for layer in self.down:
            h = block(layer, h) if isinstance(layer, ResBlock) else layer(h)
            hs.append(h)
        h = block(self.mid1, h)
        h = block(self.mid2, self.mid_attn(h))
        for layer in self.up:
            h = block(layer, torch.cat([h, hs.pop()], dim=1)) if isinstance(layer, ResBlock) else layer(h)
        return self.conv_out(F.silu(self.norm_out(h)))


@torch.no_grad()
def cross_attention_maps(model: UNet, x: torch.Tensor, t, tokens: torch.Tensor) -> torch.Tensor:
    """Where each token is read: the weight every position gives it in each cross-attention block,
    resized to the model's input size (bilinear) and averaged over the blocks. (B, L, H, W); along
    L the maps sum to 1 at every position (padding tokens get 0)."""
    if model.cross is None:
        raise ValueError("this model has no cross-attention (it is not text-conditioned).")
    for ca in model.cross:
        ca.keep_attention = True
    try:
        model(x, t, tokens)
    finally:
        for ca in model.cross:
            ca.keep_attention = False
    maps = []
    for ca in model.cross:
        b, n, length = ca.attention.shape
        side = int(round(n**0.5))
        a = ca.attention.float().transpose(1, 2).reshape(b, length, side, side)
        maps.append(F.interpolate(a, size=x.shape[-2:], mode="bilinear", align_corners=False) if side != x.shape[-1]
                    else a)
        ca.attention = None
    return torch.stack(maps).mean(0)
