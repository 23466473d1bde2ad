"""Evaluate a checkpoint: sample, then measure with the dataset's classifier (metrics.py).

    python -m diffusion_lab evaluate --checkpoint data/checkpoints/mnist_cfg.safetensors \
        --sampler ddim --steps 20 --guidance 3 --num 1000
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import torch

from .autoencoder import autoencoder_of
from .checkpoints import load_checkpoint
from .classifier import features_and_predictions, load_classifier
from .metrics import (
    class_accuracy,
    class_entropy,
    frechet_distance,
    frechet_half_std,
    precision_recall,
    within_class_spread,
)
from .paths import path_of
from .samplers import SamplingConfig, sample
from .solvers import SIGMA_SAMPLERS, model_calls
from .text import class_prompts, tokenizer_of


def real_split(test_feats: torch.Tensor, num: int, test_labels: torch.Tensor | None = None, seed: int = 0):
    """Split the test features into halves A and B; return (A_num, B): num held-out real images that
    stand in for a perfect generator, and the reference set B.

    With test_labels, A_num takes the classes in turn (0, 1, ..., 9, 0, ...), like the class-balanced
    labels a conditional evaluation samples; otherwise it is the first num of A.
    """
    perm = torch.randperm(len(test_feats), generator=torch.Generator().manual_seed(seed))
    half = len(perm) // 2
    if num > half:
        raise ValueError(f"num={num} exceeds half the test set ({half}); use --num <= {half}.")
    a_idx, b_idx = perm[:half], perm[half:]
    if test_labels is None:
        chosen = a_idx[:num]
    else:
        classes = int(test_labels.max()) + 1
        per_class = [a_idx[test_labels[a_idx] == c] for c in range(classes)]
        rarest = min(range(classes), key=lambda c: len(per_class[c]))
        if len(per_class[rarest]) < -(-num // classes):  # a small reference set (CIFAR-10's) runs out first
            raise ValueError(f"num={num} class-balanced needs {-(-num // classes)} of each class from half the "
                             f"test set, which has {len(per_class[rarest])} of class {rarest}; use --num <= "
                             f"{classes * len(per_class[rarest])}.")
        chosen = torch.stack([per_class[i % classes][i // classes] for i in range(num)])
    return test_feats[chosen], test_feats[b_idx]


def largest_num(test_labels: torch.Tensor, conditional: bool, seed: int = 0) -> int:
    """The most samples real_floor can compare at: half the reference set, or, class-balanced, ten times
    the scarcest class in that half."""
    perm = torch.randperm(len(test_labels), generator=torch.Generator().manual_seed(seed))[: len(test_labels) // 2]
    if not conditional:
        return len(perm)
    return int(test_labels.max() + 1) * int(torch.bincount(test_labels[perm]).min())


def real_floor(test_feats: torch.Tensor, num: int, test_labels: torch.Tensor | None = None, seed: int = 0):
    """(FD(A_num, B), B): the distance a perfect generator would get at this sample count (real_split)."""
    held_out, reference = real_split(test_feats, num, test_labels, seed)
    return frechet_distance(held_out, reference), reference


FD_SPREAD = "half-sampling"  # how fd_std was measured (metrics.frechet_half_std)
EVALUATE_STEPS = 20  # evaluate's default budget (sample()'s is samplers.DEFAULT_STEPS)


def evaluate_model(model, schedule, dataset: str, config: SamplingConfig | None = None, *, num=None, k=3, seed=0,
                   batch=250, progress=False, condition=None, decode=None, **options) -> dict:
    """Sample `num` images (class-balanced when the model is conditional) and measure them. num=None:
    1000, or fewer where the shipped reference features cannot give a floor for 1000 (CIFAR-10).

    config (a samplers.SamplingConfig) and keyword options (sampler=, steps=, guidance=, ...) say how to
    sample, as for sample(); here amp defaults to on and a stepped sampler to EVALUATE_STEPS steps.
    amp: bf16 autocast in the network where the hardware has it natively (sample(amp=...)); the
    README shows it leaves FD unchanged within seed noise. Precision and recall use k-NN balls with
    k = `k` against `num` real reference images; "_real" entries are what held-out real images score.
    condition: labels (N,) -> what the model is conditioned on (a text model: the tokens of each
        class's prompt); its samples are then class-balanced too. decode: latents -> images, for a
        latent diffusion model (its autoencoder's decode; timed with the sampling).
    """
    path = path_of(model)
    cfg = replace(config or SamplingConfig(amp=True), **options).for_path(path)
    if cfg.steps is None and cfg.sampler != "ddpm":
        cfg = replace(cfg, steps=EVALUATE_STEPS)
    sampler, steps, guidance = cfg.sampler, cfg.num_steps, cfg.guidance
    clf, info, test_feats, test_labels = load_classifier(dataset)
    if num is None:
        num = min(1000, largest_num(test_labels, model.num_classes is not None or condition is not None))
    labels = None
    if model.num_classes is not None or condition is not None:
        labels = torch.arange(num) % info["num_classes"]
    balance = test_labels if labels is not None else None
    held_out, reference = real_split(test_feats, num, balance)
    # The floor's own spread: other disjoint draws of real images at this count.
    floors = torch.tensor([real_floor(test_feats, num, balance, seed=s)[0] for s in range(1, 21)])
    t0 = time.perf_counter()
    chunks = []
    for i in range(0, num, batch):
        y = labels[i : i + batch] if labels is not None else None
        y = condition(y) if condition is not None and y is not None else y
        n = min(batch, num - i)
        x = sample(model, schedule, n, cfg if y is not None else replace(cfg, guidance=None), y=y, seed=seed + i,
                   progress=progress)
        with torch.no_grad():
            chunks.append((decode(x) if decode is not None else x).cpu())
    seconds = time.perf_counter() - t0
    images = torch.cat(chunks)
    feats, preds, _ = features_and_predictions(clf, images)
    precision, recall = precision_recall(reference[:num], feats, k)
    precision_real, recall_real = precision_recall(reference[:num], held_out, k)
    result = {
        "num": num, "sampler": sampler, "steps": schedule.T if sampler == "ddpm" else steps,
        "nfe": model_calls(sampler, steps, schedule.T, cfg.final_sigma), "eta": cfg.eta, "guidance": guidance,
        "clip_x0": cfg.clip_x0, "amp": cfg.amp,
        "fd": round(frechet_distance(feats, reference), 3), "fd_std": round(frechet_half_std(feats, reference), 3),
        "fd_spread": FD_SPREAD,
        "fd_real_floor": round(frechet_distance(held_out, reference), 3),
        "fd_real_floor_std": round(float(floors.std()), 3),
        "precision": round(precision, 4), "recall": round(recall, 4),
        "precision_real": round(precision_real, 4), "recall_real": round(recall_real, 4),
        "class_entropy": round(class_entropy(preds, info["num_classes"]), 4),
        "sample_seconds": round(seconds, 1), "classifier_test_accuracy": info["test_accuracy"],
    }
    if path == "linear":  # flow matching: the times are paths.flow_grid's
        result |= {"path": path, "shift": cfg.shift}
    elif sampler in SIGMA_SAMPLERS or sampler == "ddim":
        result |= {"spacing": cfg.spacing}
    if path == "vp" and sampler in SIGMA_SAMPLERS:
        result |= {"karras": cfg.karras, "final_sigma": cfg.final_sigma}
    if sampler == "edm":
        result["churn"] = cfg.churn
    if cfg.guidance_interval is not None:  # [lo, hi] in sigma; an open end is written as null (JSON has no inf)
        result["guidance_interval"] = [v if math.isfinite(v) else None for v in cfg.guidance_interval]
    if labels is not None:
        result["class_accuracy"] = round(class_accuracy(preds, labels), 4)
        result["within_class_spread"] = round(within_class_spread(feats, labels), 3)
    else:
        result["within_class_spread"] = round(within_class_spread(feats, preds), 3)
    return result


LATENT_CLIP = ("--clip clips x_0 to the image range [-1, 1]; this model denoises latents, which are not "
               "images: drop --clip.")


def evaluate_checkpoint(path, device=None, loaded=None, **kwargs) -> dict:
    """evaluate_model on a checkpoint file, whatever it denoises: a latent model's samples are decoded
    by its autoencoder; a text model is asked for each class by its canonical prompt ("a seven").
    loaded: (model, schedule, config) when the caller has read `path` already (the command line)."""
    model, schedule, config = loaded or load_checkpoint(path, device=device)
    ae, tokenizer = autoencoder_of(path, config, device=device), tokenizer_of(config)
    settings = kwargs.get("config")
    if ae is not None and (kwargs.get("clip_x0") or (settings is not None and settings.clip_x0)):
        raise ValueError(LATENT_CLIP)
    condition = (lambda labels: class_prompts(labels, config["dataset"], tokenizer)) if tokenizer else None
    return evaluate_model(model, schedule, config["dataset"], condition=condition,
                          decode=ae.decode if ae is not None else None, **kwargs)
