"""Command line: python -m diffusion_lab {train, train-autoencoder, sample, evaluate, bench, download} ...

    python -m diffusion_lab train --dataset mnist --minutes 10 --out runs/mnist_cfg.safetensors
    python -m diffusion_lab sample --checkpoint mnist_cfg --sampler ddim --steps 20 --guidance 3 \\
        --per-class 4 --out samples.png
    python -m diffusion_lab sample --checkpoint mnist_text --prompt "a thick seven" --guidance 3 \\
        --num 50 --out sevens.npz
    python -m diffusion_lab evaluate --checkpoint mnist_cfg --sampler dpmpp2m --steps 10 --spacing trailing

`train`'s flags are generated from TrainConfig's fields (training.py: default, help, choices), so the
recipe lives in one place. Bad input prints one line starting with "error:" and exits with status 2,
before anything is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import types
import typing
from pathlib import Path

import numpy as np

from .autoencoder import AutoencoderConfig
from .checkpoints import CheckpointError, atomic_write, checkpoint_paths, pretrained_path
from .data import DATASETS, DataError, download_data, to_uint8
from .distributed import is_main_process, world_size
from .edit import EDIT_DEFAULTS
from .guidance import check_guidance_interval
from .paths import path_of
from .samplers import ONLY_FOR, SAMPLERS, SPACINGS, SamplingConfig
from .settings import pick_device
from .solvers import FINAL_SIGMAS
from .training import DEFAULT_STEPS, UNET_ONLY, TrainConfig

NOT_IN_COMMANDS = ("checkpoint_every",)  # settings that do not change the trained weights


class UsageError(ValueError):
    """Bad command-line input, reported as one line (argparse's own errors included)."""


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would print the whole usage and exit; we want one line
        raise UsageError(f"{message} (see `{self.prog} --help`)")

    def parse_args(self, args=None, namespace=None):
        # Unknown flags surface at the top level, whose help does not list a subcommand's flags:
        # point at the help of the subcommand they were given to.
        a, extra = self.parse_known_args(args, namespace)
        if extra:
            prog = f"{self.prog} {a.command}" if getattr(a, "command", None) else self.prog
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see `{prog} --help`)")
        return a


# --------------------------------------------------------------------------- argument types


def finite_float(text: str) -> float:
    """A float flag: NaN and inf are refused (float() takes them, and they would poison training or sampling)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _count(text: str) -> int:
    """A positive integer (--num, --per-class, --threads)."""
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _seed(text: str) -> int:
    value = _integer(text)
    if not 0 <= value < 2**63:
        raise argparse.ArgumentTypeError(f"must be an integer in 0..2**63-1, got {text}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _interval(text: str) -> tuple[float, float]:
    """LO,HI: two noise levels (sigma), HI may be inf: "0.3,5" -> (0.3, 5.0)."""
    parts = [v.strip() for v in text.split(",")]
    try:
        if len(parts) != 2:
            raise ValueError(f"guidance interval must be two noise levels LO,HI in sigma, got {text!r}; e.g. 0.3,5.")
        return check_guidance_interval(parts)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _integers(text: str) -> list[int]:
    """Comma-separated integers: "1,2,2" -> [1, 2, 2]."""
    values = [v.strip() for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}")
    return [_integer(v) for v in values]


def _train_flag_type(hint):
    """argparse keywords for a TrainConfig field annotated `hint` (int, float | None, tuple[int, ...], ...)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # "int | None": the int
        hint = next(h for h in typing.get_args(hint) if h is not type(None))
    kind = typing.get_origin(hint) or hint
    if kind is bool:
        return {"action": argparse.BooleanOptionalAction}
    if kind is tuple:  # "1,2,2" -> (1, 2, 2); "none" -> () (channel_mults' check refuses it)
        return {"type": lambda text: () if text.strip().lower() in ("", "none") else tuple(_integers(text))}
    kind = finite_float if kind is float else kind
    return {"type": kind, "metavar": {int: "N", finite_float: "X"}.get(kind)}


def _flags(f: dataclasses.Field) -> tuple[str, ...]:
    return f.metadata.get("flags", ("--" + f.name.replace("_", "-"),))


