"""Train the evaluation classifiers (diffusion_lab/classifier.py) on the full training sets and
ship them with their test accuracy and the test set's features (for Frechet distances offline).

    DIFFUSION_LAB_DATA=/path/with/MNIST/raw python scripts/train_classifiers.py mnist fashion_mnist

Needs the full official datasets under $DIFFUSION_LAB_DATA (torchvision layout). CIFAR-10 without
the full set: --subset FILE.npz (uint8 `x` (N, 32, 32, 3) and `y`, e.g. the first 4,000 official
training images) trains on all but the last --holdout images and measures and ships those:

    python scripts/train_classifiers.py cifar10 --subset cifar10_train_0-3999_lossless.npz --epochs 60
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from diffusion_lab.classifier import SmallCNN, classifier_paths, features_and_predictions
from diffusion_lab.data import ImageData, dataset_info, from_uint8, load_data


def train_one(name: str, epochs: int, seed: int = 0, subset: str | None = None, holdout: int = 1000) -> dict:
    torch.manual_seed(seed)
    if subset is None:
        train, test = load_data(name, "train"), load_data(name, "test")
        counts = dataset_info(name).full_counts
        if len(train) < counts["train"] or len(test) < counts["test"]:
            raise SystemExit(f"{name}: the full training and test sets are needed (got {len(train)}/{len(test)}).")
        test_what = "the full official test set"
    else:
        train, test, test_what = split_subset(name, subset, holdout)
    clf = SmallCNN(train.info.channels, train.info.size, train.info.num_classes)
    opt = torch.optim.AdamW(clf.parameters(), lr=2e-3, weight_decay=1e-4)
    steps = epochs * (len(train) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    clf.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(train), generator=g).split(128)[: len(train) // 128]:
            x = train.images[idx]
            shift = torch.randint(-2, 3, (2,), generator=g).tolist()  # small translations
            x = torch.roll(x, shifts=shift, dims=(2, 3))
            if train.info.channels == 3:  # colour photographs: left-right flips too (not for digits)
                x = torch.where(torch.rand(len(x), 1, 1, 1, generator=g) < 0.5, x.flip(-1), x)
            loss = F.cross_entropy(clf(x), train.labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    seconds = time.perf_counter() - t0
    feats, preds, _ = features_and_predictions(clf, test.images)
    acc = float((preds == test.labels).float().mean())
    weights, info_path, feats_path = classifier_paths(name)
    save_file({k: v.contiguous() for k, v in clf.state_dict().items()}, str(weights))
    save_file({"features": feats.half().contiguous(), "labels": test.labels.to(torch.uint8)}, str(feats_path))
    info = {
        "dataset": name, "in_channels": train.info.channels, "image_size": train.info.size,
        "num_classes": train.info.num_classes, "features": feats.shape[1], "test_accuracy": round(acc, 4),
        "epochs": epochs, "seed": seed, "train_seconds": round(seconds, 1), "threads": torch.get_num_threads(),
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "command": f"python scripts/train_classifiers.py {name} --epochs {epochs}"
        + (f" --subset {Path(subset).name} --holdout {holdout}" if subset else ""),
        "train_images": train.source,
        "test_images": test.source,
        "test_features": f"{feats_path.name} (float16 penultimate features of {test_what})",
    }
    if subset:
        shipped = load_data(name, "test", verbose=False)  # the 20 official test images shipped offline
        info["official_test_accuracy"] = {
            "images": len(shipped),
            "accuracy": round(float((features_and_predictions(clf, shipped.images)[1] == shipped.labels)
                                    .float().mean()), 4)}
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return info


def split_subset(name: str, path: str, holdout: int):
    """(train, held-out, description) from an npz of uint8 images `x` and labels `y`: all but the last
    `holdout` images to train on, the last `holdout` as the test set (never trained on)."""
    info = dataset_info(name)
    with np.load(path) as f:
        x, y = from_uint8(f["x"]), torch.as_tensor(f["y"].astype(np.int64))
    if len(x) <= holdout:
        raise SystemExit(f"{path} holds {len(x)} images; need more than --holdout {holdout}.")
    n = len(x) - holdout
    what = f"{info.title} train images {n}..{len(x) - 1} of {Path(path).name}, held out from the classifier's training"
    train = ImageData(x[:n], y[:n], info, "train", f"{info.title} train images 0..{n - 1} of {Path(path).name}")
    test = ImageData(x[n:], y[n:], info, "test", what)
    return train, test, what


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("datasets", nargs="+")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--subset", help="an npz of training images (x, y) to use instead of the full sets")
    p.add_argument("--holdout", type=int, default=1000, help="with --subset: the last N images, held out")
    a = p.parse_args()
    for name in a.datasets:
        print(json.dumps(train_one(name, a.epochs, subset=a.subset, holdout=a.holdout)))
