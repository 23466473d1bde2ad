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
# # 00 · Start here
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/00_start_here.ipynb)
#
# **Diffusion Lab** teaches diffusion models by running them: every equation you meet is a short
# function in the `diffusion_lab` package, and every notebook lets you poke at it. By the end you
# will have trained a small class-conditional model on MNIST, sampled from it with DDPM, DDIM and
# classifier-free guidance, measured the samples with error bars, sampled in 10 steps with ODE solvers,
# moved the model into an autoencoder's latent space, prompted it with words, and seen how its
# training splits over several GPUs (data parallelism, simulated step by step on the CPU).
#
# **In this notebook you will**
# - see what the course covers and in which order;
# - check that your setup works (device, PyTorch, data, fast mode);
# - generate your first digits from the model shipped with the course, in under a minute on a laptop CPU;
# - write one line of code that the whole course relies on: how pixels become numbers in $[-1, 1]$.

# %% [markdown]
# **Running on Colab?** The next cell fetches the course and installs it. Anywhere else it does nothing.

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

# %% [markdown]
# ## The course at a glance
#
# A diffusion model learns to undo noise. Training takes a real image $x_0$, adds a known amount
# of Gaussian noise to get $x_t$, and asks a network $\epsilon_\theta(x_t, t)$ to guess which noise
# was added. Sampling starts from pure noise and repeatedly removes the noise the network predicts.
#
# | chapter | topic | you will build or explore |
# |---|---|---|
# | **00** | start here | setup check, first samples |
# | **01** | noise schedules | $\beta_t$, $\bar\alpha_t$, SNR; four schedules compared |
# | **02** | forward noising | one small step vs. the closed-form jump $q(x_t \mid x_0)$ |
# | **03** | the U-Net | time embedding, residual blocks, two U-Nets side by side |
# | **04** | DDPM training | the loss, the loop, a live loss curve: train a real model on your CPU |
# | **05** | DDPM sampling | the reverse step term by term; $x_t$ and the predicted $x_0$ along $t$ |
# | **06** | DDIM | the deterministic update, fewer steps, $\eta$, interpolation |
# | **07** | classifier-free guidance | label dropout, the guidance formula, trading diversity for fidelity |
# | **08** | evaluation | Fréchet distance beside its real-data floor, class accuracy, diversity: steps, guidance and architectures compared with numbers and error bars |
# | **09** | faster samplers | the probability-flow ODE; Euler, Heun and DPM-Solver++; precision and recall |
# | **10** | latent diffusion | an autoencoder, diffusion in its latent space, pixel against latent at the same minutes |
# | **11** | text prompts | a tokenizer, cross-attention, prompts against class labels |
# | **12** | scale up | CIFAR-10, mixed precision, data parallelism over processes with Accelerate |
# | **13** | flow matching | one interpolant, two paths; rectified flow and a DiT against DDPM on the same CPU budget |
# | **14** | the score and the reverse SDE | the score, the reverse SDE and the probability-flow ODE; stochastic samplers against ODE ones; inpainting and image-to-image |
#
# Chapters 01-03 need no training and run in well under a minute. Each chapter runs on its own, in any order.
#
# **Exercises.** Every chapter has one: a function to write, a hint folded under it, and a check
# that says what is right or wrong (and names the mistake when it is a common one). This is the
# student edition if you opened `notebooks/`; the instructor edition, with the worked answers, is
# in `solutions/` (how they are made: `chapters/README.md`).
#
# **How to run the course**
# - *Locally:* `make lab` in the repository root creates a virtual environment, installs
#   everything and opens JupyterLab on this notebook. `make test` runs the tests and every notebook.
# - *On Colab:* click the badge at the top of any chapter; its first cell installs the package.
# - *Fast mode:* set the environment variable `DIFFUSION_LAB_FAST=1` and the notebooks pick smaller
#   settings (fewer images, fewer steps). The automated tests use it; the figures get rougher.
#
# ## Where the course comes from
#
# The course follows two sources, and goes back to the papers they build on for every equation:
#
# - **Yu (2025), "Understanding Diffusion Models via Code Execution"**, [arXiv:2512.07201](https://arxiv.org/abs/2512.07201),
#   with its code: [github.com/disanda/GM, folder DDPM-DDIM-ClassifierFree](https://github.com/disanda/GM/tree/main/DDPM-DDIM-ClassifierFree).
#   A 300-line implementation of DDPM, DDIM and classifier-free guidance, read line by line. Its
#   minimal U-Net is `dl.MinimalUNet`; where its code differs from ours, a "paper's code vs ours"
#   box in the chapter says how, with a number we measured.
# - **A DDPM tutorial article** the course was planned from (intuition, the maths, a small U-Net,
#   then guidance, DDIM, faster samplers, latent diffusion). It has no title or address to cite, so
#   we cite the primary papers it summarises, listed in the last column.
#
# | chapter | Yu 2025 (arXiv:2512.07201) | tutorial article | primary papers |
# |---|---|---|---|
# | 01 noise schedules | §3.1 (timesteps, $\beta$, $\alpha$, $\bar\alpha$) | §3, §4 step 1 | Ho et al. 2020 §4 ([2006.11239](https://arxiv.org/abs/2006.11239)); Nichol & Dhariwal 2021 §3.2 ([2102.09672](https://arxiv.org/abs/2102.09672)) |
# | 02 forward noising | §3.2-3.3 (the jump, its code) | §3 | Ho et al. 2020 eq. 2, 4 |
# | 03 the U-Net | §6 (blocks, time embedding) | §4 step 2 | Ronneberger et al. 2015 ([1505.04597](https://arxiv.org/abs/1505.04597)); Vaswani et al. 2017 §3.5 ([1706.03762](https://arxiv.org/abs/1706.03762)); Dhariwal & Nichol 2021 ([2105.05233](https://arxiv.org/abs/2105.05233)) |
# | 04 DDPM training | §3.3.2 (loss), §8.1 | §3 (objective), §4 step 3 | Ho et al. 2020 eq. 14, Algorithm 1; Hang et al. 2023 ([2303.09556](https://arxiv.org/abs/2303.09556)) |
# | 05 DDPM sampling | §4 (posterior, denoising step, loop) | §4 (sampling) | Ho et al. 2020 eq. 6-7, 11, 15, Algorithm 2 |
# | 06 DDIM | §5, §8.3 | §5 (schedulers) | Song et al. 2021 eq. 12, 16 ([2010.02502](https://arxiv.org/abs/2010.02502)) |
# | 07 classifier-free guidance | §7, §8.4 | §5 (conditioning) | Ho & Salimans 2022 ([2207.12598](https://arxiv.org/abs/2207.12598)) |
# | 08 evaluation | §8 (results, as images only) | | Heusel et al. 2017 ([1706.08500](https://arxiv.org/abs/1706.08500)) |
# | 09 faster samplers | | §5 (schedulers as ODE solvers) | Song et al. 2021b ([2011.13456](https://arxiv.org/abs/2011.13456)); Karras et al. 2022 ([2206.00364](https://arxiv.org/abs/2206.00364)); Lu et al. 2022 ([2211.01095](https://arxiv.org/abs/2211.01095)); Kynkäänniemi et al. 2019 ([1904.06991](https://arxiv.org/abs/1904.06991)) |
# | 10 latent diffusion | | §2 (the latent diffusion breakthrough) | Rombach et al. 2022 ([2112.10752](https://arxiv.org/abs/2112.10752)); Kingma & Welling 2014 ([1312.6114](https://arxiv.org/abs/1312.6114)) |
# | 11 text prompts | | §2 (cross-attention), §5 (conditioning) | Rombach et al. 2022 §3.3; Vaswani et al. 2017 |
# | 12 scale up | | §5 (practical tips) | Ho et al. 2020 (CIFAR-10 recipe); Goyal et al. 2017 ([1706.02677](https://arxiv.org/abs/1706.02677)) |
# | 13 flow matching | | | Lipman et al. 2023 ([2210.02747](https://arxiv.org/abs/2210.02747)); Liu et al. 2022 ([2209.03003](https://arxiv.org/abs/2209.03003)); Albergo & Vanden-Eijnden 2023 ([2209.15571](https://arxiv.org/abs/2209.15571)); Peebles & Xie 2023 ([2212.09748](https://arxiv.org/abs/2212.09748)); Esser et al. 2024 ([2403.03206](https://arxiv.org/abs/2403.03206)) |
# | 14 the score and the reverse SDE | | §5 (SDEs, stochastic sampling) | Song et al. 2021b ([2011.13456](https://arxiv.org/abs/2011.13456)); Karras et al. 2022 ([2206.00364](https://arxiv.org/abs/2206.00364)); Lu et al. 2022 ([2211.01095](https://arxiv.org/abs/2211.01095)); Lugmayr et al. 2022 ([2201.09865](https://arxiv.org/abs/2201.09865)); Meng et al. 2022 ([2108.01073](https://arxiv.org/abs/2108.01073)) |
#
# Conventions (0-based $t$, $x_0$ always the clean image, $\beta$ a variance, the two ways to write
# the guidance scale) are in `notebooks/CONVENTIONS.md`, with an index diagram.

