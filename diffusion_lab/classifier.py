"""A small CNN classifier per dataset, the yardstick for generated images (chapter 08).

Its penultimate layer (128 features) is the feature space of the Frechet distance, the way
FID uses Inception features; its predictions give class accuracy of conditional samples.
Trained by scripts/train_classifiers.py on the full training sets; shipped in data/checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from .checkpoints import PRETRAINED_DIR, CheckpointError
from .settings import missing_shipped_data

FEATURES = 128


class SmallCNN(nn.Module):
    def __init__(self, in_channels: int = 1, image_size: int = 28, num_classes: int = 10):
        super().__init__()
        self.in_channels, self.image_size = in_channels, image_size
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3),
            nn.Linear(64 * (image_size // 4) ** 2, FEATURES), nn.ReLU(),
        )
        self.head = nn.Linear(FEATURES, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (B, 128) of images in [-1, 1]."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@torch.no_grad()
def features_and_predictions(clf: SmallCNN, images: torch.Tensor, batch: int = 500):
    """(features (N, 128), predicted class (N,), max softmax prob (N,)) in eval mode, float32."""
    clf.eval()
    feats, preds, conf = [], [], []
    for i in range(0, len(images), batch):
        f = clf.features(images[i : i + batch].float())
        p = F.softmax(clf.head(f), dim=1)
        feats.append(f)
        c, k = p.max(dim=1)
        preds.append(k)
        conf.append(c)
    return torch.cat(feats), torch.cat(preds), torch.cat(conf)


def classifier_paths(dataset: str, root: Path | None = None) -> tuple[Path, Path, Path]:
    root = PRETRAINED_DIR if root is None else root
    stem = root / f"classifier_{dataset}"
    feats = root / f"classifier_{dataset}_test_features.safetensors"
    return stem.with_suffix(".safetensors"), stem.with_suffix(".json"), feats


def load_classifier(dataset: str, root: Path | None = None):
    """(classifier, info dict, test-set features (N, 128), test labels (N,)) for a dataset."""
    root = PRETRAINED_DIR if root is None else root
    weights, info_path, feats_path = classifier_paths(dataset, root)
    if not root.is_dir():
        raise CheckpointError(f"no evaluation classifiers: {missing_shipped_data(root)}")
    if not weights.exists():
        have = sorted(p.stem.removeprefix("classifier_") for p in root.glob("classifier_*.json"))
        raise CheckpointError(
            f"no evaluation classifier for {dataset!r} (have: {', '.join(have) or 'none'}); "
            "train one with `python scripts/train_classifiers.py`."
        )
    info = json.loads(info_path.read_text())
    clf = SmallCNN(info["in_channels"], info["image_size"], info["num_classes"])
    clf.load_state_dict(load_file(str(weights)))
    test = load_file(str(feats_path))
    return clf.eval(), info, test["features"].float(), test["labels"].long()
