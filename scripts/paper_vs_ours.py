"""The paper's DDIM against ours, on the same shipped model, graded by the evaluation classifier.

    python scripts/paper_vs_ours.py        # ~10 CPU minutes, one thread; writes data/results/paper_ddim.json

The paper's code (github.com/disanda/GM, DDPM-DDIM-ClassifierFree/ddpm.py, `ddim_sample`) differs
from ours in three lines: its timestep grid is `range(0, T, T // steps) + 1` (so it starts at 951,
not 950, for 20 of 1000 steps), its last step lands on alpha_bar_0 instead of the clean image
(alpha_bar = 1), and it clips the predicted x_0 to [-1, 1] but keeps the raw predicted noise in
the "direction" term. Each arm below changes some of those; all sample the same labels from the
same starting noise with guidance s = 3 (chapter 06's comparison box reads the results).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from diffusion_lab.checkpoints import atomic_write, load_pretrained
from diffusion_lab.classifier import features_and_predictions, load_classifier
from diffusion_lab.evaluate import real_floor
from diffusion_lab.forward import predict_x0
from diffusion_lab.guidance import guided_eps
from diffusion_lab.metrics import class_accuracy, frechet_distance, frechet_half_std
from diffusion_lab.results import results_path
from diffusion_lab.samplers import ddim_timesteps, sample

OUT = results_path("paper_ddim")
NUM, STEPS, GUIDANCE, BATCH = 500, 20, 3.0, 250


def paper_grid(T: int, steps: int) -> tuple[list[int], list[int]]:
    """The paper's code: seq = range(0, T, c) + 1, prev = [0] + seq[:-1], walked from the end."""
    c = T // steps
    seq = [t + 1 for t in range(0, T, c)]
    prev = [0] + seq[:-1]
    return seq[::-1], prev[::-1]


@torch.no_grad()
def ddim(model, schedule, y, x, grid, keep_raw_eps: bool, clip: bool):
    """Deterministic DDIM (eq. 12) along `grid` = (ts, prevs); t_prev = -1 means alpha_bar = 1."""
    ab = schedule.alpha_bar
    for t, t_prev in zip(*grid):
        tb = torch.full((len(x),), t)
        eps = guided_eps(model, x, tb, y, GUIDANCE)
        x0 = predict_x0(x, eps, tb, schedule)
        if clip:
            x0 = x0.clamp(-1, 1)
            if not keep_raw_eps:  # ours: the eps that the clipped x_0 implies (diffusers' use_clipped_model_output)
                eps = (x - ab[t].sqrt().float() * x0) / (1 - ab[t]).sqrt().float()
        ab_prev = float(ab[t_prev]) if t_prev >= 0 else 1.0
        x = ab_prev**0.5 * x0 + (1 - ab_prev) ** 0.5 * eps
    return x


def main() -> None:
    model, schedule, config = load_pretrained("mnist_cfg")
    clf, info, test_feats, test_labels = load_classifier("mnist")
    labels = torch.arange(NUM) % 10
    floor, reference = real_floor(test_feats, NUM, test_labels)
    ours_grid = (ddim_timesteps(schedule.T, STEPS), ddim_timesteps(schedule.T, STEPS)[1:] + [-1])
    arms = [
        ("Yu 2025's DDIM: grid + 1, ends on alpha_bar_0, clips x_0, keeps the raw eps",
         paper_grid(schedule.T, STEPS), True, True),
        ("our grid, clipping as Yu 2025 (clipped x_0, raw eps)", ours_grid, True, True),
        ("ours, clip_x0=True (clipped x_0 and the eps it implies)", ours_grid, False, True),
        ("ours, no clipping (the default)", ours_grid, False, False),
    ]
    rows = []
    for name, grid, keep_raw, clip in arms:
        chunks = []
        for i in range(0, NUM, BATCH):
            y = labels[i : i + BATCH]
            x = torch.randn((len(y), 1, 28, 28), generator=torch.Generator().manual_seed(i))  # same noise per arm
            chunks.append(ddim(model, schedule, y, x, grid, keep_raw, clip))
        images = torch.cat(chunks)
        if not keep_raw and clip:  # our sampler, run the package's way: the same images
            check = sample(model, schedule, y=labels[:BATCH], steps=STEPS, guidance=GUIDANCE, clip_x0=True, seed=None,
                           x_T=torch.randn((BATCH, 1, 28, 28), generator=torch.Generator().manual_seed(0)),
                           progress=False)
            assert torch.allclose(check, images[:BATCH], atol=1e-4), "the script's DDIM drifted from the package's"
        feats, preds, _ = features_and_predictions(clf, images)
        rows.append({"arm": name, "timesteps": list(grid[0]), "last_step_to": grid[1][-1],
                     "class_accuracy": round(class_accuracy(preds, labels), 4),
                     "fd": round(frechet_distance(feats, reference), 2),
                     "fd_std": round(frechet_half_std(feats, reference), 2), "fd_real_floor": round(floor, 2)})
        print(json.dumps(rows[-1]), flush=True)
    out = {"checkpoint": "mnist_cfg", "weights_sha256": config.get("weights_sha256"), "num": NUM, "steps": STEPS,
           "guidance": GUIDANCE, "command": "python scripts/paper_vs_ours.py", "arms": rows}
    text = json.dumps(out, indent=1) + "\n"
    atomic_write(OUT, lambda tmp: Path(tmp).write_text(text))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
