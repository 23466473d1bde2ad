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
# # 04 · Training a DDPM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/04_ddpm_training.ipynb)
#
# The forward process turns any digit into noise, exactly, at any $t$. To run it backwards we need
# one learned ingredient: a network that looks at a noisy image $x_t$, is told $t$, and says which
# noise was added. Training it is a plain regression problem, repeated at random noise levels.
#
# **In this notebook you will**
# - write the DDPM training loss (eq. 14) for one batch, and check it;
# - take one optimisation step by hand: Algorithm 1 in a few lines;
# - train a real U-Net on MNIST with the package's `train()`, watching the loss fall live;
# - sample from your model, save it as a checkpoint, and compare it with the course's shipped model.

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
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import display

import diffusion_lab as dl
from diffusion_lab import claims
from diffusion_lab.claims import say
from diffusion_lab.course import check
from diffusion_lab.course.plots import plot_losses, show_images, show_strip
from diffusion_lab.course.widgets import plot_picker
from diffusion_lab.evaluate import evaluate_model
from diffusion_lab.results import load_results
from diffusion_lab.training import TrainConfig, loss_weight, saved_settings, train

torch.manual_seed(0)
device = dl.pick_device()
sched = dl.make_schedule("linear", 1000)
data = dl.load_data("mnist", "train")
print(f"device: {device}; fast mode: {dl.fast_mode()}")

# %% [markdown]
# ## The objective
#
# Chapter 02 gave the one-jump form of the forward process (eq. 4): for a clean image $x_0$ and fresh
# noise $\epsilon \sim \mathcal{N}(0, I)$,
#
# $$x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon .$$
#
# The network $\epsilon_\theta(x_t, t)$ sees $x_t$ and $t$ and must output $\epsilon$. Ho et al. (2020)
# train it with the "simple" loss, eq. 14:
#
# $$L_\text{simple}(\theta) = \mathbb{E}_{t,\,x_0,\,\epsilon}\Big[\big\lVert \epsilon -
#   \epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\; t\big)\big\rVert^2\Big]
#   \tag{14}$$
#
# with $t$ uniform over $0, \dots, T-1$ (0-based, as everywhere in this course) and $x_0$ drawn from the
# training set. We average over pixels instead of summing (a constant factor).
#
# Why predict the *noise* and not the clean image? Given $x_t$, the two carry the same information:
# eq. 15, $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta)/\sqrt{\bar\alpha_t}$, turns one into the
# other. But $\epsilon$ has unit variance at every $t$, so the regression target has the same scale at
# every noise level, and Ho et al. found this unweighted loss gave better samples than the full
# variational bound it simplifies.
#
# **Algorithm 1** (training) is the loss inside a loop:
#
# > **repeat**
# > &nbsp;&nbsp; $x_0 \sim q(x_0)$ (a batch of training images)
# > &nbsp;&nbsp; $t \sim \text{Uniform}\{0, \dots, T-1\}$
# > &nbsp;&nbsp; $\epsilon \sim \mathcal{N}(0, I)$
# > &nbsp;&nbsp; take a gradient step on $\nabla_\theta \lVert \epsilon - \epsilon_\theta(\sqrt{\bar\alpha_t}\,x_0
#   + \sqrt{1-\bar\alpha_t}\,\epsilon, t)\rVert^2$
# > **until** converged

# %% [markdown]
# ## One batch, as the network sees it
#
# Draw the three random ingredients of Algorithm 1 for eight images, and build $x_t$ by hand.

# %%
B = 8
g = torch.Generator().manual_seed(0)
idx = torch.randint(len(data), (B,), generator=g)
x0, y = data.images[idx], data.labels[idx]
t = torch.randint(sched.T, (B,), generator=g).sort().values  # sorted, to read the figure left to right
noise = torch.randn(x0.shape, generator=g)

ab = sched.alpha_bar.float()[t].view(-1, 1, 1, 1)
x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
assert torch.allclose(x_t, dl.q_sample(x0, t, sched, noise), atol=1e-6)  # same as the package

