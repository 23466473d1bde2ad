"""Compute every number in the README's results table and chapter 08, from the shipped checkpoints.

    python scripts/evaluate_all.py steps guidance architecture checkpoints

Each part writes data/results/<part>.json (rows of `python -m diffusion_lab evaluate` output plus
the command that reproduces the row). Sampling is the cost: ~10-30 CPU minutes per part here.
"""

import json
import sys

from diffusion_lab.checkpoints import load_pretrained
from diffusion_lab.evaluate import evaluate_model
from diffusion_lab.results import save_results

CK = "data/checkpoints"


def row(name, num, sampler="ddim", steps=20, guidance=None, **extra):
    model, schedule, config = load_pretrained(name)
    walk = {} if sampler == "ddpm" else {"steps": steps}  # DDPM walks all T steps
    r = evaluate_model(model, schedule, config["dataset"], num=num, sampler=sampler, guidance=guidance, **walk)
    cmd = f"python -m diffusion_lab evaluate --checkpoint {CK}/{name}.safetensors --sampler {sampler}"
    cmd += f" --steps {steps}" if sampler == "ddim" else ""
    cmd += f" --guidance {1 if guidance is None else guidance:g}"  # 1 = unguided; omitted, the recorded scale
    cmd += f" --num {num}"
    out = {"checkpoint": name, **extra, **r, "training_steps": config["training"]["steps_done"],
           "training_seconds": config["training"]["seconds"], "command": cmd}
    print(json.dumps(out), flush=True)
    return out


PARTS = {
    # Quality against sampling steps (plain conditional sampling, s = 1: one forward pass a step).
    # 500 samples: at 100, FD in 128 dimensions is mostly sampling noise (chapter 08 shows it).
    "steps": lambda: [row("mnist_cfg", 500, "ddim", s) for s in (5, 10, 20, 50, 100)]
    + [row("mnist_cfg", 500, "ddpm")],
    # Guidance scale: class accuracy against diversity.
    "guidance": lambda: [row("mnist_cfg", 500, "ddim", 20, g) for g in (0.0, 1.0, 2.0, 3.0, 5.0, 7.0)],
    # Same short budget in steps (600; 1000 for the cheaper minimal U-Net; not the same wall time, not
    # Yu 2025's width 128): Yu 2025's minimal U-Net, ours with t only in the middle, ours.
    "architecture": lambda: [
        row(n, 500, "ddim", 20, 3.0, arm=arm)
        for n, arm in (("mnist_cfg_minimal", "Yu 2025's minimal U-Net"),
                       ("mnist_cfg_unet_middle", "our U-Net, t and y only in the middle"),
                       ("mnist_cfg_unet", "our U-Net, t and y in every block"))
    ],
    # The shipped models.
    "checkpoints": lambda: [row("mnist_cfg", 1000, "ddim", 20, 3.0), row("fashion_mnist_cfg", 1000, "ddim", 20, 3.0),
                            row("mnist_uncond", 1000, "ddim", 20)],
}

if __name__ == "__main__":
    for part in sys.argv[1:] or PARTS:
        save_results(part, PARTS[part]())
