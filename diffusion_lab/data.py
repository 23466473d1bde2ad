"""Images for the course: MNIST, Fashion-MNIST and CIFAR-10 as tensors in [-1, 1].

``load_data(name, split)`` returns an :class:`ImageData` holding the whole split in memory
(float32 images of shape (N, C, H, W) scaled to [-1, 1], int64 labels). It looks, in order, for

1. the full dataset in torchvision's layout under the data folder ($DIFFUSION_LAB_DATA, see
   :func:`diffusion_lab.settings.data_root`);
2. only if ``download=True``: a torchvision download into the data folder;
3. the small offline subset shipped with the course in ``data/datasets/``.

If none is there it raises :class:`DataNotFoundError`, saying what is missing and how to fix it; a
damaged file raises :class:`DataError` naming the file and the fix. Without ``download=True``
nothing here touches the network.

Example::

    from diffusion_lab.data import load_data
    data = load_data("mnist")                  # prints which data it used, and why
    x, y = data.images[:64], data.labels[:64]  # (64, 1, 28, 28) in [-1, 1], (64,)
"""

from __future__ import annotations

import gzip
import os
import pickle
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .settings import DATA_ENV, data_root, missing_shipped_data, shipped_data, shown_path

__all__ = [
    "DATASETS",
    "DataError",
    "DataNotFoundError",
    "DatasetInfo",
    "ImageData",
    "dataset_info",
    "download_data",
    "from_uint8",
    "load_data",
    "to_uint8",
]

SHIPPED_DIR = shipped_data("datasets")
SPLITS = ("train", "test")


class DataError(RuntimeError):
    """A dataset file is damaged or unreadable (the message names the file and the fix)."""


class DataNotFoundError(DataError):
    """Neither the full dataset nor a shipped subset is available for the requested split."""


@dataclass(frozen=True)
class DatasetInfo:
    """Everything the course knows about a dataset: what a model needs (image shape, classes) and
    where the images live (torchvision's names and folder, the offline files shipped here)."""

    name: str
    title: str  # for messages: "Fashion-MNIST"
    channels: int
    size: int  # images are size x size pixels
    class_names: tuple[str, ...]
    torchvision_class: str
    folder: str  # torchvision's folder under the data root
    full_counts: dict[str, int]
    shipped: dict[str, str] = field(default_factory=dict)  # split -> file in SHIPPED_DIR

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist", "MNIST", 1, 28, tuple(str(d) for d in range(10)),
        "MNIST", "MNIST/raw", {"train": 60_000, "test": 10_000},
        {"train": "mnist_train_10k.npz"},
    ),
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", "Fashion-MNIST", 1, 28,
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        "FashionMNIST", "FashionMNIST/raw", {"train": 60_000, "test": 10_000},
        {"train": "fashion_mnist_train_10k.npz", "test": "fashion_mnist_test_5k.npz"},
    ),
    "cifar10": DatasetInfo(
        "cifar10", "CIFAR-10", 3, 32,
        ("airplane", "automobile", "bird", "cat", "deer",
         "dog", "frog", "horse", "ship", "truck"),
        "CIFAR10", "cifar-10-batches-py", {"train": 50_000, "test": 10_000},
        {"test": "cifar10_test_20.npz"},
    ),
}



@dataclass
class ImageData:
    """One split of a dataset, entirely in memory."""

    images: torch.Tensor  # float32 (N, C, H, W) in [-1, 1]
    labels: torch.Tensor  # int64 (N,)
    info: DatasetInfo
    split: str
    source: str  # one sentence: which data this is and why it was chosen (printed; may name local folders)
    record: str = ""  # the same without this machine's folders: what a checkpoint records

    def __post_init__(self):
        self.record = self.record or self.source

    def __len__(self) -> int:
        return len(self.labels)


# --------------------------------------------------------------------------- small helpers


