"""Tests of diffusion_lab.data: the shipped datasets, the manifest and the loader's choices."""

from __future__ import annotations

import gzip
import hashlib
import json
import socket

import numpy as np
import pytest
import torch

from diffusion_lab import data, settings
from diffusion_lab.data import (
    DATASETS,
    DataNotFoundError,
    dataset_info,
    from_uint8,
    load_data,
    to_uint8,
)
from diffusion_lab.settings import data_root

SHIPPED = [
    # name, split, count, (C, H, W), classes present
    ("mnist", "train", 10_000, (1, 28, 28), set(range(10))),
    ("fashion_mnist", "train", 10_000, (1, 28, 28), set(range(10))),
    ("fashion_mnist", "test", 5_000, (1, 28, 28), set(range(10))),
    # the first 20 CIFAR-10 test images hold no bird (2) and no deer (4)
    ("cifar10", "test", 20, (3, 32, 32), {0, 1, 3, 5, 6, 7, 8, 9}),
]


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("the data tests must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def empty_root(tmp_path, monkeypatch):
    """An empty data folder, also set as $DIFFUSION_LAB_DATA, so only shipped data is found."""
    root = tmp_path / "empty_data_root"
    root.mkdir()
    monkeypatch.setenv(settings.DATA_ENV, str(root))
    return root


def write_idx(path, array: np.ndarray, compress: bool) -> None:
    """Write a uint8 array in the IDX format of (Fashion-)MNIST."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if compress:
        path.with_name(path.name + ".gz").write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


# --------------------------------------------------------------------------- shipped data


@pytest.mark.parametrize("name, split, count, chw, classes", SHIPPED)
def test_shipped_sets(empty_root, name, split, count, chw, classes):
    d = load_data(name, split, verbose=False)
    assert len(d) == count
    assert d.images.shape == (count, *chw)
    assert d.images.dtype == torch.float32
    assert d.labels.shape == (count,) and d.labels.dtype == torch.int64
    assert d.images.min().item() == -1.0 and d.images.max().item() == 1.0
    assert d.labels.min().item() >= 0 and d.labels.max().item() < d.info.num_classes
    assert set(d.labels.tolist()) == classes
    assert d.info is DATASETS[name] and d.split == split
    assert "offline subset shipped in data/datasets" in d.source


def test_shipped_pixels_are_scaled_exactly(empty_root):
    raw = np.load(data.SHIPPED_DIR / "cifar10_test_20.npz")
    d = load_data("cifar10", "test", verbose=False)
    expected = torch.from_numpy(raw["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.equal(d.images, expected)
    assert d.labels.tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1, 0, 9, 5, 7, 9, 8, 5, 7, 8, 6]


def test_manifest_matches_shipped_files():
    manifest = json.loads((data.SHIPPED_DIR / "MANIFEST.json").read_text())
    files = manifest["files"]
    assert set(files) == {p.name for p in data.SHIPPED_DIR.glob("*.npz")}
    for filename, entry in files.items():
        blob = (data.SHIPPED_DIR / filename).read_bytes()
        assert hashlib.sha256(blob).hexdigest() == entry["sha256"], filename
        assert len(blob) == entry["bytes"]
        with np.load(data.SHIPPED_DIR / filename) as arrays:
            assert arrays["images"].dtype == np.uint8 and arrays["labels"].dtype == np.int64
            assert len(arrays["labels"]) == entry["count"]
            assert list(arrays["images"].shape) == entry["images_shape"]
        assert entry["license"] and entry["attribution"]
        src = entry["source"]
        assert src["registry"] and src["package"] and src["version"] and src["paths"]
        assert len(src["package_sha256"]) == 64


def test_every_shipped_split_is_in_the_manifest():
    manifest = json.loads((data.SHIPPED_DIR / "MANIFEST.json").read_text())
    for name, where in DATASETS.items():
        for split, filename in where.shipped.items():
            entry = manifest["files"][filename]
            assert (entry["dataset"], entry["split"]) == (name, split)


def test_limit_takes_the_first_images(empty_root, capsys):
    full = load_data("fashion_mnist", "test", verbose=False)
    part = load_data("fashion_mnist", "test", limit=7)
    assert torch.equal(part.images, full.images[:7])
    assert torch.equal(part.labels, full.labels[:7])
    lines = capsys.readouterr().out.splitlines()
    assert lines == [part.source]
    assert "the first 7 of 5,000 images" in part.source
    assert "download --dataset fashion_mnist" in part.source and "10,000" in part.source


def test_mnist_prefix_is_class_balanced(empty_root):
    d = load_data("mnist", limit=1000, verbose=False)
    counts = torch.bincount(d.labels, minlength=10)
    # a seeded shuffle: every digit appears, none dominates (binomial spread at n = 1000)
    assert counts.min().item() >= 60 and counts.max().item() <= 140


# --------------------------------------------------------------------------- errors


def test_unknown_dataset():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'") as info:
        load_data("imagenet")
    for name in ("mnist", "fashion_mnist", "cifar10"):
        assert name in str(info.value)
    with pytest.raises(ValueError, match="known datasets"):
        dataset_info("MNIST")


def test_bad_split_and_limit(empty_root):
    with pytest.raises(ValueError, match="split"):
        load_data("mnist", split="validation")
    with pytest.raises(ValueError, match="limit"):
        load_data("mnist", limit=0)


def test_missing_data_explains_the_fix(empty_root, tmp_path, monkeypatch):
    nothing = tmp_path / "no_shipped_data"
    nothing.mkdir()
    monkeypatch.setattr(data, "SHIPPED_DIR", nothing)
    with pytest.raises(DataNotFoundError) as info:
        load_data("fashion_mnist", "train")
    message = str(info.value)
    assert str(empty_root) in message
    assert "fashion_mnist_train_10k.npz" in message
    assert "DIFFUSION_LAB_DATA" in message
    assert "python -m diffusion_lab download --dataset fashion_mnist" in message


def test_mnist_has_no_offline_test_split(empty_root):
    with pytest.raises(DataNotFoundError, match="no MNIST test split") as info:
        load_data("mnist", "test")
    assert "python -m diffusion_lab download --dataset mnist" in str(info.value)


def test_default_never_downloads(empty_root, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("download_data called without download=True")

    monkeypatch.setattr(data, "download_data", fail)
    assert len(load_data("cifar10", "test", verbose=False)) == 20


def test_failed_download_falls_back_with_the_reason(empty_root, monkeypatch):
    def offline(name, root=None):
        raise OSError("no network here")

    monkeypatch.setattr(data, "download_data", offline)
    d = load_data("cifar10", "test", download=True, verbose=False)
    assert len(d) == 20
    assert "download failed: OSError: no network here" in d.source


# --------------------------------------------------------------------------- full data


@pytest.mark.parametrize("compress", [False, True])
def test_torchvision_layout_is_preferred(tmp_path, monkeypatch, capsys, compress):
    rng = np.random.default_rng(0)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    splits = {"train": ("train", 12), "test": ("t10k", 5)}
    written = {}
    for split, (prefix, n) in splits.items():
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress)
        written[split] = (images, labels)
    monkeypatch.setenv(settings.DATA_ENV, str(tmp_path))

    for split, (images, labels) in written.items():
        d = load_data("mnist", split)
        assert d.images.shape == (len(labels), 1, 28, 28)
        assert torch.equal(d.images, from_uint8(images))
        assert d.labels.tolist() == labels.tolist()
        assert "from the full dataset found in" in d.source and str(raw) in d.source
        assert capsys.readouterr().out.strip() == d.source


def test_data_root_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.DATA_ENV, str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv(settings.DATA_ENV)
    assert data_root() == (settings.DEFAULT_DATA_ROOT).expanduser()
    assert data_root().parts[-3:] == (".cache", "diffusion_lab", "data")


# --------------------------------------------------------------------------- helpers


def test_dataset_info():
    assert set(DATASETS) == {"mnist", "fashion_mnist", "cifar10"}
    for name, info in DATASETS.items():
        assert dataset_info(name) is info and info.name == name and info.num_classes == 10
    assert (DATASETS["cifar10"].channels, DATASETS["cifar10"].size) == (3, 32)
    assert (DATASETS["mnist"].channels, DATASETS["mnist"].size) == (1, 28)


def test_uint8_round_trip():
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    x = from_uint8(rgb)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert x.min().item() >= -1 and x.max().item() <= 1
    assert np.array_equal(to_uint8(x), rgb)
    assert np.array_equal(to_uint8(x[0]), rgb[0])  # a single (C, H, W) image

    gray = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    assert np.array_equal(to_uint8(from_uint8(torch.from_numpy(gray))), gray[..., None])

    assert from_uint8(np.array([[[0, 255]]], dtype=np.uint8)).flatten().tolist() == [-1.0, 1.0]
    overshoot = torch.tensor([[[[-3.0, 0.0, 5.0]]]])
    assert to_uint8(overshoot).flatten().tolist() == [0, 128, 255]
    with pytest.raises(ValueError, match="uint8"):
        from_uint8(np.zeros((1, 2, 2), dtype=np.float32))
