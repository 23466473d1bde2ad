"""Command line: python -m diffusion_lab {train, train-autoencoder, sample, evaluate, bench, download} ...

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

from .autoencoder import AutoencoderConfig
from .checkpoints import CheckpointError, atomic_write
from .data import DATASETS, DataNotFoundError, download_data, to_uint8
from .schedules import SCHEDULES
from .training import MINIMAL_WIDTH, UNET_WIDTH, TrainConfig


def _labels(text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        msg = f"--labels takes integers separated by commas, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


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
    t.add_argument("--autoencoder", help="latent diffusion: an autoencoder checkpoint (train-autoencoder)")
    t.add_argument("--text", action="store_true", help="condition on prompts in words made from the labels")
    t.add_argument("--checkpoint-every", type=int, default=500)
    t.add_argument("--threads", type=int, help="torch CPU threads")
    t.add_argument("--device", help="cpu, cuda or mps (default: best available)")
    t.add_argument("--resume", action="store_true", help="continue training --out")
    t.add_argument("--out", required=True, help="checkpoint path (.safetensors; a .json is written beside)")

    a = sub.add_parser("train-autoencoder", help="train the autoencoder whose latents latent diffusion models")
    a.add_argument("--dataset", default="mnist", choices=sorted(DATASETS))
    a.add_argument("--latent-channels", type=int, help=f"default {AutoencoderConfig.latent_channels}")
    a.add_argument("--base-channels", type=int, help=f"default {AutoencoderConfig.base_channels}")
    a.add_argument("--kl-weight", type=float, help=f"default {AutoencoderConfig.kl_weight:g}")
    a.add_argument("--batch-size", type=int, help=f"default {AutoencoderConfig.batch_size}")
    a.add_argument("--lr", type=float, help=f"default {AutoencoderConfig.lr:g}")
    a.add_argument("--steps", type=int, help=f"default {AutoencoderConfig.steps} unless --minutes")
    a.add_argument("--minutes", type=float, help="wall-clock budget; with --steps, whichever first")
    a.add_argument("--seed", type=int, help="default 0")
    a.add_argument("--threads", type=int, help="torch CPU threads")
    a.add_argument("--device", help="cpu, cuda or mps (default: best available)")
    a.add_argument("--out", required=True, help="checkpoint path (.safetensors; a .json is written beside)")

    s = sub.add_parser("sample", help="generate images from a checkpoint")
    s.add_argument("--checkpoint", required=True)
    s.add_argument("--sampler", default="ddim", choices=["ddpm", "ddim"])
    s.add_argument("--steps", type=int, default=50, help="DDIM steps (DDPM always walks all T)")
    s.add_argument("--eta", type=float, default=0.0)
    s.add_argument("--spacing", default="leading", choices=["leading", "trailing", "linspace"])
    s.add_argument("--guidance", type=float, help="classifier-free guidance scale s")
    s.add_argument("--clip", action="store_true", help="clip each predicted x_0 to [-1, 1]")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--labels", type=_labels, help="comma-separated class indices, one per image")
    g.add_argument("--per-class", type=int, help="K images of every class")
    g.add_argument("--prompt", help='text models: a prompt in words, e.g. "a thick seven"')
    s.add_argument("--num", type=int, help="number of images (unconditional or --prompt; default 16)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", help="cpu, cuda or mps")
    s.add_argument("--out", required=True, help="FILE.npz (uint8 images + labels) or FILE.png (grid)")

    e = sub.add_parser("evaluate", help="sample, then print quality metrics as JSON")
    e.add_argument("--checkpoint", required=True)
    e.add_argument("--sampler", default="ddim", choices=["ddpm", "ddim"])
    e.add_argument("--steps", type=int, default=20)
    e.add_argument("--eta", type=float, default=0.0)
    e.add_argument("--guidance", type=float, help="classifier-free guidance scale (conditional models)")
    e.add_argument("--clip", action="store_true", help="clip each predicted x_0 to [-1, 1]")
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
        dataset=a.dataset, model=a.model, conditional=a.conditional or a.text, amp=not a.no_amp,
        autoencoder=a.autoencoder, text=a.text,
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


def cmd_train_autoencoder(a) -> None:
    from .autoencoder import train_autoencoder

    if a.threads:
        torch.set_num_threads(a.threads)
    given = {"latent_channels": a.latent_channels, "base_channels": a.base_channels, "kl_weight": a.kl_weight,
             "batch_size": a.batch_size, "lr": a.lr, "seed": a.seed}
    cfg = AutoencoderConfig(dataset=a.dataset, steps=a.steps if (a.steps or a.minutes) else AutoencoderConfig.steps,
                            minutes=a.minutes, **{k: v for k, v in given.items() if v is not None})
    _, result = train_autoencoder(cfg, out=a.out, device=a.device)
    print(json.dumps(result))


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


def sample_condition(a, model, config):
    """(y for sample(), the label of each image for the .npz): labels, or a text model's prompt tokens.

    A text model takes --prompt (labels: the class it names, else -1) or, with --labels/--per-class,
    each class's canonical prompt ("a seven")."""
    from .text import class_prompts, prompt_class, tokenizer_of

    tokenizer = tokenizer_of(config)
    if a.prompt is not None:
        if tokenizer is None:
            raise ValueError("--prompt needs a text-conditioned checkpoint (trained with --text); this one is "
                             + ("class-conditional: use --labels or --per-class." if model.num_classes
                                else "unconditional."))
        num = a.num or 16
        return tokenizer.encode(a.prompt).expand(num, -1), [prompt_class(a.prompt, config["dataset"])] * num
    labels = sample_labels(a, len(config["classes"]) if tokenizer is not None else model.num_classes)
    if labels is None:
        return None, [-1] * (a.num or 16)
    if tokenizer is not None:
        return class_prompts(labels, config["dataset"], tokenizer), labels
    return labels, labels