def _default_text(f: dataclasses.Field) -> str:
    if f.default is None:
        return ""
    if isinstance(f.default, bool):
        return f" (default: {'--' if f.default else '--no-'}{f.name.replace('_', '-')})"
    if isinstance(f.default, tuple):
        return f" (default: {','.join(map(str, f.default))})"
    return f" (default: {f.default})"


def add_train_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field, with its help text and choices; a flag not given is absent from
    the parsed namespace, so TrainConfig's own default applies."""
    hints = typing.get_type_hints(TrainConfig)
    for f in dataclasses.fields(TrainConfig):
        kw = {"dest": f.name, "default": argparse.SUPPRESS, "help": f.metadata["help"] + _default_text(f),
              **_train_flag_type(hints[f.name])}
        if "choices" in f.metadata:  # argparse lists them in place of a metavar
            kw |= {"choices": f.metadata["choices"], "metavar": None}
        if "metavar" in f.metadata:
            kw["metavar"] = f.metadata["metavar"]
        parser.add_argument(*_flags(f), **kw)


def train_command(settings: dict) -> str:
    """The `train` command that trains with these TrainConfig settings (a dict, e.g. a checkpoint's):
    dataset, model, conditioning, budget and seed always; any other setting where it differs from
    TrainConfig's default (unet-only settings only for the unet)."""
    defaults = TrainConfig(model=settings["model"], dataset=settings.get("dataset", "mnist"))
    always = {"dataset", "model", "conditional", "seed"}
    parts = ["python -m diffusion_lab train"]
    for f in dataclasses.fields(TrainConfig):
        value = settings.get(f.name, f.default)
        value = tuple(value) if isinstance(value, list) else value
        if f.name in ("steps", "minutes"):
            skip = value is None
        elif f.name in NOT_IN_COMMANDS or (f.name in UNET_ONLY and settings["model"] != "unet"):
            skip = True
        else:
            skip = f.name not in always and value == getattr(defaults, f.name)
        if skip or value is None:
            continue
        flag = _flags(f)[0]
        if isinstance(value, bool):
            parts.append(flag if value else "--no-" + flag[2:])
        elif isinstance(value, tuple):
            parts.append(f"{flag} {','.join(map(str, value)) or 'none'}")
        else:
            parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
    return " ".join(parts)


# --------------------------------------------------------------------------- the parser


