# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 12 · Scale up: colour images, and many GPUs
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/12_scale_up.ipynb)
#
# Everything so far trained on 28x28 grey digits, on one CPU. The same `train` takes 32x32 colour
# photographs (CIFAR-10) and runs on one GPU or several, through Hugging Face Accelerate, the engine
# diffusers' own training scripts use. Nothing in the maths changes; two things do: the recipe (a
# larger U-Net, augmentation, the literature's settings) and how the work of one optimizer step is
# split between devices.
#
# **In this notebook you will**
# - look at the CIFAR-10 recipe and the model it builds;
# - write the recipe's augmentation, random horizontal flips (exercise);
# - see why data parallelism computes exactly the gradient of one big batch, and check it on your CPU;
# - see which slice of each batch every process takes;
# - play with processes, batch and gradient accumulation, and read off the effective batch;
# - get the exact commands for one GPU, N GPUs and several machines.

# %% cellView="form"
# @title Colab only: fetch and install the course (elsewhere this cell does nothing)
# Keeps Colab's own torch, torchvision and ipywidgets; safe to run again. From diffusion_lab/course/colab.py.
import sys

if "google.colab" in sys.modules:
    import importlib.metadata
    import importlib.util
    import os
    import subprocess

    REPO = "https://github.com/diffusion-lab/diffusion-lab"
    here = os.getcwd()
    is_course = lambda d: os.path.isfile(os.path.join(d, "diffusion_lab", "__init__.py"))
    root = next((d for d in (here, os.path.dirname(here)) if is_course(d)), None)
    if root:
        print(f"found the course in {root}")
    else:
        root = os.path.abspath("diffusion-lab")
        if not os.path.exists(root):
            subprocess.run(["git", "clone", "--depth", "1", "--quiet", REPO, root], check=True)
            print(f"cloned {REPO} into {root}")
        elif is_course(root):
            print(f"found the course in {root}")
        else:
            raise RuntimeError(f"{root} exists but is not the course: remove it (!rm -r {root}) and rerun.")
    spec = importlib.util.find_spec("diffusion_lab")
    if spec and spec.origin and spec.origin.startswith(root + os.sep):
        print("diffusion_lab is installed")
    else:
        keep = []  # what Colab already has stays as it is: pinned at its installed version
        for dist in ('torch', 'torchvision', 'numpy', 'matplotlib', 'ipywidgets', 'tqdm', 'safetensors', 'accelerate'):
            try:
                keep.append(f"{dist}=={importlib.metadata.version(dist)}")
            except importlib.metadata.PackageNotFoundError:
                pass
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", root, *keep], check=True)
        print(f"installed diffusion_lab from {root}, keeping " + ", ".join(keep))
    if root not in sys.path:
        sys.path.insert(0, root)  # the running kernel does not see the fresh install yet
    os.chdir(os.path.join(root, "notebooks"))
    print(f"working in {os.getcwd()}")

# %%
import matplotlib.pyplot as plt
import torch
from ipywidgets import IntSlider, interact

import diffusion_lab as dl
from diffusion_lab.course import check
from diffusion_lab.course.plots import show_images
from diffusion_lab.data import DATASETS
from diffusion_lab.distributed import shard
from diffusion_lab.models import count_parameters
from diffusion_lab.training import RECIPE_SETTINGS, TrainConfig

torch.manual_seed(0)
print(f"device: {dl.pick_device()}; CUDA GPUs: {torch.cuda.device_count()}")

# %% [markdown]
# ## CIFAR-10: ten classes of 32x32 photographs
#
# The course ships only the first 20 images of the official test set (from a package registry, so
# they work offline); the 50,000 training images come with `python -m diffusion_lab download
# --dataset cifar10` (170 MB, needs internet), or from a folder you point `DIFFUSION_LAB_DATA` at.
# Without them, `train --dataset cifar10` stops with an error that says so: no package registry
# carries CIFAR-10's training images for the course to ship.

# %%
cifar = dl.load_data("cifar10", "test")
show_images(cifar.images, nrow=10, title=", ".join(cifar.info.class_names[int(c)] for c in cifar.labels[:10]) + ", ...")
plt.show()