def dataset_info(name: str) -> DatasetInfo:
    """The :class:`DatasetInfo` of ``name``; a ValueError lists the known names otherwise."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        known = ", ".join(repr(k) for k in DATASETS)
        raise ValueError(f"unknown dataset {name!r}; known datasets: {known}") from None


def to_uint8(images: torch.Tensor | np.ndarray) -> np.ndarray:
    """Float images in [-1, 1], (N, C, H, W) or (C, H, W) -> uint8 numpy (N, H, W, C) or (H, W, C).

    Values outside [-1, 1] (a model's samples can overshoot) are clipped.
    """
    x = images.detach().cpu().float().numpy() if torch.is_tensor(images) else np.asarray(images)
    if x.ndim not in (3, 4):
        raise ValueError(f"expected (N, C, H, W) or (C, H, W) images, got shape {x.shape}")
    x = np.clip(np.rint((x.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(x, -3, -1))  # channels last


def from_uint8(images: torch.Tensor | np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W) or (N, H, W, C) -> float32 tensor (N, C, H, W) in [-1, 1].

    The scaling is ``x / 127.5 - 1``, so 0 -> -1 and 255 -> 1; :func:`to_uint8` inverts it.
    """
    x = images if torch.is_tensor(images) else torch.tensor(np.asarray(images))
    if x.dtype != torch.uint8:
        raise ValueError(f"expected uint8 images, got {x.dtype}")
    if x.ndim == 3:
        x = x.unsqueeze(-1)  # grayscale: add the channel axis
    if x.ndim != 4:
        raise ValueError(f"expected (N, H, W) or (N, H, W, C) images, got shape {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0).contiguous()


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes (the (Fashion-)MNIST format), gzipped or not."""
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise ValueError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


# --------------------------------------------------------------------------- the full datasets


def _idx_files(folder: Path, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) IDX files of a split in a torchvision raw folder, or None."""
    prefix = "train" if split == "train" else "t10k"
    found = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        plain = folder / f"{prefix}-{kind}"
        gzipped = folder / f"{prefix}-{kind}.gz"
        if plain.is_file():
            found.append(plain)
        elif gzipped.is_file():
            found.append(gzipped)
        else:
            return None
    return found[0], found[1]


def _cifar_files_present(folder: Path, split: str) -> bool:
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    return all((folder / n).is_file() for n in names)


def _full_present(name: str, split: str, root: Path) -> bool:
    folder = root / DATASETS[name].folder
    if name == "cifar10":
        return _cifar_files_present(folder, split)
    return _idx_files(folder, split) is not None


def _load_full(name: str, split: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images (N, H, W[, 3]) and labels from the torchvision files under ``root``."""
    info = DATASETS[name]
    folder = root / info.folder
    try:
        return _read_full(name, split, root, folder)
    except (OSError, EOFError, ValueError, RuntimeError, pickle.UnpicklingError, zlib.error) as err:
        # truncated, not gzip, not IDX, a failed checksum (torchvision's CIFAR-10), ...
        raise DataError(
            f"the {info.title} {split} files in {folder} are damaged ({type(err).__name__}: {err}). Delete "
            f"{folder} and run `python -m diffusion_lab download --dataset {name}`, or point {DATA_ENV} at a "
            "good copy."
        ) from err


def _read_full(name: str, split: str, root: Path, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    if name == "cifar10":
        from torchvision.datasets import CIFAR10

        ds = CIFAR10(str(root), train=(split == "train"), download=False)
        return np.asarray(ds.data), np.asarray(ds.targets)
    # MNIST and Fashion-MNIST: read the IDX files directly. This also works when the folder
    # holds only the .gz files (torchvision would want to unpack them, which fails on a
    # read-only copy) or .gz files whose gzip headers differ from torchvision's checksums.
    images_path, labels_path = _idx_files(folder, split)
    images, labels = _read_idx(images_path), _read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"inconsistent IDX files in {folder}: {images.shape}, {labels.shape}")
    return images, labels


def download_data(name: str, root: str | os.PathLike | None = None) -> Path:
    """Download the full train and test sets of ``name`` with torchvision; return the folder.

    Needs internet (unless the files are already there). A failure raises :class:`DataError`
    saying what went wrong.
    """
    info = dataset_info(name)
    folder = data_root(root)
    import torchvision.datasets

    cls = getattr(torchvision.datasets, info.torchvision_class)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for train in (True, False):
            cls(str(folder), train=train, download=True)
    except Exception as err:  # no network, a full disk, a changed mirror: one line that says which
        reason = " ".join(str(err).split())[:200]
        raise DataError(f"could not download {info.title} into {folder}: {type(err).__name__}: {reason}. "
                        "It needs internet; or copy the torchvision files there yourself.") from err
    return folder


# --------------------------------------------------------------------------- load_data


def load_data(
    name: str,
    split: str = "train",
    root: str | os.PathLike | None = None,
    download: bool = False,
    limit: int | None = None,
    verbose: bool = True,
) -> ImageData:
    """Load one split of a dataset as float32 images in [-1, 1] plus int64 labels.

    Args:
        name: "mnist", "fashion_mnist" or "cifar10".
        split: "train" or "test".
        root: folder with the full datasets in torchvision's layout (see :func:`data_root`).
        download: if the full set is missing, try to download it (needs internet).
        limit: keep only the first ``limit`` images.
        verbose: print one line saying which data was used and why (also in ``.source``).

    Raises:
        ValueError: unknown name, bad split or bad limit.
        DataNotFoundError: neither the full set nor a shipped subset has this split.
    """
    info = dataset_info(name)
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    folder = data_root(root)
    full_count = info.full_counts[split]
    fix = (
        f"set {DATA_ENV} to a folder holding the torchvision files "
        f"({info.folder}/...), or run `python -m diffusion_lab download --dataset {name}` "
        "with internet"
    )

    found = _full_present(info.name, split, folder)
    downloaded = False
    why_not_full = f"full set not found under {shown_path(folder)}"
    if not found and download:
        try:
            download_data(info.name, folder)
        except Exception as error:  # no network, disk full, ...: fall back, and say why
            reason = " ".join(str(error).split())
            reason = reason if len(reason) <= 160 else reason[:160] + "..."
            why_not_full += f"; the download failed: {type(error).__name__}: {reason}"
        else:
            downloaded = True
            found = _full_present(info.name, split, folder)

    if found:
        images, labels = _load_full(info.name, split, folder)
        how = "just downloaded to" if downloaded else "found in"
        what = f"the full dataset {how} {shown_path(folder / info.folder)}"
        recorded = "the full dataset (torchvision's files)"
    else:
        shipped = info.shipped.get(split)
        path = SHIPPED_DIR / shipped if shipped else None
        if path is None:
            raise DataNotFoundError(
                f"No {info.title} {split} data: {why_not_full}, and the offline subset shipped with the "
                f"course has no {info.title} {split} split. To fix: {fix}."
            )
        if not path.is_file():
            raise DataNotFoundError(
                f"No {info.title} {split} data: {why_not_full}, and {missing_shipped_data(path)} Or: {fix}."
            )
        try:
            with np.load(path) as archive:
                images, labels = archive["images"], archive["labels"]
        except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zlib.error) as err:
            raise DataError(
                f"the shipped offline subset {path} is damaged ({type(err).__name__}: {err}); restore it "
                f"with `git checkout -- {Path('data', 'datasets', shipped)}` in the clone, or reinstall."
            ) from err
        what = (
            f"the offline subset shipped in data/datasets ({why_not_full}; run "
            f"`python -m diffusion_lab download --dataset {name}` online for all {full_count:,})"
        )
        recorded = "the offline subset shipped in data/datasets"

    total = len(labels)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    count = f"{len(labels):,} images" if len(labels) == total else (
        f"the first {len(labels):,} of {total:,} images"
    )
    source = f"{info.title} {split}: {count} from {what}"
    if verbose:
        print(source)
    tensor_images = from_uint8(images)
    expected = (info.channels, info.size, info.size)
    if tuple(tensor_images.shape[1:]) != expected:
        raise ValueError(f"{info.title} images have shape {tuple(tensor_images.shape[1:])}, "
                         f"expected {expected}")
    return ImageData(
        images=tensor_images,
        labels=torch.as_tensor(np.asarray(labels, dtype=np.int64)),
        info=info,
        split=split,
        source=source,
        record=f"{info.title} {split}: {count} from {recorded}",
    )