def _parser() -> Parser:
    p = Parser(prog="python -m diffusion_lab", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    t = sub.add_parser("train", help="train a noise predictor and write a checkpoint",
                       description="Train a noise predictor. Every flag but the last four is a TrainConfig "
                       f"setting; with --minutes alone there is no step limit (else {DEFAULT_STEPS} steps).")
    add_train_flags(t)
    t.add_argument("--threads", type=_count, help="torch CPU threads (default: torch's choice)")
    t.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    t.add_argument("--resume", action="store_true", help="continue training --out with its saved settings")
    t.add_argument("--out", required=True, help="checkpoint path, FILE.safetensors (a .json is written beside)")

    a = sub.add_parser("train-autoencoder", help="train the autoencoder whose latents latent diffusion models")
    a.add_argument("--dataset", default="mnist", choices=sorted(DATASETS))
    for name in ("latent_channels", "base_channels", "batch_size", "steps", "kl_weight", "lr"):
        default = getattr(AutoencoderConfig, name)
        a.add_argument("--" + name.replace("_", "-"), type=_count if isinstance(default, int) else finite_float,
                       help=f"default {default:g}" + (" unless --minutes" if name == "steps" else ""))
    a.add_argument("--minutes", type=finite_float, help="wall-clock budget; with --steps, whichever ends first")
    a.add_argument("--seed", type=_seed, help="default 0")
    a.add_argument("--threads", type=_count, help="torch CPU threads (default: torch's choice)")
    a.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    a.add_argument("--out", required=True, help="checkpoint path, FILE.safetensors (a .json is written beside)")

    for name, helptext, steps in (("sample", "generate images from a checkpoint", 50),
                                  ("evaluate", "sample, then print quality metrics as JSON", 20)):
        s = sub.add_parser(name, help=helptext)
        s.add_argument("--checkpoint", required=True,
                       help="FILE.safetensors, or the name of a shipped checkpoint (e.g. mnist_cfg)")
        s.add_argument("--sampler", choices=SAMPLERS,
                       help="ddpm (all T steps), ddim, euler, heun (2 model calls a step), dpmpp2m (DPM-Solver++ "
                       "2M); stochastic: euler_ancestral, dpmpp2m_sde (DPM-Solver++ 2M SDE), edm (Karras et al.'s "
                       "Heun with churn, 2 calls a step); a flow-matching (linear-path) checkpoint takes euler or "
                       "heun; default: the one the checkpoint records, else ddim (linear path: euler)")
        s.add_argument("--steps", type=int, help=f"sampling steps (default: the checkpoint's recorded steps, else "
                       f"{steps}; DDPM always walks all T)")
        s.add_argument("--eta", type=finite_float, help="DDIM noise: 0 deterministic (default), 1 DDPM-like")
        s.add_argument("--spacing", choices=SPACINGS, help="which timesteps the steps visit (default leading)")
        s.add_argument("--karras", action="store_true", default=None,
                       help="euler/heun/dpmpp2m: Karras et al.'s noise levels, crowded near sigma = 0")
        s.add_argument("--final-sigma", choices=FINAL_SIGMAS,
                       help="euler/heun/dpmpp2m: end on the clean image (zero, default) or at sigma_min (t = 0)")
        s.add_argument("--shift", type=finite_float, help="linear-path checkpoints: time shift (Esser et al. 2024, "
                       "eq. 23), > 1 spends more steps at high noise (default 1: none)")
        s.add_argument("--guidance", type=finite_float, help="classifier-free guidance scale s (conditional models; "
                       "default: the scale the checkpoint records, 1 = unguided)")
        s.add_argument("--guidance-interval", type=_interval, metavar="LO,HI",
                       help="guide only at noise levels sigma in [LO, HI] (Kynkaanniemi et al. 2024), plain "
                       "conditional outside; e.g. 0.3,5; HI may be inf")
        s.add_argument("--churn", type=finite_float, help="edm: S_churn, the fresh noise before each step "
                       "(Karras et al. 2022, Alg. 2; default 0 = Heun)")
        s.add_argument("--clip", action="store_true", help="clip each predicted x_0 to [-1, 1]")
        s.add_argument("--no-amp", action="store_true",
                       help="float32 only (default: bf16 autocast in the network on GPUs and CPUs with native bf16)")
        if name == "sample":
            g = s.add_mutually_exclusive_group()
            g.add_argument("--labels", type=_integers, help="comma-separated class indices, one per image")
            g.add_argument("--per-class", type=_count, help="K images of every class")
            g.add_argument("--prompt", help='text models: a prompt in words, e.g. "a thick seven"')
        s.add_argument("--num", type=_count, help="number of images (default: 16 for sample; 1000 for evaluate, "
                       "or as many as the shipped real features give a floor for: fewer for CIFAR-10)")
        s.add_argument("--seed", type=_seed, default=0)
        s.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
        if name == "sample":
            s.add_argument("--out", required=True, help="FILE.npz (uint8 images + labels) or FILE.png (grid)")
        s.set_defaults(default_steps=steps)

    e = sub.add_parser("edit", help="inpaint (--mask) or redraw (--strength) your images with a checkpoint")
    e.add_argument("--checkpoint", required=True, help="a generator: FILE.safetensors or a shipped name (mnist_cfg)")
    e.add_argument("--images", required=True, help="FILE.npz holding `images`: uint8, (N, H, W), (N, C, H, W) "
                   "or (N, H, W, C) as `sample` writes them")
    g = e.add_mutually_exclusive_group(required=True)
    g.add_argument("--mask", help="inpainting (RePaint): FILE.npz holding `mask`, bool or 0/1 uint8, (H, W) for "
                   "all images or (N, H, W); 1 = keep, 0 = generate")
    g.add_argument("--strength", type=finite_float, help="image-to-image (SDEdit): how far towards noise to go "
                   "before redrawing, in (0, 1]; 0.3 cleans up, 1 draws anew")
    cond = e.add_mutually_exclusive_group()
    cond.add_argument("--labels", type=_integers, help="the class to complete towards: one for all images or "
                      "one per image")
    cond.add_argument("--prompt", help='text models: a prompt in words for all images, e.g. "a thick seven"')
    e.add_argument("--guidance", type=finite_float, help="classifier-free guidance scale (default: the scale the "
                   "checkpoint records, 1 = unguided)")
    e.add_argument("--steps", type=_count, help=f"denoising steps (default {EDIT_DEFAULTS['steps']}; "
                   "image-to-image walks about strength x steps)")
    e.add_argument("--jumps", type=_integer, help=f"inpainting: RePaint's resampling jumps, 0 for none "
                   f"(default {EDIT_DEFAULTS['jumps']})")
    e.add_argument("--jump-length", type=_count, help=f"inpainting: steps per jump (default "
                   f"{EDIT_DEFAULTS['jump_length']})")
    e.add_argument("--seed", type=_seed, default=0)
    e.add_argument("--device", help="cpu, cuda, cuda:N or mps (default: the best available)")
    e.add_argument("--out", required=True, help="FILE.npz (uint8 images + labels, as `sample`) or FILE.png (grid)")

    sub.add_parser("bench", help="training and sampling speed against this machine's measured ceiling "
                   "(the best of a large matmul and a large convolution)")

    d = sub.add_parser("download", help="download a full dataset (needs internet)")
    d.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    d.add_argument("--root", help="data root (default $DIFFUSION_LAB_DATA or ~/.cache/diffusion_lab/data)")
    return p


# --------------------------------------------------------------------------- the commands


def _check_out_folder(out) -> None:
    """Before any work: --out's folder must be a folder (or creatable) and writable."""
    parent = Path(out).parent
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                raise UsageError(f"--out {out}: {p} is a file, not a folder; choose another --out.")
            if p == parent and not os.access(p, os.W_OK):
                raise UsageError(f"--out {out}: the folder {p} is not writable; choose another --out.")
            break


def cmd_train(a) -> None:
    import torch

    world_size()  # a launcher's WORLD_SIZE that is not a number fails now, before any work

    from .checkpoints import read_config
    from .training import saved_settings, train

    given = {f.name: getattr(a, f.name) for f in dataclasses.fields(TrainConfig) if hasattr(a, f.name)}
    if given.get("model") == "autoencoder":  # its recipe and flags differ: it has a command of its own
        raise UsageError("--model autoencoder is not a noise predictor: train it with "
                         "`python -m diffusion_lab train-autoencoder --out FILE.safetensors`.")
    if given.get("autoencoder"):  # a shipped name works as for --checkpoint; the file must be an autoencoder
        path = checkpoint_argument(given["autoencoder"])
        ae_config = read_config(path)
        if ae_config.get("model", {}).get("name") != "autoencoder" or "latent_shape" not in ae_config:
            raise UsageError(f"--autoencoder {given['autoencoder']} is not an autoencoder checkpoint: give one "
                             "written by `python -m diffusion_lab train-autoencoder`, e.g. --autoencoder mnist_ae.")
        given["autoencoder"] = str(path)  # TrainConfig picks the U-Net's levels for its latents
    if "minutes" in given and "steps" not in given:
        given["steps"] = None  # --minutes alone: no step limit
    cfg = TrainConfig(**given)
    cfg.validate()
    checkpoint_paths(a.out)
    _check_out_folder(a.out)
    device = pick_device(a.device)
    if a.resume:
        saved = saved_settings(read_config(a.out))
        for name, value in given.items():
            if name not in ("steps", "minutes") and saved.get(name) != value:
                flag = _flags(next(f for f in dataclasses.fields(TrainConfig) if f.name == name))[-1]
                raise UsageError(f"{flag} {value} differs from the {saved.get(name)} that {a.out} was trained "
                                 "with; --resume continues with the saved settings (drop the flag, or train anew).")
    if a.threads:
        torch.set_num_threads(a.threads)
    r = train(cfg, out=a.out, resume=a.resume, device=device)
    if not is_main_process():  # under a launcher the main process speaks for all
        return
    tail = r.losses[-100:]
    print(json.dumps({
        "checkpoint": str(r.checkpoint), "steps": r.step, "seconds": round(r.seconds, 1),
        "processes": world_size(), "images_per_second": round(r.images_per_second, 1),
        "final_loss_mean_100": round(sum(tail) / max(1, len(tail)), 5),
    }))


def checkpoint_argument(text: str) -> Path:
    """--checkpoint: a path, or the bare name of a shipped checkpoint (mnist_cfg), which also works
    from an installed package."""
    path = Path(text)
    if checkpoint_paths(path)[1].exists() or path.name != text or path.suffix:
        return path  # a file, or a path: load_checkpoint says what is wrong with it
    return pretrained_path(text)  # a bare name: a shipped one, or an error listing those there are


def use_recorded_sampling(a, config, conditioned: bool) -> str:
    """Fill --sampler, --steps and --guidance the user left out from the checkpoint's recorded settings
    (checkpoints.recorded_sampling), as a diffusers pipeline defaults to a guided scale. Returns the
    line that says what was used, printed once every check has passed ("" when nothing was filled).
    Guidance is filled only when there is a condition to guide towards."""
    from .checkpoints import recorded_sampling
    from .samplers import PATH_SAMPLERS

    recorded, used = recorded_sampling(config), []
    if a.sampler is None:
        a.sampler = recorded.get("sampler", PATH_SAMPLERS[config["model"]["kwargs"].get("path", "vp")][0])
        if "sampler" in recorded:
            used.append(f"--sampler {a.sampler}")
    if a.steps is None and a.sampler == recorded.get("sampler") and "steps" in recorded and a.sampler != "ddpm":
        a.steps = recorded["steps"]
        used.append(f"--steps {a.steps}")
    if a.guidance is None and conditioned and "guidance" in recorded:
        a.guidance = recorded["guidance"]
        used.append(f"--guidance {a.guidance:g}")
    return (f"using the checkpoint's recorded {' '.join(used)} (give the flag to change it; --guidance 1 "
            "samples unguided)") if used else ""


def sampling_config(a, model) -> SamplingConfig:
    """The samplers.SamplingConfig these flags ask for. A flag the sampler has no use for is refused
    with the reason samplers.ONLY_FOR gives (the one place that says which option goes with which)."""
    if not hasattr(model, "num_classes"):  # an autoencoder decodes latents; it generates nothing itself
        raise UsageError(f"--checkpoint {a.checkpoint} is an autoencoder, not a generator: give a generator "
                         "checkpoint, e.g. --checkpoint mnist_latent (latent diffusion decoded by it).")
    extra = [name for name, (samplers, _) in ONLY_FOR.items()
             if a.sampler not in samplers and getattr(a, name, None) is not None]
    if extra:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in extra)
        verb = "do" if len(extra) > 1 else "does"
        raise UsageError(f"{flags} {verb} not apply to {a.sampler}: {ONLY_FOR[extra[0]][1]}.")
    unconditional = model.num_classes is None and getattr(model, "text_encoder", None) is None
    for flag, value in (("--guidance", a.guidance), ("--guidance-interval", a.guidance_interval)):
        if value is not None and unconditional:
            raise UsageError(f"{flag} needs a class-conditional checkpoint; this one is unconditional.")
    if a.guidance_interval is not None and a.guidance is None:
        raise UsageError("--guidance-interval limits guidance: give --guidance too, e.g. --guidance 3.")
    given = {name: getattr(a, name) for name in ("steps", "eta", "spacing", "karras", "final_sigma", "shift",
                                                 "churn", "guidance_interval")
             if getattr(a, name, None) is not None}
    if a.sampler != "ddpm":
        given.setdefault("steps", a.default_steps)
    try:
        return SamplingConfig(sampler=a.sampler, clip_x0=a.clip, guidance=a.guidance, amp=not a.no_amp,
                              **given).for_path(path_of(model))
    except ValueError as err:
        raise UsageError(f"--checkpoint {a.checkpoint}: {err}" if "path" in str(err) else str(err)) from None