# %% [markdown]
# Digits are centred and upright; photographs are not, and a horse facing left is as much a horse as
# one facing right. So the recipe flips each training image left-right with probability 1/2 (Ho et
# al. 2020 did the same for CIFAR-10): twice the images for free, and a model that does not prefer one
# side. (Never for digits: a mirrored 3 is not a 3.)

# %% [markdown]
# ## Exercise: flip half the images
#
# `train` draws one coin per image of a step, `flip` (a boolean tensor of shape (B,), True with
# probability 1/2), and mirrors the images whose coin came up True before noising them. Complete
# `hflip(x0, flip)`: `x0` holds B images of shape (C, H, W); return a tensor shaped like `x0` in which
# image i is mirrored left-right where `flip[i]` is True and unchanged where it is False. Then run the
# check under it.

# %%
def hflip(x0, flip):
    """Images x0 (B, C, H, W), mirrored left-right where flip (B,) is True."""
    ### BEGIN SOLUTION
    return torch.where(flip[:, None, None, None], x0.flip(-1), x0)
    ### END SOLUTION


# %% [markdown]
# <!-- hint: hflip -->

# %%
hflip = check.hflip(hflip)

# %% [markdown]
# The first ten shipped test images as the recipe might see them in one step: a coin per image, the
# mirrored ones marked. (`training.hflip` is the package's version, the one `train` calls.)

# %%
coins = torch.rand(10, generator=torch.Generator().manual_seed(1)) < 0.5
mirrored = ", ".join(str(i) for i in coins.nonzero().flatten().tolist())
show_images(torch.cat([cifar.images[:10], hflip(cifar.images[:10], coins)]), nrow=10,
            title=f"top: as shot; bottom: after hflip (mirrored: {mirrored}, counting from 0)")
plt.show()

# %% [markdown]
# ## The recipe
#
# `TrainConfig(dataset="cifar10")` fills in the settings that depend on the images. For the grey
# 28x28 datasets they are the ones measured on a CPU in chapter 04; for 32x32 colour they follow DDPM's
# CIFAR-10 model (Ho et al. 2020, appendix B): two residual blocks per level, dropout 0.1, flips, a
# learning rate of 2e-4 at batch 128 (DDPM's own; the linear scaling below would say how to change it
# for another batch), and a slower EMA for a longer run. The width is scaled down
# so the trained weights can ship with the course. Self-attention stays in the middle (8x8), a choice
# for cost: DDPM's extra attention at 16x16 makes every step slower, and one short run of each (the
# results page's "Scale up" section) showed no lower held-out loss with it. One run without a spread
# ranks nothing, so this is not a measured win for either; `attention_resolutions=(16,)` adds it back.

# %%
mnist_cfg, cifar_cfg = TrainConfig(dataset="mnist"), TrainConfig(dataset="cifar10")
print(f"{'setting':24s} {'mnist':>12s} {'cifar10':>12s}")
for name in RECIPE_SETTINGS:  # the settings the dataset decides (training.RECIPES)
    print(f"{name:24s} {str(getattr(mnist_cfg, name)):>12s} {str(getattr(cifar_cfg, name)):>12s}")

for cfg in (mnist_cfg, cifar_cfg):
    model = dl.build_model(cfg.model, **cfg.model_kwargs(DATASETS[cfg.dataset]))
    print(f"{cfg.dataset}: {count_parameters(model):,} parameters "
          f"({4 * count_parameters(model) / 1e6:.1f} MB as float32)")

# %% [markdown]
# Every difference from DDPM's own CIFAR-10 model (Ho et al. 2020, appendix B and their released
# configuration), printed from the recipe so the list cannot drift from it:

