"""The two special token ids and the empty prompt, the null condition of classifier-free guidance over
text. They sit below text.py (the tokenizer and the encoder network) so the guidance maths can build
the null condition without importing a network module.
"""

from __future__ import annotations

import torch

PAD, BOS = 0, 1  # token ids: padding (ignored by attention), start of prompt (always there)


def null_tokens(like: torch.Tensor) -> torch.Tensor:
    """The empty prompt "" (BOS then PAD), shaped like `like`: the null condition for guidance."""
    null = torch.full_like(like, PAD)
    null[..., 0] = BOS
    return null
