"""Where does self-attention pay for 32x32 colour images? Measured at small scale on a CPU.

    python scripts/cifar_attention.py --subset cifar10_train_0-3999_lossless.npz [--minutes 6 | --steps 150]

Three arms of the CIFAR-10 recipe (TrainConfig(dataset="cifar10")), which differ only in attention:
at 8x8 only (the middle of the U-Net, the lowest of its levels 32, 16, 8), at 16x16 and 8x8 (DDPM's
choice), and none. Each trains for the same wall time (--minutes; fair only on a machine to itself) or
the same number of optimizer steps (--steps; the throughput is then the price of each arm) on one
thread on the first images of an npz of real CIFAR-10 training images (uint8 `x` (N, 32, 32, 3),
`y`), then is scored by its diffusion loss (eq. 14, plain, float32) on the last --holdout images,
never trained on, at fixed t and noise. At this small scale the recipe's batch and learning rate are
changed to make progress in minutes (batch 64, lr 1e-3, warm-up 50; stated in every row).
Rows go to data/results/cifar_attention.json.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from diffusion_lab.data import ImageData, dataset_info, from_uint8
from diffusion_lab.forward import q_sample
from diffusion_lab.results import save_results
from diffusion_lab.schedules import make_schedule
from diffusion_lab.training import TrainConfig, train

ARMS = {  # name: the settings that differ
    "attention at 8x8 (middle)": dict(attention=True, attention_resolutions=()),
    "attention at 16x16 and 8x8 (DDPM)": dict(attention=True, attention_resolutions=(16,)),
    "no attention": dict(attention=False, attention_resolutions=()),
}
SMALL_SCALE = dict(batch_size=64, lr=1e-3, warmup=50, checkpoint_every=0)


@torch.no_grad()
def held_out_loss(model, images, schedule, labels=None, seed=0, batch=250) -> float:
    """Mean ||eps - eps_theta(x_t, t, y)||^2 over the images, t and eps drawn once from `seed`."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(schedule.T, (len(images),), generator=g)
    noise = torch.randn(images.shape, generator=g)
    total = 0.0
    for i in range(0, len(images), batch):
        sl = slice(i, i + batch)
        x_t = q_sample(images[sl], t[sl], schedule, noise[sl])
        y = labels[sl] if labels is not None else None
        total += F.mse_loss(model(x_t, t[sl], y), noise[sl], reduction="sum").item()
    return total / noise.numel()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subset", required=True, help="npz of CIFAR-10 training images (x, y)")
    p.add_argument("--holdout", type=int, default=1000)
    budget = p.add_mutually_exclusive_group()
    budget.add_argument("--minutes", type=float, help="the same wall time for each arm (default: 6)")
    budget.add_argument("--steps", type=int, help="the same number of optimizer steps for each arm")
    a = p.parse_args()
    if a.steps is None and a.minutes is None:
        a.minutes = 6.0
    budget_flag = f"--steps {a.steps}" if a.steps is not None else f"--minutes {a.minutes:g}"
    info = dataset_info("cifar10")
    with np.load(a.subset) as f:
        x, y = from_uint8(f["x"]), torch.as_tensor(f["y"].astype(np.int64))
    n = len(x) - a.holdout
    train_data = ImageData(x[:n], y[:n], info, "train", f"CIFAR-10 train images 0..{n - 1} of {Path(a.subset).name}")
    rows = []
    for name, arm in ARMS.items():
        cfg = TrainConfig(dataset="cifar10", minutes=a.minutes, steps=a.steps, **SMALL_SCALE, **arm)
        t0 = time.perf_counter()
        r = train(cfg, data=train_data, progress=False)
        schedule = make_schedule(cfg.schedule, cfg.T)
        loss = held_out_loss(r.model.float(), x[n:], schedule, y[n:])
        rows.append({
            "name": name,
            "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in (arm | SMALL_SCALE).items()},
            "budget": budget_flag, "steps": r.step, "train_seconds": round(r.seconds, 1),
            "images_per_second": round(r.images_per_second, 1),
            "held_out_loss": round(loss, 5), "parameters": sum(p.numel() for p in r.model.parameters()),
            "threads": torch.get_num_threads(), "train_images": n, "held_out_images": a.holdout,
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "command": f"python scripts/cifar_attention.py --subset {Path(a.subset).name} {budget_flag}",
        })
        print(rows[-1], flush=True)
    save_results("cifar_attention", rows)


if __name__ == "__main__":
    main()
