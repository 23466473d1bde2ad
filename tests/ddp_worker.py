"""Run by tests/test_distributed.py under `torchrun --nproc_per_node 2`: the command line's `train`
for one step, then `--resume` for one step twice, in the same processes, keeping a copy of the
checkpoint after steps 1 and 2.

    torchrun --standalone --nproc_per_node 2 tests/ddp_worker.py OUT_DIR FLAG...
"""

import os
import shutil
import sys
from pathlib import Path

from diffusion_lab.cli import main

out, flags = Path(sys.argv[1]), sys.argv[2:]
ckpt = out / "two.safetensors"
for step in (1, 2, 3):
    resume = ["--resume"] if step > 1 else flags
    assert main(["train", *resume, "--steps", "1", "--out", str(ckpt)]) == 0
    if os.environ["RANK"] == "0" and step < 3:  # Adam's moments after steps 1 and 2 hold the gradients
        for suffix in (".json", ".safetensors", ".train.safetensors"):
            shutil.copy(ckpt.with_suffix(suffix), out / f"two_step{step}{suffix}")
