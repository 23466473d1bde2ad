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
# # 02 · Forward noising
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/02_forward_noising.ipynb)
#
# The forward process is defined one small step at a time, but training needs $x_t$ for a random
# $t$ thousands of times per second. Walking $t$ steps each time would be far too slow. Luckily
# there is a shortcut: a single jump from $x_0$ to $x_t$ with exactly the same distribution.
#
# **In this notebook you will**
# - implement one noising step (eq. 2) and the closed-form jump (eq. 4);
# - check with many samples that $t$ small steps and one jump agree in distribution;
# - watch the pixel values of real digits drift into a standard normal;
# - see that a schedule only changes *when* an image reaches a noise level, not *how* it looks there.

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
import math

import matplotlib.pyplot as plt
import torch

import diffusion_lab as dl
from diffusion_lab.course import check
from diffusion_lab.course.plots import show_images
from diffusion_lab.course.widgets import frame_scrubber

torch.manual_seed(0)
T = 1000
sched = dl.make_schedule("linear", T)
data = dl.load_data("mnist", "train", limit=dl.pick(default=512, fast=256))

# %% [markdown]
# ## Two ways to get $x_t$
#
# **Step by step** (Ho et al. 2020, eq. 2). Shrink the previous image a little and add a little noise:
#
# $$x_t = \sqrt{1-\beta_t}\,x_{t-1} + \sqrt{\beta_t}\,\epsilon_t, \qquad \epsilon_t \sim \mathcal{N}(0, I). \tag{2}$$
#
# **In one jump** (eq. 4). With $\bar\alpha_t = \prod_{s \le t}(1 - \beta_s)$:
#
# $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon, \qquad \epsilon \sim \mathcal{N}(0, I). \tag{4}$$
#
# Why they agree: suppose $x_{t-1}$ already has the form of eq. 4, mean $\sqrt{\bar\alpha_{t-1}}\,x_0$
# and variance $1-\bar\alpha_{t-1}$. One more step multiplies it by $\sqrt{\alpha_t}$ and adds independent
# noise of variance $\beta_t = 1 - \alpha_t$. Means scale and variances of independent Gaussians add:
#
# $$\text{mean} = \sqrt{\alpha_t}\sqrt{\bar\alpha_{t-1}}\,x_0 = \sqrt{\bar\alpha_t}\,x_0, \qquad
# \text{variance} = \alpha_t(1-\bar\alpha_{t-1}) + (1-\alpha_t) = 1-\bar\alpha_t .$$
#
# A sum of Gaussians is Gaussian, so the two distributions are identical. (Here $t$ is 0-based and the
# clean image counts as step $-1$: $x_0$ passes through steps $0, 1, \dots, t$ to become $x_t$.)
#
# First, the step. We write it from scratch and check it against `dl.q_step` with the same noise:

# %%
def my_q_step(x_prev, t, betas, noise):
    beta = betas[t].float()
    return (1 - beta).sqrt() * x_prev + beta.sqrt() * noise


x0 = data.images[:4]
noise = torch.randn_like(x0)
for t in (0, 10, 500, T - 1):
    assert torch.allclose(my_q_step(x0, t, sched.betas, noise), dl.q_step(x0, t, sched, noise), atol=1e-6)
print("my_q_step matches dl.q_step")

# %% [markdown]
# ## Exercise: the jump
#
# Complete `q_sample(x0, t, alpha_bar, noise)` following eq. 4. Here `x0` and `noise` have shape
# $(B, C, H, W)$ and `t` is a tensor of $B$ timesteps, one per image, so you need $\bar\alpha_t$
# reshaped to $(B, 1, 1, 1)$ to broadcast. `alpha_bar` is the schedule's float64 tensor: return
# $x_t$ in the dtype of `x0`. Then run the check under it.

# %%
def q_sample(x0, t, alpha_bar, noise):
    ### BEGIN SOLUTION
    ab = alpha_bar[t].reshape(-1, 1, 1, 1).to(x0.dtype)
    return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    ### END SOLUTION


# %% [markdown]
# <!-- hint: q_sample -->

# %%
q_sample = check.q_sample(q_sample)

# %%
# Your function and the package agree on a real batch, with a different t for every image.
t = torch.randint(0, T, (len(x0),))
assert torch.allclose(q_sample(x0, t, sched.alpha_bar, noise), dl.q_sample(x0, t, sched, noise), atol=1e-6)
print("q_sample matches dl.q_sample for t =", t.tolist())

# %% [markdown]
# ## Do they really agree? Many samples of one digit
#
# Eq. 4 is a statement about distributions, not about single images: walking $t$ steps with fresh
# noise each time and jumping once with a different $\epsilon$ give *different* images that are
# *equally likely*. So we test it the way you would test any claim about a distribution: draw
# many samples each way and compare their statistics.
#
# We take one digit, make `n` copies of it, and walk all of them through all $T$ steps with
# `my_q_step`, recording the mean and standard deviation across copies of two pixels: one on the
# stroke (white, $x_0 = +1$) and one in the background (black, $x_0 = -1$).