# %%
DDPM_CIFAR10 = {  # Ho et al. 2020's CIFAR-10 run (35.7M parameters, 800k steps on TPUs)
    "conditional": False, "base_channels": 128, "channel_mults": (1, 2, 2, 2), "num_res_blocks": 2,
    "attention_resolutions": (16,), "dropout": 0.1, "hflip": True, "schedule": "linear", "T": 1000,
    "prediction": "eps", "loss_weighting": "simple", "batch_size": 128, "lr": 2e-4, "warmup": 5000,
    "ema_decay": 0.9999, "grad_clip": 1.0, "amp": False,
}
for name, theirs in DDPM_CIFAR10.items():
    ours = getattr(cifar_cfg, name)
    print(f"{name:22s} DDPM {str(theirs):>14s}   ours {str(ours):>14s}" + ("" if ours == theirs else "   <- differs"))
print("(ours also keeps attention in the 8x8 middle blocks, as DDPM does; `conditional` adds class labels and\n"
      " label dropout for guidance; `amp` is bf16 autocast where the hardware has it)")

# %% [markdown]
# ## Data parallelism: one batch, cut in pieces
#
# With $N$ processes (one per GPU), each holds the same model and takes a different slice of the
# batch. Each computes the gradient of the mean loss over its own $B$ images; then an *all-reduce*
# averages the $N$ gradients, so every process holds the same average and takes the same step:
#
# $$\frac{1}{N}\sum_{r=1}^{N} \nabla_\theta \frac{1}{B}\sum_{i \in \text{slice}_r} \ell_i
#   \;=\; \nabla_\theta \frac{1}{NB}\sum_{i=1}^{NB} \ell_i .$$
#
# The right-hand side is the gradient of one batch of $NB$ images on one device: the same step,
# computed $N$ times faster. Gradient accumulation is the same identity in time instead of space: $K$
# micro-batches, one after the other, their gradients added (each loss divided by $K$) before one
# step. Check it here, with a tiny model on the CPU:

# %%
cfg = TrainConfig(dataset="cifar10", base_channels=8, num_res_blocks=1, attention=False, attention_resolutions=(),
                  dropout=0.0, T=100)
net = dl.build_model(cfg.model, **cfg.model_kwargs(DATASETS["cifar10"]))
sched = dl.make_schedule(cfg.schedule, cfg.T)
g = torch.Generator().manual_seed(0)
x0, y = cifar.images[:8], cifar.labels[:8]
t, noise = torch.randint(cfg.T, (8,), generator=g), torch.randn(x0.shape, generator=g)


def gradient(sl):
    net.zero_grad()
    dl.diffusion_loss(net, x0[sl], t[sl], noise[sl], sched, y[sl]).backward()
    return torch.cat([p.grad.flatten() for p in net.parameters()])


whole = gradient(slice(0, 8))  # one device, batch 8
halves = (gradient(slice(0, 4)) + gradient(slice(4, 8))) / 2  # two processes of 4, all-reduced (mean)
print(f"largest difference: {(whole - halves).abs().max():.2e} (gradient entries up to {whole.abs().max():.2e})")
assert torch.allclose(whole, halves, atol=1e-6)

# %% [markdown]
# Float rounding aside, they agree. `train` relies on exactly this: every process draws the random
# numbers of the *whole* step (images, $t$, noise, label dropout, flips) from the same seed and keeps
# its own slice, so without dropout 2 processes with batch 64 compute what 1 process with batch 128
# computes, to float rounding. Dropout is the exception: its masks come from each process's own
# generator, seeded by its rank, so every slice gets masks of its own, as the halves of one batch do,
# but not the very masks one process would draw. With dropout (the CIFAR-10 recipe's 0.1) the two runs
# agree in distribution, not bit for bit. The package's test suite checks both: two real processes
# talking over gloo on a CPU give the gradients and, after three steps, the weights of one process
# with twice the batch (no dropout), and with dropout they draw different masks.
#
# ## Which slice is whose
#
# A step's draws are laid out micro-batch by micro-batch and, within a micro-batch, process by
# process, each piece `batch` items long (`distributed.shard`). With 2 processes, 2 micro-batches
# (gradient accumulation) and a per-process batch of 3, the 12 draws of one step go:

# %%
class Launch:  # stands in for accelerate.Accelerator: the two numbers shard() reads
    def __init__(self, process_index, num_processes):
        self.process_index, self.num_processes = process_index, num_processes


