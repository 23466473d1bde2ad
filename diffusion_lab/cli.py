"""Command line: python -m diffusion_lab {train, sample, evaluate, bench, download} ...

    python -m diffusion_lab train --dataset mnist --conditional --minutes 10 --out runs/mnist_cfg
    python -m diffusion_lab sample --checkpoint data/checkpoints/mnist_cfg.safetensors \\
        --sampler ddim --steps 20 --guidance 3 --per-class 4 --out samples.png
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .checkpoints import CheckpointError, atomic_write
from .data import DATASETS, DataNotFoundError, download_data, to_uint8
from .samplers import SAMPLERS, SPACINGS
from .schedules import SCHEDULES
from .solvers import FINAL_SIGMAS
from .training import MINIMAL_WIDTH, UNET_WIDTH, TrainConfig


def _labels(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        msg = f"--labels takes integers separated by commas, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def _sampler_flags(p: argparse.ArgumentParser, steps: int) -> None:
    """The sampler's settings, shared by `sample` and `evaluate` (sample()'s keyword arguments)."""
    p.add_argument("--sampler", default="ddim", choices=SAMPLERS,
                   help="ddpm (all T steps), ddim, euler, heun (2 model calls a step), dpmpp2m (DPM-Solver++ 2M)")
    p.add_argument("--steps", type=int, default=steps, help=f"sampling steps (default {steps}; ddpm walks all T)")
    p.add_argument("--eta", type=float, default=0.0, help="ddim only: 0 deterministic, 1 DDPM-like noise")
    p.add_argument("--spacing", default="leading", choices=SPACINGS, help="which timesteps the steps visit")
    p.add_argument("--karras", action="store_true", help="euler/heun/dpmpp2m: Karras et al.'s sigma spacing")
    p.add_argument("--final-sigma", default="zero", choices=FINAL_SIGMAS,
                   help="euler/heun/dpmpp2m: end on the clean image (zero) or at the smallest training sigma")
    p.add_argument("--clip", action="store_true", help="clip each predicted x_0 to [-1, 1]")
    p.add_argument("--no-amp", action="store_true",
                   help="float32 only (default: bf16 autocast in the network on GPUs and CPUs with native bf16)")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m diffusion_lab", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a noise predictor and write a checkpoint")
    t.add_argument("--dataset", default="mnist", choices=sorted(DATASETS))
    t.add_argument("--model", default="unet", choices=["unet", "minimal"])
    t.add_argument("--conditional", action="store_true", help="class-conditional, for CFG")
    # Defaults (None here) come from TrainConfig, the one place the recipe lives; --help shows them.
    t.add_argument("--p-uncond", type=float, help="label dropout probability (default 0.1)")
    t.add_argument("--steps", type=int, help="optimizer steps (default 1000 unless --minutes)")
    t.add_argument("--minutes", type=float, help="wall-clock budget; with --steps, whichever first")
    t.add_argument("--batch-size", type=int, help=f"default {TrainConfig.batch_size}")
    t.add_argument("--lr", type=float, help=f"peak learning rate (default {TrainConfig.lr:g})")
    t.add_argument("--warmup", type=int, help=f"learning-rate warm-up steps (default {TrainConfig.warmup})")
    t.add_argument("--base-channels", type=int, help=f"default {UNET_WIDTH} (unet), {MINIMAL_WIDTH} (minimal)")
    t.add_argument("--channel-mults", help=f"unet only (default {','.join(map(str, TrainConfig.channel_mults))})")
    t.add_argument("--num-res-blocks", type=int, help=f"unet only (default {TrainConfig.num_res_blocks})")
    t.add_argument("--attention", action=argparse.BooleanOptionalAction,
                   help=f"unet only: self-attention at the lowest resolution (default {TrainConfig.attention})")
    t.add_argument("--time-embedding", choices=["every", "middle"],
                   help="unet only: t and y enter every residual block (default) or only the middle")
    t.add_argument("--schedule", choices=SCHEDULES, help=f"default {TrainConfig.schedule}")
    t.add_argument("-T", "--timesteps", type=int, help=f"default {TrainConfig.T}")
    t.add_argument("--prediction", choices=["eps", "v"], help=f"training target (default {TrainConfig.prediction})")
    t.add_argument("--loss-weighting", choices=["simple", "min_snr"], help=f"default {TrainConfig.loss_weighting}")
    t.add_argument("--ema-decay", type=float, help=f"default {TrainConfig.ema_decay}")
    t.add_argument("--seed", type=int, help="default 0")
    t.add_argument("--no-amp", action="store_true",
                   help="float32 only (default: bf16 autocast on GPUs and on CPUs with native bf16)")
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--device", help="cpu, cuda or mps (default: best available)")
    t.add_argument("--resume", action="store_true", help="continue training --out")
    t.add_argument("--out", required=True, help="checkpoint path (.safetensors; a .json is written beside)")

    s = sub.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("--checkpoint", required=True)
    _sampler_flags(s, steps=50)
    s.add_argument("--guidance", type=float, help="classifier-free guidance scale s")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--labels", type=_labels, help="comma-separated class indices, one per image")
    g.add_argument("--per-class", type=int, help="K images of every class")
    s.add_argument("--num", type=int, help="number of images (unconditional; default 16)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", help="cpu, cuda or mps")
    s.add_argument("--out", required=True, help="FILE.npz (uint8 images + labels) or FILE.png (grid)")

    e = sub.add_parser("evaluate", help="sample, then print quality metrics as JSON")
    e.add_argument("--checkpoint", required=True)
    _sampler_flags(e, steps=20)
    e.add_argument("--guidance", type=float, help="classifier-free guidance scale (conditional models)")
    e.add_argument("--num", type=int, default=1000)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", help="cpu, cuda or mps")

    sub.add_parser("bench", help="training and sampling speed against this machine's matmul ceiling")

    d = sub.add_parser("download", help="download a full dataset (needs internet)")
    d.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    d.add_argument("--root", help="data root (default $DIFFUSION_LAB_DATA or ~/.cache/diffusion_lab/data)")
    return p


def cmd_train(a) -> None:
    from .training import train

    if a.threads:
        torch.set_num_threads(a.threads)
    given = {
        "p_uncond": a.p_uncond, "batch_size": a.batch_size, "lr": a.lr, "warmup": a.warmup,
        "base_channels": a.base_channels, "num_res_blocks": a.num_res_blocks, "attention": a.attention,
        "time_embedding": a.time_embedding, "schedule": a.schedule, "T": a.timesteps, "prediction": a.prediction,
        "loss_weighting": a.loss_weighting, "ema_decay": a.ema_decay, "seed": a.seed,
        "checkpoint_every": a.checkpoint_every,
        "channel_mults": tuple(int(v) for v in a.channel_mults.split(",")) if a.channel_mults else None,
    }
    cfg = TrainConfig(
        dataset=a.dataset, model=a.model, conditional=a.conditional, amp=not a.no_amp,
        steps=a.steps if (a.steps or a.minutes) else 1000, minutes=a.minutes,
        **{k: v for k, v in given.items() if v is not None},
    )
    r = train(cfg, out=a.out, resume=a.resume, device=a.device)
    tail = r.losses[-100:]
    print(json.dumps({
        "checkpoint": str(r.checkpoint), "steps": r.step, "seconds": round(r.seconds, 1),
        "images_per_second": round(r.images_per_second, 1),
        "final_loss_mean_100": round(sum(tail) / max(1, len(tail)), 5),
    }))


def sample_labels(a, num_classes):
    """The label per image from --labels / --per-class, or None for unconditional."""
    if a.labels is not None or a.per_class is not None:
        if num_classes is None:
            raise ValueError("this checkpoint is unconditional: drop --labels/--per-class.")
        if a.labels is not None:
            labels = a.labels
        else:
            labels = [c for c in range(num_classes) for _ in range(a.per_class)]
        if a.num is not None and a.num != len(labels):
            raise ValueError(f"--num {a.num} disagrees with the {len(labels)} labels given.")
        return labels
    return None


def cmd_sample(a) -> None:
    from .checkpoints import load_checkpoint
    from .samplers import sample
    from .settings import pick_device

    out = Path(a.out)
    if out.suffix not in (".npz", ".png"):
        raise ValueError(f"--out must end in .npz or .png, got {out.name!r}.")
    model, schedule, config = load_checkpoint(a.checkpoint, device=pick_device(a.device))
    labels = sample_labels(a, model.num_classes)
    num = len(labels) if labels is not None else (a.num or 16)
    x = sample(model, schedule, num, sampler=a.sampler, steps=a.steps, eta=a.eta, spacing=a.spacing,
               karras=a.karras, final_sigma=a.final_sigma, y=labels,
               guidance=a.guidance if labels is not None else None, seed=a.seed, clip_x0=a.clip, amp=not a.no_amp)
    if out.suffix == ".npz":
        lab = np.asarray(labels if labels is not None else [-1] * num, dtype=np.int64)

        def write(tmp):
            with open(tmp, "wb") as f:  # a file object: savez would append ".npz" to a path
                np.savez_compressed(f, images=to_uint8(x), labels=lab)
    else:
        from torchvision.utils import save_image

        nrow = a.per_class if a.per_class else int(np.ceil(np.sqrt(num)))

        def write(tmp):  # [-1, 1] -> [0, 1], one grid, white between images
            save_image(((x.float() + 1) / 2).clamp(0, 1), tmp, nrow=nrow, padding=2, pad_value=1.0, format="png")
    atomic_write(out, write)
    print(f"wrote {num} images to {out}")


def cmd_evaluate(a) -> None:
    from .checkpoints import load_checkpoint
    from .evaluate import evaluate_model
    from .settings import pick_device

    model, schedule, config = load_checkpoint(a.checkpoint, device=pick_device(a.device))
    result = evaluate_model(model, schedule, config["dataset"], num=a.num, sampler=a.sampler, steps=a.steps,
                            eta=a.eta, spacing=a.spacing, karras=a.karras, final_sigma=a.final_sigma,
                            guidance=a.guidance, clip_x0=a.clip, amp=not a.no_amp, seed=a.seed, progress=True)
    print(json.dumps({"checkpoint": str(a.checkpoint), **result}))


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.command == "train":
            cmd_train(a)
        elif a.command == "sample":
            cmd_sample(a)
        elif a.command == "evaluate":
            cmd_evaluate(a)
        elif a.command == "bench":
            from .bench import main as bench_main

            bench_main()
        elif a.command == "download":
            print(f"{a.dataset} is in {download_data(a.dataset, a.root)}")
    except (ValueError, CheckpointError, DataNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