# %% [markdown]
# ## Check your setup

# %%
import matplotlib.pyplot as plt
import torch

import diffusion_lab as dl
from diffusion_lab.course import check
from diffusion_lab.course.plots import show_images, show_strip

device = dl.pick_device()
print(f"diffusion_lab {dl.__version__} | torch {torch.__version__} | device: {device} | "
      f"fast mode: {'on' if dl.fast_mode() else 'off'}")

# %% [markdown]
# `dl.pick_device()` prefers a CUDA GPU, then Apple's MPS, then the CPU. Everything in the course
# also works on a CPU; a GPU just lets you turn the sizes up.
#
# Next, the data. `dl.load_data` looks for the full dataset first and otherwise uses the small
# subset shipped with the course, so it works offline. It prints which one it found.

# %%
data = dl.load_data("mnist", "train", limit=dl.pick(default=1000, fast=200))
print("images:", tuple(data.images.shape), data.images.dtype,
      f"values in [{data.images.min():.0f}, {data.images.max():.0f}]")
show_images(data.images[:32], nrow=16, size=8, title="real MNIST digits")
plt.show()

# %% [markdown]
# ## Your first generated digits
#
# The course ships a small class-conditional U-Net trained on MNIST (its size and training are
# printed below). We ask it for every digit 0-9, one row per digit, using the **DDIM** sampler with a few dozen
# steps and **classifier-free guidance** of strength 3. You will learn what each of those words
# means in chapters 05-07; for now, just watch it work.

