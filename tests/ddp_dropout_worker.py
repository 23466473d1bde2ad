"""Run by tests/test_distributed.py under torchrun with 2 processes: one training step with dropout,
recording in RANK.json which activations each process's dropout zeroed on its first call."""

import json
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

from diffusion_lab import load_data
from diffusion_lab.training import TrainConfig, train

out = Path(sys.argv[1])
masks = []
real_dropout = F.dropout


def recording_dropout(x, p=0.5, training=True, inplace=False):
    y = real_dropout(x, p, training, inplace)
    if training and p > 0 and not masks:
        masks.append(((y == 0) & (x != 0)).flatten()[:4096].tolist())
    return y


torch.nn.modules.dropout.F.dropout = recording_dropout
data = load_data("mnist", "train", limit=64, verbose=False)
train(TrainConfig(dataset="mnist", base_channels=8, channel_mults=(1, 2), attention=False, T=50, dropout=0.1,
                  amp=False, steps=1, batch_size=4, checkpoint_every=0, data_limit=64),
      data=data, progress=False, device="cpu")
(out / f"{os.environ['RANK']}.json").write_text(json.dumps(masks[0]))