fig = show_strip(torch.stack([x0, noise, x_t], dim=1), [f"t={v}" for v in t.tolist()])
for row, name in enumerate(["$x_0$", "target $\\epsilon$", "input $x_t$"]):
    fig.axes[row * B].set_ylabel(name)
plt.show()

# %% [markdown]
# The network gets the bottom row and $t$; its answer is graded against the middle row. At large $t$,
# $x_t$ is almost pure noise, so "the noise is $x_t$" is nearly right and the task is easy. At small $t$
# the noise is a faint speckle on a clear digit, and the network has to tell which speckle is noise
# and which is stroke: much harder, as the per-$t$ loss at the end of this notebook shows.

# %% [markdown]
# ## Exercise: the loss of one batch
#
# Write `training_loss`: build $x_t$ from `x0`, `t` and `noise` (eq. 4), ask the model for its noise
# prediction `model(x_t, t, y)`, and return the mean squared error against `noise` (eq. 14), a scalar
# tensor. `schedule.alpha_bar` holds $\bar\alpha_t$ for $t = 0, \dots, T-1$ (float64: convert it).
#
# Complete it, then run the check under it: it runs your function on a small random network and a
# few batches (all nearly clean, all noisy, mixed $t$) and compares with the package's version,
# `dl.diffusion_loss` (in `diffusion_lab/training.py`; `train` calls it).

# %%
def training_loss(model, x0, t, noise, schedule, y=None):
    """DDPM's simple loss (eq. 14) on one batch: MSE between the noise and the model's prediction."""
    ### BEGIN SOLUTION
    ab = schedule.alpha_bar.to(x0)[t].view(-1, 1, 1, 1)
    x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
    return F.mse_loss(model(x_t, t, y), noise)
    ### END SOLUTION


# %% [markdown]
# <!-- hint: training_loss -->

# %%
training_loss = check.training_loss(training_loss)

# %% [markdown]
# ## One step of Algorithm 1, by hand
#
# A fresh U-Net (16 channels at the top level, about 250k weights), an optimiser, and one step:
# forward (the loss), backward (its gradient for every weight), update.

# %%
model = dl.build_model("unet", image_size=28, in_channels=1, base_channels=16, num_classes=10)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
print(f"{dl.count_parameters(model):,} weights")

loss = training_loss(model, x0, t, noise, sched, y)  # forward
opt.zero_grad()
loss.backward()  # backward: d loss / d weight, for every weight
opt.step()  # update: a small move against the gradient (Adam rescales it per weight)
after = training_loss(model, x0, t, noise, sched, y)
print(f"loss on this batch before the step: {loss.item():.4f}, after: {after.item():.4f}")

# %% [markdown]
# The first loss is almost exactly 1: the untrained network predicts zero noise, and the mean of
# $\epsilon^2$ for standard normal noise is 1. Anything below 1 is something learnt.
#
# Repeat that step with a fresh batch each time, and you have the whole training algorithm:

# %%
losses = []
for _ in range(dl.pick(default=60, fast=20)):
    idx = torch.randint(len(data), (64,))
    xb, yb = data.images[idx], data.labels[idx]
    tb = torch.randint(sched.T, (64,))
    loss = training_loss(model, xb, tb, torch.randn_like(xb), sched, yb)
    opt.zero_grad()
    loss.backward()
    opt.step()
    losses.append(loss.item())

plot_losses(losses, smooth=10, title="Algorithm 1, written out")
plt.show()