# %%
n = dl.pick(default=2000, fast=500)
digit = data.images[1:2]  # (1, 1, 28, 28)
bright = divmod(int(digit.flatten().argmax()), 28)  # (row, col) of a stroke pixel
dark = (2, 2)  # a corner: always background
t_check = 250  # where we also keep the whole batch for a closer look

gen = torch.Generator().manual_seed(1)
x = digit.expand(n, -1, -1, -1).clone()
stats = torch.zeros(T, 2, 2)  # (t, pixel, [mean, std])
for t in range(T):
    x = my_q_step(x, t, sched.betas, torch.randn(x.shape, generator=gen))
    for j, (r, c) in enumerate([bright, dark]):
        stats[t, j] = torch.stack([x[:, 0, r, c].mean(), x[:, 0, r, c].std()])
    if t == t_check:
        walked = x.clone()
print(f"walked {n} copies through {T} steps; pixels: stroke {bright}, background {dark}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
for j, ((r, c), name) in enumerate(zip([bright, dark], ["stroke pixel", "background pixel"])):
    axes[0].plot(stats[:, j, 0], lw=3, alpha=0.4, label=f"{name}: walked")
    axes[0].plot(sched.sqrt_alpha_bar * digit[0, 0, r, c], "k--", lw=1)
axes[1].plot(stats[:, :, 1], lw=3, alpha=0.4)
axes[1].plot(sched.sqrt_one_minus_alpha_bar, "k--", lw=1, label="eq. 4")
axes[0].set_title(r"mean over copies vs. $\sqrt{\bar\alpha_t}\,x_0$ (dashed)")
axes[1].set_title(r"std over copies vs. $\sqrt{1-\bar\alpha_t}$ (dashed)")
axes[0].legend(fontsize=8)
axes[1].legend(fontsize=8)
for ax in axes:
    ax.set_xlabel("t")
plt.show()

# %% [markdown]
# The thick lines (empirical, from the step-by-step walk) sit on the dashed lines (eq. 4) at every
# $t$. Now the whole image at $t = 250$: we jump `n` fresh copies there with `dl.q_sample` and compare
# every pixel's mean and standard deviation. Two different random samples never agree exactly; the
# typical mismatch of a mean over $n$ samples is its standard error, $\sigma / \sqrt{n}$. We require
# every pixel to agree within 5 standard errors (for the standard deviations, the error is about
# $\sigma / \sqrt{2n}$).

# %%
jumped = dl.q_sample(digit.expand(n, -1, -1, -1), t_check, sched)
sigma = sched.sqrt_one_minus_alpha_bar[t_check].item()
d_mean = (walked.mean(0) - jumped.mean(0)).abs().max().item()
d_std = (walked.std(0) - jumped.std(0)).abs().max().item()
se_mean, se_std = sigma * math.sqrt(2 / n), sigma / math.sqrt(n)  # of a difference of two estimates
print(f"t={t_check}: largest per-pixel difference of means {d_mean:.3f} ({d_mean / se_mean:.1f} standard errors),"
      f" of stds {d_std:.3f} ({d_std / se_std:.1f} standard errors)")
assert d_mean < 5 * se_mean and d_std < 5 * se_std

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3), gridspec_kw={"width_ratios": [1, 1, 1.6]})
show_images(walked[:9], nrow=3, ax=axes[0], title=f"walked: x_{t_check}")
show_images(jumped[:9], nrow=3, ax=axes[1], title=f"jumped: x_{t_check}")
(r, c) = bright
grid = torch.linspace(-4, 4, 200)
mu = sched.sqrt_alpha_bar[t_check].item() * digit[0, 0, r, c].item()
axes[2].hist(walked[:, 0, r, c], bins=40, density=True, alpha=0.5, label="walked (eq. 2, t+1 steps)")
axes[2].hist(jumped[:, 0, r, c], bins=40, density=True, alpha=0.5, label="jumped (eq. 4)")
axes[2].plot(grid, torch.exp(-((grid - mu) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi)), "k--",
             label=rf"$\mathcal{{N}}({mu:.2f},\ {sigma:.2f}^2)$")
axes[2].set_title(f"stroke pixel {bright} at t={t_check}, {n} samples each")
axes[2].legend(fontsize=8)
plt.show()

