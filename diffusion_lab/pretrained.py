"""The checkpoints the course ships in data/checkpoints (see its README for the model cards)."""

from __future__ import annotations

from pathlib import Path

from .checkpoints import CheckpointError, checkpoint_paths, load_checkpoint

PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "data" / "checkpoints"


def pretrained_path(name: str) -> Path:
    """Path of a shipped checkpoint by name, e.g. "mnist_cfg" -> data/checkpoints/mnist_cfg.safetensors."""
    weights, _ = checkpoint_paths(PRETRAINED_DIR / name)
    if not weights.exists():
        have = sorted(p.stem for p in PRETRAINED_DIR.glob("*.safetensors") if ".train" not in p.name)
        raise CheckpointError(
            f"no shipped checkpoint {name!r} in {PRETRAINED_DIR}; available: {', '.join(have) or 'none'}. "
            "Train one with `python -m diffusion_lab train` (see data/checkpoints/README.md)."
        )
    return weights


def load_pretrained(name: str = "mnist_cfg", device=None):
    """(model, schedule, config) of a shipped checkpoint, on `device` (default CPU)."""
    return load_checkpoint(pretrained_path(name), device=device)