# %% [markdown]
# ## What the package's `train()` adds
#
# `diffusion_lab.training.train` runs exactly this loop, with the standard extras that make a short
# run give good samples:
#
# - **label dropout**: with probability `p_uncond` (0.1) a label is replaced by the *null label* 10,
#   so the same network also learns to denoise without a class; chapter 07 uses that;
# - **an EMA of the weights** (`ema_decay`=0.999, ramped up from 0 over the first steps): an
#   exponential moving average of the weights, which is what we sample from; it averages away the
#   last steps' noise and gives cleaner images;
# - **min-SNR loss weighting** (Hang et al. 2023): each image's squared error is multiplied by
#   $\min(\text{SNR}_t, 5)/\text{SNR}_t$, where $\text{SNR}_t = \bar\alpha_t/(1-\bar\alpha_t)$. Nearly clean
#   images (small $t$, huge SNR) count less, so more of the training goes to the noisy end, where the
#   shape of a digit is decided (the per-$t$ loss at the end of this notebook shows why that matters);
# - **gradient clipping**, and a **learning rate** that warms up over 100 steps then decays (cosine);
# - **bfloat16 autocast** on GPUs and on CPUs that compute bf16 natively (most laptop CPUs don't, and
#   there emulated bf16 is about 10 times *slower* than float32, so `train` stays in float32);
# - a **budget** in steps and/or minutes, a **progress bar**, periodic **checkpoints** (and resuming),
#   and a hook `on_step(step, loss)` called after every step, which we use for a live loss curve.
#
# ## The recipe: measured, not guessed
#
# On a CPU every minute counts, so `TrainConfig`'s defaults are the winners of a measured sweep
# (`python scripts/recipe_sweep.py quality`; the results page's "Train on a laptop" has every table). Each
# variant changed one setting of a base recipe (width 16, the plain loss of eq. 14), trained for 3
# minutes on a 2-core CPU, and had its guided samples graded by the course's digit classifier:

# %%
sweep = load_results("recipe_quality")  # data/results/recipe_quality.json
print(f"{'variant':<34}{'images/s':>9}{'recognised ± std':>18}{'FD ± std (floor)':>22}")
for r in sweep:
    acc = claims.measure(r, "class_accuracy")
    print(f"{r['name']:<34}{r['images_per_s']:>9.0f}{100 * acc.value:>11.1f}% ± {100 * acc.std:.1f}"
          f"{claims.with_spread(r, 'fd'):>15} ({r['fd_real_floor']:.1f})")
print(f"(n = {sweep[0]['num']} guided samples each, DDIM 20 steps, s = {sweep[0]['guidance']:g}; "
      f"{sweep[0]['minutes']:g} minutes of training each; one seed per row; FD ± its half-sampling std)")

# %% [markdown]
# Read it as a recipe. Class accuracy is a share of $n = 500$ samples and FD an estimate from them, so both
# have a spread ($\pm$ above; chapter 08 explains the rule and the half-sampling spread of FD), and each
# sentence below is printed from the rows by a tested claim: a difference counts only when it is larger
# than twice the combined spread.

# %%
say("recipe_v_prediction", "recipe_v_prediction_fd", "recipe_min_snr", "recipe_min_snr_fd",
    "recipe_v_against_min_snr", "recipe_v_against_min_snr_fd", "recipe_min_snr_seeds", "recipe_min_snr_seeds_fd",
    "recipe_lr", "recipe_lr_fd", "recipe_batch_32", "recipe_batch_32_fd", "recipe_no_attention",
    "recipe_no_attention_fd", "recipe_cosine", "recipe_cosine_fd", "recipe_two_levels", "recipe_two_levels_fd",
    "recipe_ema", "recipe_ema_fd")  # each change: class accuracy, then FD

