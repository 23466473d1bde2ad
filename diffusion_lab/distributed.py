"""One device or many: the process plumbing of `train`, through Hugging Face Accelerate
(https://huggingface.co/docs/accelerate); large-batch data parallelism as in Goyal et al. 2017,
https://arxiv.org/abs/1706.02677.

    python -m diffusion_lab train ...                                          # one process: CPU, a GPU or MPS
    accelerate launch --num_processes 4 -m diffusion_lab train ...             # 4 GPUs, data parallel
    torchrun --nproc_per_node 4 -m diffusion_lab train ...                     # the same with torchrun

Data parallelism (what DDP does): every process holds the same model and takes its own slice of each
optimizer step's batch; the gradients are averaged across processes before the step, so every
process takes the same step. The effective batch of one optimizer step is therefore

    effective batch = batch_size (per process) x processes x grad_accum (micro-batches per step)

`train` draws every step's random numbers (images, t, noise, label dropout, flips) for the whole
effective batch in every process, from the same seed, and each process keeps its own slice
(`shard`): without dropout, N processes x batch B compute what 1 process with batch N*B computes, to
float rounding. Dropout masks come from each process's own generator, seeded by rank (training.py),
so with dropout > 0 the two agree in distribution only (tests/test_distributed.py checks both over
gloo on CPU). Precision stays TrainConfig.amp's
(settings.autocast_dtype): Accelerate's own mixed_precision setting is not used.
"""

from __future__ import annotations

import os

import torch

from .settings import DEVICE_ENV, pick_device


def world_size() -> int:
    """How many processes a launcher (accelerate launch, torchrun) started: WORLD_SIZE, else 1."""
    text = os.environ.get("WORLD_SIZE", "1").strip() or "1"
    if not text.isdigit():  # int() would raise a message that names no variable
        raise ValueError(f"WORLD_SIZE must be a whole number (the launcher's process count), got {text!r}.")
    return int(text)


def is_main_process() -> bool:
    """True in the process that prints and writes: the only one, or rank 0 under a launcher."""
    return int(os.environ.get("RANK", "0") or 0) == 0


def make_accelerator(device=None, grad_accum: int = 1):
    """(accelerate.Accelerator, the device this process trains on).

    One process: the device is `device`, else DIFFUSION_LAB_DEVICE, else the best available
    (settings.pick_device), and Accelerate leaves the placement to us. Under a launcher: each process
    takes the device Accelerate gives it (cuda:LOCAL_RANK, or the CPU over gloo when there is no GPU).
    Raises a ValueError before any process waits on another when the launch cannot work: more
    processes on a machine than it has GPUs (Accelerate would silently put two on one GPU), or a
    --device that contradicts the launcher's.
    """
    from accelerate import Accelerator

    processes = world_size()
    if processes == 1:
        device = pick_device(device)
        # mixed_precision="no": precision is TrainConfig.amp's (Accelerate's is fixed once per process,
        # so a notebook could not switch it between two runs).
        return Accelerator(mixed_precision="no", gradient_accumulation_steps=grad_accum,
                           device_placement=False), device
    asked = device if device is not None else os.environ.get(DEVICE_ENV) or None
    asked_type = torch.device(asked).type if asked is not None else None
    use_cpu = asked_type == "cpu" or not torch.cuda.is_available()
    if asked_type not in (None, "cpu", "cuda"):
        raise ValueError(f"{asked!r}: a launch of {processes} processes runs on CUDA GPUs or on CPUs; "
                         "drop --device (and DIFFUSION_LAB_DEVICE) or launch one process.")
    if asked_type == "cuda" and use_cpu:
        raise ValueError(f"{asked!r} was asked for but no CUDA GPU is available; drop --device to train on CPUs.")
    if asked is not None and torch.device(asked).index is not None:
        raise ValueError(f"--device {asked}: under a launcher each process takes its own GPU (cuda:LOCAL_RANK); "
                         "choose the GPUs with CUDA_VISIBLE_DEVICES instead.")
    local = int(os.environ.get("LOCAL_WORLD_SIZE", processes))
    if not use_cpu and local > torch.cuda.device_count():
        raise ValueError(f"{local} processes on this machine but only {torch.cuda.device_count()} CUDA GPU(s): "
                         f"launch at most {torch.cuda.device_count()} (--num_processes / --nproc_per_node).")
    accelerator = Accelerator(mixed_precision="no", gradient_accumulation_steps=grad_accum, cpu=use_cpu)
    return accelerator, accelerator.device


def shard(batch: int, micro_step: int, accelerator) -> slice:
    """This process's slice of a step's draws, which are ordered micro-step by micro-step and, within
    one, process by process (`batch` items each)."""
    start = (micro_step * accelerator.num_processes + accelerator.process_index) * batch
    return slice(start, start + batch)


def accelerate_precision_note() -> str | None:
    """A line for the main process when `accelerate launch --mixed_precision X` asked for a precision
    that train does not take from Accelerate, else None."""
    asked = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    if asked in ("no", ""):
        return None
    return (f"note: accelerate's mixed_precision={asked} is not used; train's precision is --amp/--no-amp "
            "(bf16 autocast where native: settings.autocast_dtype).")