def _label_flags(a, sep: str) -> str:
    return "--labels" if getattr(a, "command", None) == "edit" else f"--labels{sep}--per-class"


def sample_labels(a, num_classes, text=False):
    """The label per image from --labels / --per-class, or None for unconditional sampling."""
    if a.labels is None and a.per_class is None:
        if a.guidance is not None:
            raise UsageError(f"--guidance needs labels to guide towards: add {_label_flags(a, ' or ')}.")
        return None
    if num_classes is None:
        raise UsageError(f"this checkpoint is unconditional: drop {_label_flags(a, '/')}.")
    if a.labels is not None:
        bad = [v for v in a.labels if not 0 <= v < num_classes]
        if bad and text:
            raise UsageError(f"--labels {bad[0]} is not a class of this text model: use 0..{num_classes - 1}, "
                             "or --prompt \"a thick seven\".")
        if bad:
            raise UsageError(f"--labels {bad[0]} is not a class of this checkpoint: use 0..{num_classes - 1} "
                             f"({num_classes} is the null label; for unconditional images drop --labels).")
        labels = a.labels
    else:
        labels = [c for c in range(num_classes) for _ in range(a.per_class)]
    if a.num is not None and a.num != len(labels):
        raise UsageError(f"--num {a.num} disagrees with the {len(labels)} labels given.")
    return labels