# %% [markdown]
# - **a narrow U-Net**, chosen for speed (16 channels at the top level; the results page's throughput
#   table compares widths): in a few minutes, seeing more images counts most;
# - **min-SNR weighting** is the default loss: it beat the base recipe on both measures, and two seeds
#   of it could not be told apart. Predicting $v$ recognised more digits still, with an FD not told
#   apart from min-SNR's, and the two were not tried together; the default stays $\epsilon$ with min-SNR
#   because the shipped checkpoints and every later chapter use it, and `TrainConfig(prediction="v")`
#   is one argument away (try it: "What to try next" at the end);
# - a learning rate of 2e-3, a batch of 32 and dropping attention each beat the base recipe too (one seed
#   each), but none was tried together with min-SNR, so the default keeps 1e-3, 64 and attention:
#   whether they add up is an open question, not a measured one;
# - the cosine schedule and two resolution levels instead of three did worse on both measures;
# - the EMA was not told apart from the raw weights at 3 minutes; it is kept, as it costs almost
#   nothing and is what longer runs rely on (not measured here).
#
# So the cell below sets nothing but the data and the budget: 3 minutes on a CPU (fast mode, used by
# the automated tests: 15 seconds; on a GPU: 4 minutes). Set `minutes=10` for the results page's longer run.

# %%
cfg = TrainConfig(
    dataset="mnist",
    conditional=True,
    steps=dl.pick(default=None, fast=500),  # fast mode: a cap, so the automated tests stay short
    minutes=dl.pick(default=3, fast=0.25, gpu=4),
)
print(cfg)

run_dir = Path("runs")  # ignored by git
ckpt_path = run_dir / "04_my_mnist.safetensors"

# %% [markdown]
# Run it. The figure below redraws every few steps while training runs. It plots the loss the
# optimiser sees: with min-SNR weighting, each image's squared error times its weight, so it is not
# the plain MSE of eq. 14 (the per-$t$ curves further down are).

# %%
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6.5, 3))
plt.close(fig)  # shown through the display handle, which on_step updates
handle = display(fig, display_id=True)
history, every = [], dl.pick(default=25, fast=10)
loss_name = "min-SNR weighted loss" if cfg.loss_weighting == "min_snr" else "MSE (eq. 14)"


started = time.perf_counter()


def time_left(step):
    """How far the run is and what is left: by the clock for a minutes budget, by steps for a steps one."""
    elapsed = time.perf_counter() - started
    if cfg.minutes is not None:
        return f"{elapsed:.0f} s of {60 * cfg.minutes:.0f} s, {max(0, 60 * cfg.minutes - elapsed):.0f} s left"
    return f"{step} of {cfg.steps} steps, about {elapsed / step * (cfg.steps - step):.0f} s left"


def on_step(step, loss):
    history.append(loss)
    if step % every == 0:
        ax.clear()
        plot_losses(history, ax=ax, smooth=every, title=f"training, step {step}: {time_left(step)}", ylabel=loss_name)
        ax.set_yscale("log")
        handle.update(fig)


result = train(cfg, out=ckpt_path, data=data, device=device, on_step=on_step, progress=False)
ax.clear()
plot_losses(history, ax=ax, smooth=every, title=f"training, {result.step} steps", ylabel=loss_name)
ax.set_yscale("log")
handle.update(fig)

# %%
tail = result.losses[-50:]
print(f"{result.step} steps in {result.seconds:.0f} s ({result.images_per_second:.0f} images/s); "
      f"mean {loss_name} of the last {len(tail)} steps: {sum(tail) / len(tail):.4f}")

# %% [markdown]
# The loss drops fast and then creeps down slowly. It never approaches 0: at small $t$ the noise is
# genuinely unpredictable in part, so even a perfect model keeps some error. Whether the model is
# any good shows in its samples.
#
# ## Samples from your model
#
# `dl.sample` runs the reverse process from pure noise: DDPM's Algorithm 2, 1000 small denoising
# steps (chapter 05 takes it apart). One image per class, label $k$ in position $k$. `clip_x0=True`
# keeps the model's running guess of the clean image inside the pixel range $[-1, 1]$, which rescues
# short-trained models (chapter 05 shows why). (In fast mode, used by the automated tests, we take 50
# steps of the faster DDIM sampler from chapter 06 instead.)

# %%
labels = torch.arange(10)
how = dl.pick(default=dict(sampler="ddpm"), fast=dict(sampler="ddim", steps=50)) | {"clip_x0": True}
mine = dl.sample(result.model, sched, y=labels, seed=0, progress=False, **how)
show_images(mine, nrow=10, title=f"your model after {result.seconds / 60:.1f} min ({result.step} steps)")
plt.show()

