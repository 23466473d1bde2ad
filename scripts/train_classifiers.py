"""Train the evaluation classifiers (diffusion_lab/classifier.py) on the full training sets and
ship them with their test accuracy and the test set's features (for Frechet distances offline).

    DIFFUSION_LAB_DATA=/path/with/MNIST/raw python scripts/train_classifiers.py mnist fashion_mnist

Needs the full official datasets under $DIFFUSION_LAB_DATA (torchvision layout).
"""

import argparse
import json
import os
import platform
import time

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from diffusion_lab.classifier import SmallCNN, classifier_paths, features_and_predictions
from diffusion_lab.data import load_data


def train_one(name: str, epochs: int, seed: int = 0) -> dict:
    torch.manual_seed(seed)
    train, test = load_data(name, "train"), load_data(name, "test")
    if len(train) < 60_000 or len(test) < 10_000:
        raise SystemExit(f"{name}: the full training and test sets are needed (got {len(train)}/{len(test)}).")
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
        "command": f"python scripts/train_classifiers.py {name} --epochs {epochs}",
        "test_features": feats_path.name + " (float16 penultimate features of the full official test set)",
    }
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    return info


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("datasets", nargs="+")
    p.add_argument("--epochs", type=int, default=3)
    a = p.parse_args()
    for name in a.datasets:
        print(json.dumps(train_one(name, a.epochs)))