def sample_condition(a, model, config):
    """(y for sample(), the label of each image for the .npz): labels, or a text model's prompt tokens.

    A text model takes --prompt (label: the class the prompt names, else -1) or, with --labels /
    --per-class, each class's canonical prompt ("a seven")."""
    from .text import class_prompts, prompt_class, tokenizer_of

    tokenizer = tokenizer_of(config)
    if a.prompt is not None:
        if tokenizer is None:
            raise UsageError("--prompt needs a text-conditioned checkpoint (trained with --text); this one is "
                             + ("class-conditional: use --labels or --per-class." if model.num_classes
                                else "unconditional."))
        if not any(ch.isalnum() for ch in a.prompt):  # it would encode to the empty (null) prompt
            raise UsageError(f"--prompt {a.prompt!r} has no words: give one in words, e.g. \"a thick seven\", "
                             "or drop --prompt for unconditional images.")
        num = a.num or 16
        return tokenizer.encode(a.prompt).expand(num, -1), [prompt_class(a.prompt, config["dataset"])] * num
    labels = sample_labels(a, len(config["classes"] or []) or None if tokenizer is not None else model.num_classes,
                           text=tokenizer is not None)
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

    out = Path(a.out)
    if out.suffix not in (".npz", ".png"):
        raise UsageError(f"--out must end in .npz or .png, got {out.name!r}.")
    _check_out_folder(out)
    path, device = checkpoint_argument(a.checkpoint), pick_device(a.device)
    model, schedule, config = load_checkpoint(path, device=device)
    note = use_recorded_sampling(a, config, conditioned=any(v is not None for v in (a.labels, a.per_class, a.prompt)))
    settings = sampling_config(a, model)
    ae = autoencoder_of(path, config, device=device)
    if ae is not None and a.clip:
        raise UsageError(LATENT_CLIP)
    y, labels = sample_condition(a, model, config)
    if y is None and a.guidance is not None:
        raise UsageError("--guidance needs something to guide towards: add --labels, --per-class or --prompt.")
    num = len(labels)
    if note:
        print(note, file=sys.stderr)
    x = sample(model, schedule, num, settings, y=y, seed=a.seed)
    if ae is not None:  # latent diffusion: the sampler made latents; the decoder makes them images
        import torch

        with torch.no_grad():
            x = ae.decode(x)
    write_images(out, x, labels, nrow=a.per_class)