# %%
model, schedule, config = dl.load_pretrained("mnist_cfg", device=device)
print(f"{type(model).__name__}: {dl.count_parameters(model):,} parameters, "
      f"{config['schedule']['name']} schedule with T = {schedule.T}, "
      f"trained for {config['training'].get('steps_done', 0):,} steps")

# %%
per_digit, steps = dl.pick(default=(8, 25), fast=(4, 15), gpu=(16, 50))
labels = torch.arange(10).repeat_interleave(per_digit)  # 0,0,...,1,1,...: one row per digit
samples = dl.sample(model, schedule, len(labels), sampler="ddim", steps=steps, y=labels,
                    guidance=3.0, seed=0, progress=False)
show_images(samples, nrow=per_digit, size=per_digit * 0.7,
            title=f"generated: one row per digit (DDIM, {steps} steps, guidance 3)")
plt.show()

# %% [markdown]
# Each image started as pure Gaussian noise, $28 \times 28$ random numbers. The sampler then
# took `steps` small steps, each time asking the network "how much of this is noise?" and removing
# part of it. Here is that path for a 3, a 5 and an 8. Rows come in pairs: first the current image $x_t$, then the
# network's guess of the final image at that moment, $\hat x_0$.

# %%
_, traj = dl.sample(model, schedule, 3, sampler="ddim", steps=steps, y=[3, 5, 8], guidance=3.0,
                    seed=1, progress=False, return_trajectory=True)
cols = torch.linspace(0, len(traj["t"]) - 1, 6).round().long()
# rows in pairs: x_t of a sample, then its predicted x_0 -> frames of shape (6 steps, 6 rows, 1, 28, 28)
frames = torch.stack([traj["x_t"][cols], traj["x0"][cols]], dim=2).flatten(1, 2)
show_strip(frames, [f"t={traj['t'][i]}" for i in cols],
           title="rows in pairs: x_t while sampling, then the predicted x_0")
plt.show()

# %% [markdown]
# Early on, $x_t$ is mostly noise, yet the guess $\hat x_0$ already shows a blurry digit. The
# sampler keeps refining it.
#
# ## Exercise: from pixels to model inputs
#
# Image files store pixels as integers $0 \dots 255$ (`uint8`). Every model in this course works with
# floats in $[-1, 1]$: black is $-1$, white is $+1$. Why? The noise we add is standard normal, centred
# on 0 with spread 1, so the images should live on the same scale.
#
# Write `to_model_range(pixels)`: take a `uint8` tensor of any shape and return `float32` values
# with $0 \mapsto -1$ and $255 \mapsto 1$, linearly in between.

# %%
def to_model_range(pixels: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    return pixels.float() / 127.5 - 1.0
    ### END SOLUTION


# %% [markdown]
# <!-- hint: to_model_range -->
#
# The check below runs your function on a few test images and compares it with the package's loader
# (`diffusion_lab.data.from_uint8`, the function that produced `data.images` above). When the answer
# is wrong it says where; when it is a mistake learners often make, it names the mistake. Every
# chapter's exercise works this way: `check.<name>(fn)` returns the function to use from then on,
# yours once it passes, the package's until then, so the rest of the notebook runs either way.
# `check.solution("<name>")` prints a worked answer if you want one.

# %%
to_model_range = check.to_model_range(to_model_range)

# %% [markdown]
# The way back, for saving or showing images, is `diffusion_lab.data.to_uint8`. Model outputs can
# overshoot $[-1, 1]$ a little, so it clips. A round trip returns exactly the original pixels:

# %%
from diffusion_lab.data import to_uint8

pixels = torch.randint(0, 256, (8, 28, 28), dtype=torch.uint8)
roundtrip = torch.from_numpy(to_uint8(to_model_range(pixels[:, None]))).squeeze(-1)
assert torch.equal(roundtrip, pixels)
print("uint8 -> [-1, 1] -> uint8 is lossless")

# %% [markdown]
# ## Your progress
#
# Every check that passes is noted on this computer (in a small file in your home folder, nothing is
# sent anywhere; set `DIFFUSION_LAB_PROGRESS=off` to keep no record). Come back to this cell to see
# which exercises you have done, in any order:

# %%
# NBVAL_IGNORE_OUTPUT
check.progress()

# %% [markdown]
# ## What to try next
#
# - Change `guidance=3.0` to `0.0` (ignore the label) or `7.0` (follow it harder) and compare the rows.
# - Change `steps` to 5 or 100: how few steps still give readable digits?
# - Change `seed`: a different seed draws different starting noise, so you get different digits.
# - Then open **01 · Noise schedules** to see how much noise is added at each step, and why.