def cmd_sample(a) -> None:
    from .autoencoder import autoencoder_of
    from .checkpoints import load_checkpoint
    from .evaluate import LATENT_CLIP
    from .samplers import sample
    from .settings import pick_device

    out = Path(a.out)
    if out.suffix not in (".npz", ".png"):
        raise ValueError(f"--out must end in .npz or .png, got {out.name!r}.")
    device = pick_device(a.device)
    model, schedule, config = load_checkpoint(a.checkpoint, device=device)
    ae = autoencoder_of(a.checkpoint, config, device=device)
    if ae is not None and a.clip:
        raise ValueError(LATENT_CLIP)
    y, labels = sample_condition(a, model, config)
    num = len(labels)
    x = sample(model, schedule, num, sampler=a.sampler, steps=a.steps, eta=a.eta, spacing=a.spacing,
               y=y, guidance=a.guidance if y is not None else None, seed=a.seed, clip_x0=a.clip)
    if ae is not None:  # latent diffusion: the sampler made latents; the decoder makes them images
        with torch.no_grad():
            x = ae.decode(x)
    if out.suffix == ".npz":
        lab = np.asarray(labels, dtype=np.int64)

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
    from .evaluate import evaluate_checkpoint
    from .settings import pick_device

    result = evaluate_checkpoint(a.checkpoint, device=pick_device(a.device), num=a.num, sampler=a.sampler,
                                 steps=a.steps, eta=a.eta, guidance=a.guidance, clip_x0=a.clip, seed=a.seed,
                                 progress=True)
    print(json.dumps({"checkpoint": str(a.checkpoint), **result}))


def main(argv=None) -> int:
    a = _parser().parse_args(argv)
    try:
        if a.command == "train":
            cmd_train(a)
        elif a.command == "train-autoencoder":
            cmd_train_autoencoder(a)
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