def write_images(out: Path, x, labels, nrow=None) -> None:
    """--out: an .npz of uint8 images (N, H, W, C) and labels, or a .png grid; written whole or not at all."""
    if out.suffix == ".npz":
        lab = np.asarray(labels, dtype=np.int64)

        def write(tmp):
            with open(tmp, "wb") as f:  # a file object: savez would append ".npz" to a path
                np.savez_compressed(f, images=to_uint8(x), labels=lab)
    else:
        from torchvision.utils import save_image

        nrow = nrow or int(np.ceil(np.sqrt(len(x))))

        def write(tmp):  # [-1, 1] -> [0, 1], one grid, white between images
            save_image(((x.float() + 1) / 2).clamp(0, 1), tmp, nrow=nrow, padding=2, pad_value=1.0, format="png")
    atomic_write(out, write)
    print(f"wrote {len(x)} images to {out}")


def _read_npz(flag: str, path: str, key: str) -> np.ndarray:
    """One array of an .npz file the user gave, or a one-line error that names the file and the fix."""
    p = Path(path)
    if p.suffix != ".npz":
        raise UsageError(f"{flag} {path}: expected an .npz file (numpy.savez) holding `{key}`.")
    if not p.is_file():
        raise UsageError(f"{flag} {path}: no such file.")
    try:
        with np.load(p, allow_pickle=False) as f:  # no pickles: loading runs no code
            if key not in f:
                raise UsageError(f"{flag} {path} holds {', '.join(f.files) or 'nothing'}, not `{key}`: save it "
                                 f"with numpy.savez(file, {key}=...).")
            return f[key]
    except (OSError, ValueError) as err:
        if isinstance(err, UsageError):
            raise
        raise UsageError(f"{flag} {path} is not a readable .npz file ({err}).") from None