# %% [markdown]
# Which of them would you call the digit that was asked for? A short run usually gets some right and
# leaves others broken or ambiguous: the network has learnt roughly what the noise looks like, not yet
# precisely, and sampling chains a thousand of its predictions. These were drawn without guidance;
# classifier-free guidance (chapter 07) pushes each sample towards its class. Rather than judge by
# eye, let a classifier grade them.
#
# ## Grade your model
#
# Sample digits of every class with the fast sampler of chapter 06 (DDIM, 20 steps) and
# classifier-free guidance (chapter 07, $s = 3$), and ask the course's MNIST classifier which digit
# each one is. The same measurement for the results page's 3- and 10-minute runs is printed under it.

# %%
grade = evaluate_model(result.model, sched, "mnist", num=dl.pick(default=200, fast=20), steps=20, guidance=3.0,
                       clip_x0=True)
yours = claims.measure(grade, "class_accuracy")
print(f"yours ({result.seconds / 60:.1f} min): the classifier recognises the requested digit in "
      f"{100 * yours.value:.0f}% ± {100 * yours.std:.0f} of n = {grade['num']} samples")
for r in load_results("recipe_minutes"):
    if r["model"] == "unet" and r["dataset"] == "mnist":
        m = claims.measure(r, "class_accuracy")
        print(f"results page, {r['minutes']:g} min on the full training set: {100 * m.value:.1f}% ± {100 * m.std:.1f} "
              f"of n = {r['num']} samples ({r['command']})")

# %% [markdown]
# (Those runs had the full 60,000 training images and a 2-core CPU to themselves; yours used the data
# `load_data` found, printed at the top, on your machine.)
#
# ## Save, reload, sample again
#
# `train(..., out=path)` wrote the checkpoint: the EMA weights as safetensors and a JSON file with
# everything needed to rebuild the model (architecture, schedule, classes, training settings).

# %%
print(sorted(p.name for p in run_dir.glob("04_my_mnist*")))
reloaded, reloaded_sched, config = dl.load_checkpoint(ckpt_path, device=device)
print({k: config["training"][k] for k in ("steps_done", "seconds", "base_channels", "p_uncond")})

saved = reloaded.state_dict()
assert all(torch.equal(v, saved[k]) for k, v in result.model.state_dict().items()), "weights differ"
print("the reloaded weights are exactly the trained EMA weights")

# %% [markdown]
# ## Your model against the shipped one
#
# The course ships `mnist_cfg`, trained with the same code. Its settings are not all yours: the
# differences are printed first. Then the same seed, labels and sampler for both.

# %%
shipped, shipped_sched, shipped_config = dl.load_pretrained("mnist_cfg", device=device)
# saved_settings: the recipe it was trained with, including settings older than the checkpoint
# (mnist_cfg predates the loss_weighting field: it was trained with the plain loss, "simple").
info = {**shipped_config["training"], **saved_settings(shipped_config)}
for key in ("base_channels", "steps_done", "batch_size", "loss_weighting", "lr", "p_uncond", "data_source"):
    mark = "" if info.get(key) == config["training"].get(key) else "   <- differs"
    print(f"{key:<15} yours: {str(config['training'].get(key))[:40]:<42} shipped: {str(info.get(key))[:40]}{mark}")
theirs = dl.sample(shipped, shipped_sched, y=labels, seed=0, progress=False, **how)

fig, axes = plt.subplots(2, 1, figsize=(8, 2.4))
show_images(mine, nrow=10, ax=axes[0],
            title=f"yours: {dl.count_parameters(result.model) / 1e6:.2f}M weights, {result.step} steps")
show_images(theirs, nrow=10, ax=axes[1],
            title=f"shipped: {dl.count_parameters(shipped) / 1e6:.2f}M weights, {info['steps_done']} steps")