draws = torch.arange(12)  # the indices of the step's 12 images, drawn by every process from the same seed
for micro in range(2):
    for process in range(2):
        print(f"micro-batch {micro}, process {process}: images {draws[shard(3, micro, Launch(process, 2))].tolist()}")
taken = torch.cat([draws[shard(3, m, Launch(r, 2))] for m in range(2) for r in range(2)])
assert torch.equal(taken.sort().values, draws), "every draw is used exactly once"

# %% [markdown]
# Every image of the step is used exactly once, and the gradients of the four pieces add up to the
# gradient of the whole step (each loss divided by the number of micro-batches, then averaged over
# the processes). Resumed on 1 process, the run keeps its steps of 12 images as 4 micro-batches of 3,
# one after the other (`train` works that out from the checkpoint and says so).
#
# %% [markdown]
# ## Play: the effective batch
#
# One optimizer step sees `batch_size x processes x grad_accum` images. Move the sliders: more GPUs
# make each step bigger, not more frequent. To keep training the *same* recipe on more GPUs, shrink the
# per-process batch (128 on one GPU = 32 on each of four). To make use of the bigger batch instead,
# raise the learning rate: the "linear scaling rule" (Goyal et al. 2017) multiplies it by the batch's
# growth for SGD; for Adam a square root is the safer start. `train` never changes `--lr` for you.

# %%
def effective(batch_size=128, processes=1, grad_accum=1):
    images = batch_size * processes * grad_accum
    growth = images / cifar_cfg.batch_size
    print(f"effective batch: {batch_size} x {processes} x {grad_accum} = {images} images per step "
          f"({growth:g}x the recipe's {cifar_cfg.batch_size})")
    print(f"lr for the same recipe: {cifar_cfg.lr:g}; scaled linearly: {cifar_cfg.lr * growth:.2g}; "
          f"by the square root: {cifar_cfg.lr * growth ** 0.5:.2g}")


effective(32, processes=4)  # four GPUs with 32 each: the recipe's 128 (what the sliders below start from)

# %%
# NBVAL_IGNORE_OUTPUT
_ = interact(effective, batch_size=IntSlider(32, 16, 512, 16), processes=IntSlider(4, 1, 8),
             grad_accum=IntSlider(1, 1, 8))

# %% [markdown]
# ## The commands
#
# One GPU (or Apple MPS): the same command as on a laptop; `train` picks the GPU by itself.
#
# ```bash
# python -m diffusion_lab download --dataset cifar10
# python -m diffusion_lab train --dataset cifar10 --steps 100000 --out runs/cifar10_cfg.safetensors
# ```
#
# N GPUs on one machine, data parallel (here 4): Accelerate's launcher, or PyTorch's.
#
# ```bash
# accelerate launch --num_processes 4 -m diffusion_lab train --dataset cifar10 --batch-size 32 \
#     --steps 100000 --out runs/cifar10_cfg.safetensors      # effective batch 4 x 32 = 128
# torchrun --nproc_per_node 4 -m diffusion_lab train --dataset cifar10 --batch-size 32 \
#     --steps 100000 --out runs/cifar10_cfg.safetensors
# ```
#
# Several machines: run `accelerate config` once on each (this machine's rank, the number of machines,
# the main machine's address and port), then the same `accelerate launch -m diffusion_lab train ...` on
# every machine. The main process alone shows the progress bar, keeps the EMA and writes the
# checkpoint; a checkpoint from 4 GPUs resumes on 1 (`--resume`), with gradient accumulation 4 keeping
# the effective batch. The results page's "Scale up" section has the details and what was measured where.
#
# Said plainly: this chapter was written on a 2-core CPU with no GPU. What is tested (in CI, on CPUs)
# is the computation: 2 processes over gloo give the gradients and weights of 1 process with twice the
# batch, and a checkpoint from 2 processes resumes on 1. On GPUs the same code runs with NCCL instead
# of gloo; no course session has run the GPU commands yet. Nor does the course have a CIFAR-10
# diffusion checkpoint: training one takes a GPU. Once one is trained, `python -m diffusion_lab evaluate
# --checkpoint ...` grades it offline with the course's own CIFAR-10 classifier, beside the real-data
# floor, as chapter 08 does.
