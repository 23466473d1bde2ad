"""Classifier-free guidance (Ho & Salimans 2022, https://arxiv.org/abs/2207.12598).

One network predicts both eps(x_t, y) (conditional) and eps(x_t, null) (unconditional, learnt by
dropping labels during training). Sampling extrapolates from the second towards the first:

    eps = eps_u + s * (eps_c - eps_u)          (the form diffusers uses: guidance_scale = s)
        = (1 + w) * eps_c - w * eps_u          (Ho & Salimans' eq. 6, with s = 1 + w)

s = 1 (w = 0) is plain conditional sampling; s = 0 (w = -1) is unconditional; s > 1 sharpens.

Guidance in a limited interval (Kynkaanniemi et al. 2024, https://arxiv.org/abs/2404.07724): guide only
at noise levels sigma in [lo, hi] and sample plainly conditional (s = 1) outside it. Guidance at high
noise pushes every sample of a class towards the same few shapes; at low noise it does little.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .tokens import null_tokens


def check_guidance(scale) -> float | None:
    if scale is None:
        return None
    scale = float(scale)
    if not math.isfinite(scale):
        raise ValueError(f"guidance scale must be a finite number, got {scale}; try 1.0 to 7.0.")
    return scale


def check_guidance_interval(interval) -> tuple[float, float] | None:
    """None (guide everywhere) or (lo, hi) in sigma with 0 <= lo < hi (hi may be inf)."""
    if interval is None:
        return None
    try:
        lo, hi = (float(v) for v in interval)
    except (TypeError, ValueError):
        raise ValueError(f"guidance interval must be two noise levels LO,HI in sigma, got {interval!r}; "
                         "e.g. 0.3,5 (Kynkaanniemi et al. 2024).") from None
    if math.isnan(lo) or math.isnan(hi) or not 0 <= lo < hi or math.isinf(lo):
        raise ValueError(f"guidance interval must be LO,HI in sigma with 0 <= LO < HI, got {lo:g},{hi:g}; "
                         "e.g. 0.3,5.")
    return lo, hi


def scale_at(scale: float | None, sigma: float, interval: tuple[float, float] | None) -> float | None:
    """The guidance scale at noise level sigma: `scale` inside the interval (or everywhere without one),
    1 (plain conditional) outside it."""
    if scale is None or interval is None or interval[0] <= sigma <= interval[1]:
        return scale
    return 1.0


def apply_guidance(eps_c: torch.Tensor, eps_u: torch.Tensor, scale: float) -> torch.Tensor:
    """Combine the two predictions: eps_u + s * (eps_c - eps_u) (diffusers' form; Ho & Salimans 2022, eq. 6,
    write it (1 + w) eps_c - w eps_u with w = s - 1)."""
    return eps_u + scale * (eps_c - eps_u)


def guided_eps(model: nn.Module, x: torch.Tensor, t, y=None, guidance=None) -> torch.Tensor:
    """The model's noise prediction, with classifier-free guidance when `guidance` is a number.

    Both predictions come from one batched forward pass over [x, x] with conditions [y, null]: the
    null label for labels, the empty prompt for prompt tokens y (B, L) of a text model.
    With guidance=None or s = 1 (or an unconditional model / no labels) it is the plain model(x, t, y):
    at s = 1 the formula is eps_c, so the unconditional half would be wasted (diffusers skips it too).
    The result is in x's dtype (float32 even when the network ran under bf16 autocast).
    """
    scale = check_guidance(guidance)
    if scale is None or scale == 1.0 or y is None:
        return model(x, t, y).to(x.dtype)
    b = x.shape[0]
    t = torch.as_tensor(t, device=x.device).expand(b)
    y = torch.as_tensor(y, device=x.device).long()
    if y.ndim == 2:  # prompt tokens, one row per image
        null = null_tokens(y)
    elif model.num_classes is None:
        raise ValueError("guidance needs a conditional model; this one has num_classes=None.")
    else:
        y = y.expand(b)
        null = torch.full_like(y, model.num_classes)
    eps_c, eps_u = model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).to(x.dtype).chunk(2)
    return apply_guidance(eps_c, eps_u, scale)