fig.tight_layout()
plt.show()

# %% [markdown]
# Where do the two models differ? Measure both on one batch of training images at a range of fixed
# $t$ (same images, same noise for both), with the plain, unweighted error of eq. 14: your
# `training_loss`. The dashed line is the min-SNR weight $\min(\text{SNR}_t, 5)/\text{SNR}_t$ of every
# $t$ (right axis).

# %%
@torch.no_grad()
def loss_per_t(net, ts, n=64, seed=1):
    gen = torch.Generator().manual_seed(seed)
    idx = torch.randint(len(data), (n,), generator=gen)
    xb, yb = data.images[idx].to(device), data.labels[idx].to(device)
    nb = torch.randn(xb.shape, generator=gen).to(device)
    out = []
    for tv in ts:
        tb = torch.full((n,), int(tv), device=device)
        out.append(training_loss(net, xb, tb, nb, sched, yb).item())
    return out


ts = [0, 2, 5, 10, 20, 50, 100, 200, 400, 600, 800, 999][:: dl.pick(default=1, fast=3)]
weight = loss_weight(torch.tensor(ts), sched, "min_snr")  # min(SNR_t, 5) / SNR_t, as train() uses it
fig, ax = plt.subplots(figsize=(6.5, 3.2))
ax.plot(ts, loss_per_t(result.model, ts), "o-", label=f"yours ({config['training']['loss_weighting']})")
ax.plot(ts, loss_per_t(shipped, ts), "o-", label=f"shipped ({info['loss_weighting']})")
ax.set_xscale("symlog", linthresh=10)
ax.set_yscale("log")
ax.set_xlabel("t")
ax.set_ylabel("MSE(eps, eps_hat) at this t")
ax.legend(loc="lower left", fontsize=8)
ax2 = ax.twinx()
ax2.plot(ts, weight, "k--", lw=1)
ax2.set_yscale("log")
ax2.set_ylabel("min-SNR weight", fontsize=8)
plt.show()
print(f"min-SNR weight at t = 0: {float(weight[0]):.1e}; at t = {ts[-1]}: {float(weight[-1]):.1e}")

# %% [markdown]
# Both curves fall with $t$: nearly clean images are where the noise is hardest to predict (it hides
# among the strokes). Mind the log scales. The two models differ in several settings at once (printed
# above: size, training length, and possibly the loss weighting), so this comparison cannot say which
# difference caused which gap. One cause is worth singling out: the **loss weighting**. Min-SNR
# multiplies the error at $t = 0$ by the tiny weight printed above, so a model trained with it barely
# practises nearly clean images and spends its effort at larger $t$, where the shape of a digit is
# decided. A model trained with the plain loss weights every $t$ alike.
#
# At large $t$ the loss is tiny, yet it matters: the guess of the clean image, eq. 15, divides the
# noise error by $\sqrt{\bar\alpha_t}$ (0.006 at $t = 999$). That is why a short-trained model's early
# guesses are far off, and why it benefits from `clip_x0=True`.
#
# ### Play: what the loss weighting and label dropout change
#
# To see one setting's effect, change only that setting. `scripts/loss_per_t.py` trained six models
# for the same number of steps with the default recipe, changing only the loss weighting (plain or
# min-SNR) and the label-dropout rate $p_\text{uncond}$ (0, 0.1, 0.5), then measured each one's plain
# error per $t$, with the true labels (solid) and with the null label (dashed: the unconditional model
# that guidance needs in chapter 07). Pick a run; the others stay in grey.

# %%
curves = load_results("loss_per_t")  # data/results/loss_per_t.json
runs = {(r["loss_weighting"], r["p_uncond"]): r for r in curves["runs"]}
print(f"{len(runs)} runs of {curves['steps']} steps each, measured on {curves['eval_images']} training images; "
      f"{curves['cpu']}, {curves['threads']} thread; `{curves['command']}`")