def edit_images(array: np.ndarray, channels: int, size: int, path: str):
    """--images: uint8 (N, H, W), (N, C, H, W) or (N, H, W, C) -> floats (N, C, H, W) in [-1, 1]."""
    from .data import from_uint8

    if array.dtype != np.uint8:
        raise UsageError(f"--images {path}: images must be uint8 pixels 0..255, got {array.dtype}; convert with "
                         "numpy's astype(np.uint8) after scaling to 0..255.")
    want = (f"(N, {size}, {size}), " if channels == 1 else "") + \
        f"(N, {channels}, {size}, {size}) or (N, {size}, {size}, {channels})"
    shape = array.shape
    if array.ndim == 3 and channels == 1 and shape[1:] == (size, size):
        return from_uint8(array)
    if array.ndim == 4 and shape[1:] == (channels, size, size):
        return from_uint8(np.ascontiguousarray(np.moveaxis(array, 1, -1)))
    if array.ndim == 4 and shape[1:] == (size, size, channels):
        return from_uint8(array)
    raise UsageError(f"--images {path}: images of shape {shape} do not fit this checkpoint, which makes "
                     f"{channels}x{size}x{size} images: give {want}.")


def edit_mask(array: np.ndarray, n: int, size: int, path: str) -> np.ndarray:
    """--mask: bool or 0/1 uint8, (H, W) or (N, H, W) -> float32 of 0 (generate) and 1 (keep)."""
    if array.dtype != np.bool_ and not (array.dtype == np.uint8 and np.isin(array, (0, 1)).all()):
        raise UsageError(f"--mask {path}: the mask must be bool or uint8 of 0 and 1 (1 = keep, 0 = generate), "
                         f"got {array.dtype}" + ("" if array.dtype != np.uint8 else " with other values") + ".")
    if array.shape not in ((size, size), (n, size, size)):
        raise UsageError(f"--mask {path}: a mask of shape {array.shape} does not fit {n} images of {size}x{size}: "
                         f"give ({size}, {size}) for all images or ({n}, {size}, {size}).")
    m = array.astype(np.float32)
    if (m.reshape(-1, size * size) == 1).all(axis=1).any():
        raise UsageError(f"--mask {path} keeps every pixel of an image, so there is nothing to inpaint: mark the "
                         "pixels to generate with 0 (or use --strength to redraw the whole image).")
    return m