# %% [markdown]
# Sample for sample the two grids differ, but as collections they are indistinguishable, and the
# histograms of one pixel land on the same Gaussian. From now on we always use the jump. It costs
# one multiply-add whatever $t$ is, which is what makes training with random $t$ practical.
#
# ## Pixels drift to $\mathcal{N}(0, 1)$
#
# At $t = 0$ the pixel values of MNIST are anything but Gaussian: most pixels are black ($-1$) and
# a few are white ($+1$). As $t$ grows, each value is shrunk towards 0 by $\sqrt{\bar\alpha_t}$ and
# blurred by noise of size $\sqrt{1-\bar\alpha_t}$, until the histogram of all pixels of all images
# is the standard normal (dashed). That is the distribution sampling starts from.

# %%
images = data.images
t_show = [0, 50, 150, 300, 600, T - 1]
fig, axes = plt.subplots(1, len(t_show), figsize=(2.2 * len(t_show), 2.4), sharey=True)
grid = torch.linspace(-4, 4, 200)
for ax, t in zip(axes, t_show):
    xt = images if t == 0 else dl.q_sample(images, t, sched)
    ax.hist(xt.flatten(), bins=80, range=(-4, 4), density=True, color="tab:blue")
    ax.plot(grid, torch.exp(-(grid**2) / 2) / math.sqrt(2 * math.pi), "k--", lw=1)
    ax.set_title(rf"t={t}, $\sqrt{{\bar\alpha}}$={sched.sqrt_alpha_bar[t]:.2f}", fontsize=9)
    ax.set_ylim(0, 1.2)
    ax.set_yticks([])
fig.suptitle(f"all pixel values of {len(images)} digits (the first panel shows the clean images)", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# The first panel's tall spike at $-1$ is cut off: about 80% of MNIST pixels are background.
#
# ## Same image, different schedules
#
# Each schedule takes the image to the same noise levels, just at different times. Eq. 4 says
# that $x_t$ depends on $t$ only through $\bar\alpha_t$. So with the same $\epsilon$, two schedules
# produce *the same image* whenever their $\bar\alpha$ values match. Below, each row is one schedule;
# each column picks, for that schedule, the $t$ whose $\bar\alpha_t$ is closest to a target value.
# The images in a column match; only the $t$ printed above them differ.

# %%
schedules = {name: dl.make_schedule(name, T) for name in dl.SCHEDULES}
targets = [0.9, 0.6, 0.3, 0.1, 0.02]
eps = torch.randn(digit.shape, generator=torch.Generator().manual_seed(3))
fig, axes = plt.subplots(len(schedules), len(targets), figsize=(1.5 * len(targets), 1.6 * len(schedules)))
for i, (name, s) in enumerate(schedules.items()):
    for j, target in enumerate(targets):
        t = int((s.alpha_bar - target).abs().argmin())
        img = dl.q_sample(digit, t, s, eps)[0, 0]
        axes[i, j].imshow(((img + 1) / 2).clamp(0, 1), cmap="gray", vmin=0, vmax=1)
        axes[i, j].set_xticks([])
        axes[i, j].set_yticks([])
        axes[i, j].set_title(f"t={t}", fontsize=9)
    axes[i, 0].set_ylabel(name, fontsize=9)
for j, target in enumerate(targets):
    axes[-1, j].set_xlabel(rf"$\bar\alpha \approx {target}$", fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# This is why people compare schedules by their log-SNR curves (chapter 01) rather than by
# $\beta_t$: the schedule is a clock that decides how many of the $T$ steps the model spends at
# each noise level.
#
# ## Scrub through time
#
# Eight digits noised under the linear schedule (left in the viewer) and the cosine schedule (right),
# with the same $\epsilon$; the static strip shows two of them under each. Frames are precomputed, so
# the slider is instant.

# %%
batch = data.images[:8]
eps8 = torch.randn(batch.shape, generator=torch.Generator().manual_seed(4))
ts = list(range(0, T, dl.pick(default=20, fast=100))) + [T - 1]
frames_lin = torch.stack([dl.q_sample(batch, t, schedules["linear"], eps8) for t in ts])
frames_cos = torch.stack([dl.q_sample(batch, t, schedules["cosine"], eps8) for t in ts])
print("frames:", tuple(frames_lin.shape), "per schedule")

# %%
# NBVAL_IGNORE_OUTPUT
slider = frame_scrubber(frames_lin, ts, description="t", nrow=4, extra=[frames_cos],
                        panel_titles=["linear", "cosine"], static_images=2,
                        title="the same digits and noise under two schedules")

# %% [markdown]
# ## What to try next
#
# - Change `t_check` to 10 or 900 and rerun the comparison: does the agreement hold at every $t$?
# - Lower `n` to 50. The tolerance widens as $1/\sqrt{n}$; the histograms get ragged but still agree.
# - In the histogram figure, use `dl.make_schedule("cosine", T)` and see the pixels keep their
#   two-peaked shape for longer.
# - Next, **03 · The U-Net**: the network that learns to predict $\epsilon$ from $x_t$ and $t$.