def draw_run(ax, weighting, p_uncond):
    for (w, p), r in runs.items():
        if (w, p) != (weighting, p_uncond):
            ax.plot(curves["t"], r["loss_cond"], color="0.85", lw=1)
    r = runs[(weighting, p_uncond)]
    ax.plot(curves["t"], r["loss_cond"], "o-", color="C0", ms=3, label="with its label")
    ax.plot(curves["t"], r["loss_uncond"], "s--", color="C1", ms=3, label="with the null label")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("MSE(eps, eps_hat)")
    ax.set_title(f"loss weighting {weighting}, p_uncond = {p_uncond:g} ({r['steps']} steps)", fontsize=9)
    ax.legend(fontsize=8)


def draw_all(ax):
    for (w, p), r in runs.items():
        ax.plot(curves["t"], r["loss_cond"], "-" if w == "min_snr" else ":", label=f"{w}, p_uncond {p:g}")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("MSE(eps, eps_hat), with the label")
    ax.legend(fontsize=7, ncol=2)


# %%
# NBVAL_IGNORE_OUTPUT
controls = plot_picker({"weighting": ["simple", "min_snr"], "p_uncond": sorted({p for _, p in runs})}, draw_run,
                       static=draw_all, title="error per t after the same number of steps")

# %%
for t_show in (0, 999):
    i = curves["t"].index(t_show)
    print(f"t = {t_show}: " + ", ".join(f"{w} p={p:g}: {r['loss_cond'][i]:.4f}" for (w, p), r in runs.items()))
i = curves["t"].index(500)
print("null label at t = 500: " + ", ".join(f"p={p:g}: {r['loss_uncond'][i]:.3f}"
                                         for (w, p), r in runs.items() if w == "simple"))

# %% [markdown]
# What to look for (compare the printed numbers):
#
# - **Weighting**: at $t = 0$ the min-SNR runs have a higher error than the plain runs with the same
#   $p_\text{uncond}$; at the noisy end it is the other way round, or a tie. The weight moved the
#   effort, as designed.
# - **Label dropout**: with $p_\text{uncond} = 0$ the null label is never trained, so its (dashed)
#   error stays high: such a model has no unconditional prediction, and classifier-free guidance
#   (chapter 07) has nothing to extrapolate from. A larger $p_\text{uncond}$ trains the unconditional
#   model more, at a small cost to the conditional one.

# %% [markdown]
# ## Training from the command line
#
# For longer runs, use the package's command line instead of a notebook (run it from the repository
# root; it prints a summary and writes the checkpoint and its JSON file):
#
# ```bash
# python -m diffusion_lab train --dataset mnist --conditional --minutes 10 --out runs/mnist_cfg
# ```
#
# On the full MNIST training set (`python -m diffusion_lab download --dataset mnist`, online once), ten
# minutes on a 2-core CPU give the grade printed under "Grade your model" (the results page has the table
# and the command that measures it). `--resume`
# continues a run from its checkpoint; `python -m diffusion_lab train --help` lists the other
# settings (model size, schedule, loss weighting, batch size, label dropout, ...).

# %% [markdown]
# ## What to try next
#
# - Train without labels: `conditional=False`. Which samples look better after the same minutes?
# - Train with `prediction="v"` and then with `prediction="v", loss_weighting="min_snr"`: does the
#   combination the sweep never tried beat both? Grade each as in "Grade your model" (500 samples).
#   The same question for min-SNR with `batch_size=32`, `lr=2e-3` or `attention=False`.
# - Set `ema_decay=0.0` (sample from the raw weights): do the samples get noisier?
# - Change `schedule` to `"cosine"` and compare the per-$t$ loss curve with the linear one.
# - Double `minutes` (or run the command line for 10 minutes) and re-run the comparison with the
#   shipped model: how much of the gap closes?
# - Replace `training_loss` in the hand-written loop with a version that predicts $x_0$ instead of
#   $\epsilon$ (target `x0`); what happens to the loss at large $t$?