def cmd_edit(a) -> None:
    import torch

    from .autoencoder import autoencoder_of
    from .checkpoints import load_checkpoint, recorded_sampling
    from .edit import check_strength, image_to_image, inpaint, repaint_positions

    out = Path(a.out)
    if out.suffix not in (".npz", ".png"):
        raise UsageError(f"--out must end in .npz or .png, got {out.name!r}.")
    _check_out_folder(out)
    if a.strength is not None:
        try:
            check_strength(a.strength)
        except ValueError as err:
            raise UsageError(f"--strength: {err}") from None
        for flag, value in (("--jumps", a.jumps), ("--jump-length", a.jump_length)):
            if value is not None:
                raise UsageError(f"{flag} is inpainting's (with --mask); image-to-image (--strength) has no jumps.")
    steps = a.steps or EDIT_DEFAULTS["steps"]
    jumps = EDIT_DEFAULTS["jumps"] if a.jumps is None else a.jumps
    jump_length = a.jump_length or EDIT_DEFAULTS["jump_length"]
    if a.mask is not None:
        try:
            repaint_positions(steps, jumps, jump_length)  # the walk's own checks, before any work
        except ValueError as err:
            raise UsageError(f"--{str(err).replace('jump_length', 'jump-length')}") from None
    path, device = checkpoint_argument(a.checkpoint), pick_device(a.device)
    model, schedule, config = load_checkpoint(path, device=device)
    if not hasattr(model, "num_classes"):
        raise UsageError(f"--checkpoint {a.checkpoint} is an autoencoder, not a generator: give a generator "
                         "checkpoint, e.g. --checkpoint mnist_cfg (or mnist_latent, which edits through it).")
    ae = autoencoder_of(path, config, device=device)
    pixels = ae if ae is not None else model
    images = edit_images(_read_npz("--images", a.images, "images"), pixels.in_channels, pixels.image_size, a.images)
    n = len(images)
    a.num, a.per_class = n, None
    if a.labels is not None and len(a.labels) == 1:
        a.labels = a.labels * n  # one class for every image
    if a.labels is not None and len(a.labels) != n:
        raise UsageError(f"--labels gives {len(a.labels)} classes for {n} images: give one for all or one per image.")
    mask = None
    if a.mask is not None:
        mask = edit_mask(_read_npz("--mask", a.mask, "mask"), n, pixels.image_size, a.mask)
    conditioned = a.labels is not None or a.prompt is not None
    note = ""
    if a.guidance is None and conditioned and "guidance" in recorded_sampling(config):
        a.guidance = recorded_sampling(config)["guidance"]
        note = (f"using the checkpoint's recorded --guidance {a.guidance:g} (give the flag to change it; "
                "--guidance 1 edits unguided)")
    y, labels = sample_condition(a, model, config)
    if y is None and a.guidance is not None:
        raise UsageError("--guidance needs something to guide towards: add --labels or --prompt.")
    if note:
        print(note, file=sys.stderr)
    images = images.to(device)
    if isinstance(y, list):
        y = torch.tensor(y, device=device)
    elif y is not None:
        y = y.to(device)
    if mask is not None:
        x = inpaint(model, schedule, images, torch.from_numpy(mask), y=y, guidance=a.guidance, steps=steps,
                    jumps=jumps, jump_length=jump_length, seed=a.seed, autoencoder=ae)
    else:
        x = image_to_image(model, schedule, images, a.strength, y=y, guidance=a.guidance, steps=steps, seed=a.seed,
                           autoencoder=ae)
    write_images(out, x, labels)


def cmd_evaluate(a) -> None:
    from .checkpoints import load_checkpoint
    from .evaluate import evaluate_checkpoint

    path, device = checkpoint_argument(a.checkpoint), pick_device(a.device)
    loaded = load_checkpoint(path, device=device)  # read once: the checks below and the evaluation share it
    model, _, config = loaded
    note = use_recorded_sampling(a, config, conditioned=True)  # evaluate asks a conditional model for every class
    settings = sampling_config(a, model)
    if note:
        print(note, file=sys.stderr)
    result = evaluate_checkpoint(path, device=device, loaded=loaded, config=settings, num=a.num, seed=a.seed,
                                 progress=True)
    print(json.dumps({"checkpoint": str(a.checkpoint), **result}))


def cmd_train_autoencoder(a) -> None:
    import torch

    from .autoencoder import train_autoencoder

    checkpoint_paths(a.out)
    _check_out_folder(a.out)
    given = {k: getattr(a, k) for k in ("latent_channels", "base_channels", "kl_weight", "batch_size", "lr", "seed")
             if getattr(a, k) is not None}
    steps = a.steps if (a.steps or a.minutes) else AutoencoderConfig.steps
    cfg = AutoencoderConfig(dataset=a.dataset, steps=steps, minutes=a.minutes, **given)
    cfg.validate()
    if a.threads:
        torch.set_num_threads(a.threads)
    _, result = train_autoencoder(cfg, out=a.out, device=pick_device(a.device))
    print(json.dumps(result))


def main(argv=None) -> int:
    try:
        a = _parser().parse_args(argv)
        if a.command == "train":
            cmd_train(a)
        elif a.command == "train-autoencoder":
            cmd_train_autoencoder(a)
        elif a.command == "sample":
            cmd_sample(a)
        elif a.command == "evaluate":
            cmd_evaluate(a)
        elif a.command == "edit":
            cmd_edit(a)
        elif a.command == "bench":
            from .bench import main as bench_main

            bench_main()
        elif a.command == "download":
            print(f"{a.dataset} is in {download_data(a.dataset, a.root)}")
    except (ValueError, CheckpointError, DataError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a file that cannot be written or read: say which, in one line
        where = err.filename2 or err.filename or ""  # os.replace(tmp, out): out is the one to name
        print(f"error: {err.strerror or err}: {where}".rstrip(": "), file=sys.stderr)
        return 2
    return 0
