"""Run-time settings, in one place: what the environment asks for, and where the files are.

DIFFUSION_LAB_FAST=1   fast mode: notebooks and demos use smaller settings (CI sets it).
DIFFUSION_LAB_DEVICE   force a device ("cpu", "cuda", "cuda:1", "mps"); default: CUDA, then MPS, then CPU.
DIFFUSION_LAB_DATA     the folder of full datasets, in torchvision's layout (default ~/.cache/diffusion_lab/data).
DIFFUSION_LAB_PROGRESS the file that records which exercises' checks passed (default
                       ~/.cache/diffusion_lab/progress.json; "off" records nothing).

The data the course ships (checkpoints, offline dataset subsets, measured results) is found by
`shipped_data()`, in a clone and in an installed package alike.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

FAST_ENV, DEVICE_ENV, DATA_ENV = "DIFFUSION_LAB_FAST", "DIFFUSION_LAB_DEVICE", "DIFFUSION_LAB_DATA"
PROGRESS_ENV = "DIFFUSION_LAB_PROGRESS"
DEFAULT_DATA_ROOT = Path("~/.cache/diffusion_lab/data")
DEFAULT_PROGRESS = Path("~/.cache/diffusion_lab/progress.json")
DEVICE_TYPES = ("cpu", "cuda", "mps")

PACKAGE = Path(__file__).resolve().parent
# pyproject.toml maps the repository's data/ into the package as diffusion_lab/_data, so a wheel or a
# `pip install .` carries it; in a clone (or an editable install) data/ stays at the repository root.
INSTALLED_DATA, CLONE_DATA = PACKAGE / "_data", PACKAGE.parent / "data"


def fast_mode() -> bool:
    """True when DIFFUSION_LAB_FAST is 1/true/yes, False when unset, empty or 0/false/no."""
    value = os.environ.get(FAST_ENV, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{FAST_ENV}={os.environ[FAST_ENV]!r} is neither on (1, true, yes) nor off (0, false, no).")


def pick(*, default, fast, gpu=None):
    """Choose a setting: `fast` in fast mode, `gpu` when a GPU/MPS is present, else `default`.

    Keyword-only, so the call says which value is which: `dl.pick(default=1000, fast=200)`.
    """
    if fast_mode():
        return fast
    if gpu is not None and pick_device().type != "cpu":
        return gpu
    return default


def progress_bar(*args, **kwargs):
    """tqdm's progress bar: its notebook widget in Jupyter, plain text in terminals and in Colab.

    Colab's widget manager has answered tqdm's widget with a prompt to enable third-party widgets
    (googlecolab/colabtools#3023), so there the text bar, which renders everywhere, is the safe choice.
    """
    if "google.colab" in sys.modules:
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(*args, **kwargs)


def pick_device(name: str | torch.device | None = None) -> torch.device:
    """The best available device: CUDA, then Apple MPS, then CPU (override: `name` or DIFFUSION_LAB_DEVICE).

    An unknown or absent device raises a ValueError that says what is available.
    """
    if isinstance(name, torch.device):
        return name
    where = "--device" if name else DEVICE_ENV
    name = name or os.environ.get(DEVICE_ENV) or None
    if not name:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise ValueError(f"{where} {name!r} is not a device this course runs on; use cpu, cuda, cuda:N or mps.")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{where} {name!r} was asked for but no CUDA GPU is available; use cpu.")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"{where} {name!r}: there are only {torch.cuda.device_count()} CUDA GPUs (cuda:0...).")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{where} {name!r} was asked for but Apple MPS is not available; use cpu.")
    return device


def shown_path(path: str | os.PathLike) -> str:
    """A path as a message shows it: under the home folder as ~/..., the same on every machine."""
    try:
        return "~/" + Path(path).resolve().relative_to(Path.home().resolve()).as_posix()
    except ValueError:
        return str(path)


def progress_file() -> Path | None:
    """Where passed checks are recorded: $DIFFUSION_LAB_PROGRESS, else ~/.cache/diffusion_lab/progress.json;
    None when it is "off"."""
    value = os.environ.get(PROGRESS_ENV, "").strip()
    if value.lower() == "off":
        return None
    return Path(value or DEFAULT_PROGRESS).expanduser()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder of full datasets: `root`, else $DIFFUSION_LAB_DATA, else ~/.cache/diffusion_lab/data.

    The folder is not created here.
    """
    source = "--root" if root is not None else DATA_ENV if os.environ.get(DATA_ENV) else None
    if root is None:
        root = os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT
    path = Path(root).expanduser()
    if source and path.exists() and not path.is_dir():  # else the datasets would silently not be found there
        raise ValueError(f"{source} {path} is a file, not a folder: point it at the folder of the datasets.")
    return path


def shipped_data(*parts: str) -> Path:
    """A path inside the data the course ships: shipped_data("checkpoints") -> .../data/checkpoints.

    In an installed package that is diffusion_lab/_data; in a clone, data/ at the repository root.
    """
    root = INSTALLED_DATA if INSTALLED_DATA.is_dir() else CLONE_DATA
    return root.joinpath(*parts)


def missing_shipped_data(path: Path) -> str:
    """The end of an error message for shipped data that is not there: where it was looked for, and the fix."""
    return (
        f"{path} is missing. The course's shipped data (checkpoints, offline datasets) lives in data/ of the "
        f"repository, or in diffusion_lab/_data of an installed package ({INSTALLED_DATA} or {CLONE_DATA} "
        "here). Clone the repository (git clone https://github.com/diffusion-lab/diffusion-lab) and run "
        "from it, or install it with `pip install .` from the clone, which copies data/ into the package."
    )


def cpu_has_native_bf16() -> bool:
    """True when this CPU computes in bfloat16 natively (AVX512-BF16 or AMX, on recent x86 servers).

    Elsewhere (AVX2-only x86, most laptops) torch emulates bf16: measured on a 2-core AVX2 EPYC, a
    U-Net training step ran ~10x *slower* under bf16 autocast than in float32. (Private torch
    helpers, hence the getattr: if they ever disappear we fall back to float32, the safe choice.)
    """
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 autocast where it is safe and faster: CUDA with bf16, and CPUs with native bf16.

    bf16 keeps float32's exponent range, so no loss scaling is needed (unlike float16). Never on MPS.
    """
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None
