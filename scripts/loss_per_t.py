"""Where does training put its effort? Loss per timestep for short runs that differ in one setting:
the loss weighting (eq. 14's plain average, or min-SNR) and the label-dropout rate p_uncond.

    DIFFUSION_LAB_DATA=<full MNIST> python scripts/loss_per_t.py      # ~20 CPU minutes, one thread

Each run trains the default recipe (TrainConfig) for the same number of steps, then measures the
plain, unweighted noise-prediction error at fixed timesteps on a fixed batch (same images, same noise
for every run), both with the true labels (the conditional model) and with the null label (the
unconditional one). Chapter 04's viewer reads data/results/loss_per_t.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from diffusion_lab.bench import cpu_name
from diffusion_lab.checkpoints import atomic_write
from diffusion_lab.data import load_data
from diffusion_lab.results import results_path
from diffusion_lab.schedules import make_schedule
from diffusion_lab.training import TrainConfig, train

OUT = results_path("loss_per_t")
STEPS = 800
T_GRID = [0, 1, 2, 5, 10, 20, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999]
RUNS = [(w, p) for w in ("simple", "min_snr") for p in (0.0, 0.1, 0.5)]


@torch.no_grad()
def loss_per_t(model, schedule, images, labels, null: int, seed: int = 1) -> dict:
    """Unweighted MSE(eps, model(x_t, t, y)) at each t of T_GRID, with the labels and with the null label."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(images.shape, generator=g)
    out = {"cond": [], "uncond": []}
    for t in T_GRID:
        tb = torch.full((len(images),), t)
        x_t = schedule.at(schedule.sqrt_alpha_bar, tb, images) * images + schedule.at(
            schedule.sqrt_one_minus_alpha_bar, tb, images) * noise
        for key, y in (("cond", labels), ("uncond", torch.full_like(labels, null))):
            out[key].append(round(float(((model(x_t, tb, y) - noise) ** 2).mean()), 6))
    return out


def main() -> None:
    data = load_data("mnist", "train")
    g = torch.Generator().manual_seed(123)
    idx = torch.randperm(len(data), generator=g)[:256]
    images, labels = data.images[idx], data.labels[idx]
    schedule = make_schedule("linear", 1000)
    rows = []
    for weighting, p_uncond in RUNS:
        cfg = TrainConfig(dataset="mnist", conditional=True, steps=STEPS, loss_weighting=weighting, p_uncond=p_uncond)
        result = train(cfg, data=data, progress=False)
        curves = loss_per_t(result.model, schedule, images, labels, data.info.num_classes)
        rows.append({"loss_weighting": weighting, "p_uncond": p_uncond, "steps": result.step,
                     "seconds": round(result.seconds, 1), "loss_cond": curves["cond"], "loss_uncond": curves["uncond"],
                     "command": f"python -m diffusion_lab train --dataset mnist --conditional --steps {STEPS} "
                                f"--loss-weighting {weighting} --p-uncond {p_uncond}"})
        print(json.dumps(rows[-1]), flush=True)
    out = {"t": T_GRID, "steps": STEPS, "eval_images": len(images), "data_source": data.record,
           "threads": torch.get_num_threads(), "cpu": cpu_name(),
           "command": "python scripts/loss_per_t.py", "runs": rows}
    text = json.dumps(out, indent=1) + "\n"
    atomic_write(OUT, lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
