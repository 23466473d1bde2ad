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
# # 05 · Sampling with DDPM
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/05_ddpm_sampling.ipynb)
#
# A trained noise predictor is all we need to run the diffusion backwards: start from pure noise and
# take 1000 small denoising steps. Each step is a few lines of arithmetic around one call of the
# network. This notebook writes that step out term by term, then watches a whole run.
#
# **In this notebook you will**
# - split one reverse step into its parts: predicted $x_0$ (eq. 15), posterior mean (eq. 7), noise;
# - check that this equals the textbook update, eq. 11, and the package's `samplers.ddpm_step`;
# - implement the step yourself (exercise) and drive the first steps of a real sampling run with it;
# - scrub through a full 1000-step trajectory, with the model's running guess of the final image;
# - see what the variance choice ($\tilde\beta_t$ or $\beta_t$) and clipping $\hat x_0$ change.

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

import matplotlib.pyplot as plt
import torch

import diffusion_lab as dl
from diffusion_lab import samplers
from diffusion_lab.course import check
from diffusion_lab.course.plots import show_images, show_strip
from diffusion_lab.course.widgets import frame_scrubber

torch.manual_seed(0)
device = dl.pick_device()
model, sched, config = dl.load_pretrained("mnist_cfg", device=device)
model.eval()
print(f"device: {device}; fast mode: {dl.fast_mode()}; model trained {config['training']['steps_done']} steps")

# %% [markdown]
# ## Algorithm 2
#
# Ho et al. (2020) sample like this (with 0-based $t$, as everywhere in this course):
#
# > $x_{T-1} \sim \mathcal{N}(0, I)$
# > **for** $t = T-1, \dots, 1, 0$:
# > &nbsp;&nbsp; $\xi \sim \mathcal{N}(0, I)$ if $t > 0$, else $\xi = 0$
# > &nbsp;&nbsp; $x_{t-1} = \dfrac{1}{\sqrt{\alpha_t}}\Big(x_t - \dfrac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,
#   \epsilon_\theta(x_t, t)\Big) + \tau_t \xi$
# > **return** the last $x$, the generated image
#
# (Ho et al. write $z$ and $\sigma_t$; this course keeps $z$ for latents and $\sigma$ for chapter 09's noise
# level: see CONVENTIONS.md.)
#
# The bracket is the mean of the step, eq. 11. It is compact but opaque. The same number can be
# computed in three readable stages, which is how the package (and most libraries) write it:
#
# 1. **Guess the clean image** by inverting the forward jump with the predicted noise (eq. 15):
#    $$\hat x_0 = \frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)}{\sqrt{\bar\alpha_t}}$$
# 2. **Take the posterior mean**: if $\hat x_0$ were the true clean image, the forward process tells
#    us exactly where $x_{t-1}$ lies on average (eq. 7):
#    $$\tilde\mu_t = \frac{\sqrt{\bar\alpha_{t-1}}\,\beta_t}{1-\bar\alpha_t}\,\hat x_0
#      + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t-1})}{1-\bar\alpha_t}\,x_t$$
#    a weighted average of the guess and the current image;
# 3. **Add noise** of variance $\tau_t^2$: either the posterior variance
#    $\tilde\beta_t = \frac{1-\bar\alpha_{t-1}}{1-\bar\alpha_t}\beta_t$ (eq. 7) or simply $\beta_t$.
#    Ho et al. report that both work; we compare them below.
#
# Substituting stage 1 into stage 2 gives eq. 11 back; we check it numerically instead of by algebra.

# %% [markdown]
# ## One step, term by term
#
# To see something in every term, start from real digits noised to $t = 500$ (halfway), and let the
# model, told the right labels, take one step.

# %%
data = dl.load_data("mnist", "train", limit=64, verbose=False)
n_show = 3
x_clean, y = data.images[:n_show].to(device), data.labels[:n_show].to(device)
t = 500
x_t = dl.q_sample(x_clean, torch.full((n_show,), t), sched, torch.randn_like(x_clean))
with torch.no_grad():
    eps = model(x_t, torch.full((n_show,), t, device=device), y)
z = torch.randn_like(x_t)

ab_t, ab_prev = float(sched.alpha_bar[t]), float(sched.alpha_bar_prev[t])
alpha_t, beta_t = float(sched.alphas[t]), float(sched.betas[t])

x0_hat = (x_t - (1 - ab_t) ** 0.5 * eps) / ab_t**0.5  # 1. eq. 15
coef_x0 = ab_prev**0.5 * beta_t / (1 - ab_t)
coef_xt = alpha_t**0.5 * (1 - ab_prev) / (1 - ab_t)
mean = coef_x0 * x0_hat + coef_xt * x_t  # 2. eq. 7
var = (1 - ab_prev) / (1 - ab_t) * beta_t  # 3. beta_tilde_t
x_prev = mean + var**0.5 * z

mean_eq11 = (x_t - beta_t / (1 - ab_t) ** 0.5 * eps) / alpha_t**0.5
assert torch.allclose(mean, mean_eq11, atol=1e-5), "the three stages should give eq. 11's mean"
pkg_prev, pkg_x0 = samplers.ddpm_step(x_t, eps, t, sched, variance="posterior", noise=z)
assert torch.allclose(x_prev, pkg_prev, atol=1e-5) and torch.allclose(x0_hat, pkg_x0, atol=1e-5)
print(f"t={t}: coef_x0={coef_x0:.5f}, coef_xt={coef_xt:.5f}, tau={var**0.5:.4f}")

# %%
terms = torch.stack([x_t, eps, x0_hat, mean, 10 * var**0.5 * z, x_prev]).cpu()
names = ["$x_t$", "$\\epsilon_\\theta$", "$\\hat x_0$ (15)", "$\\tilde\\mu_t$ (7)", "$10\\,\\tau_t \\xi$",
         "$x_{t-1}$"]
show_strip(terms, names, title=f"one reverse step at t = {t}", size=1.25)
plt.show()

# %% [markdown]
# Read it left to right. The noise prediction looks like noise; subtracting it and rescaling gives
# $\hat x_0$, already a recognisable (smoothed) digit even though $x_t$ is half noise. The mean moves
# only a tiny fraction of the way toward it: `coef_x0` (printed above) is about 0.003, while `coef_xt`
# keeps almost all of $x_t$. So $\tilde\mu_t$ and $x_{t-1}$ look just like $x_t$: one step removes very little noise,
# which is why DDPM needs so many of them. The fresh noise is small too (shown ten times
# brighter): each step trades a little predicted noise for a little new noise.

# %% [markdown]
# ## Exercise: the DDPM step
#
# Write `my_ddpm_step(x_t, eps, t, schedule, noise, clip=False)` returning $x_{t-1}$: stages 1-3 above
# with the posterior variance $\tilde\beta_t$, and **no noise at the last step** ($t = 0$), where the
# posterior variance is 0 anyway and the result is the generated image. With `clip=True`, clamp
# $\hat x_0$ to $[-1, 1]$ before stage 2 (why: below). Schedule tensors are indexed by $t$:
# `schedule.alpha_bar[t]`, `schedule.alpha_bar_prev[t]`, `schedule.alphas[t]`, `schedule.betas[t]`.
#
# Complete it, then run the check under it.

# %%
def my_ddpm_step(x_t, eps, t, schedule, noise, clip=False):
    """x_t -> x_{t-1}: predicted x_0 (eq. 15), posterior mean (eq. 7), plus sqrt(beta_tilde_t) noise."""
    ### BEGIN SOLUTION
    ab_t, ab_prev = float(schedule.alpha_bar[t]), float(schedule.alpha_bar_prev[t])
    alpha_t, beta_t = float(schedule.alphas[t]), float(schedule.betas[t])
    x0_hat = (x_t - (1 - ab_t) ** 0.5 * eps) / ab_t**0.5
    if clip:
        x0_hat = x0_hat.clamp(-1, 1)
    mean = ab_prev**0.5 * beta_t / (1 - ab_t) * x0_hat + alpha_t**0.5 * (1 - ab_prev) / (1 - ab_t) * x_t
    if t == 0:
        return mean
    return mean + ((1 - ab_prev) / (1 - ab_t) * beta_t) ** 0.5 * noise
    ### END SOLUTION


# %% [markdown]
# <!-- hint: ddpm_step -->

# %%
my_ddpm_step = check.ddpm_step(my_ddpm_step)

# %%
assert torch.allclose(my_ddpm_step(x_t, eps, t, sched, z), pkg_prev, atol=1e-5)
print(f"the step at t = {t} matches samplers.ddpm_step")

# %% [markdown]
# ## A whole run
#
# `samplers.sample(..., sampler="ddpm")` is Algorithm 2 around `ddpm_step`. With
# `return_trajectory=True` it also returns every intermediate $x_t$ and every $\hat x_0$. We sample one
# image per class (labels 0, 1, 2, ...) and time it: 1000 network calls, each on the whole batch.

# %%
n = dl.pick(default=8, fast=2, gpu=16)
labels = torch.arange(n) % 10
start = time.perf_counter()
x_out, traj = samplers.sample(model, sched, y=labels, sampler="ddpm", clip_x0=False, seed=0,
                              return_trajectory=True, progress=False)
seconds = time.perf_counter() - start
print(f"{len(traj['t'])} steps for {n} images: {seconds:.1f} s ({len(traj['t']) / seconds:.0f} steps/s)")
show_images(x_out, nrow=8, size=min(8, n), title="DDPM, 1000 steps, labels " + ", ".join(map(str, labels.tolist())))
plt.show()

# %% [markdown]
# ### Your step drives the same run
#
# `sample` draws $x_{T-1}$ and then one noise image per step from a seeded generator, in that order.
# Replaying the same draws through *your* step for the first 50 steps must land on exactly the same
# $x_t$ as the package's run: this ties the exercise to the library.

# %%
K = 50
gen = torch.Generator().manual_seed(0)  # the same seed as above
shape = (n, 1, 28, 28)
x = torch.randn(shape, generator=gen).to(device)  # x_{T-1}
with torch.no_grad():
    for t_ in range(sched.T - 1, sched.T - 1 - K, -1):
        eps_ = model(x, torch.full((n,), t_, device=device), labels.to(device))
        x = my_ddpm_step(x, eps_, t_, sched, torch.randn(shape, generator=gen).to(device))
assert torch.allclose(x.cpu(), traj["x_t"][K], atol=1e-4)
print(f"after {K} steps with {check.whose(my_ddpm_step)} step (now at t = {sched.T - 1 - K}): "
      "identical to the package's trajectory")

# %% [markdown]
# ## Watch it: the trajectory viewer
#
# Left, the state $x_t$ the sampler carries; right, the model's guess $\hat x_0$ of the final image at
# that step. We keep every 25th step (plus the last) to keep the notebook small. At $t = 0$ the step
# adds no noise and its mean is exactly $\hat x_0$, so the right panel at $t = 0$ *is* the output.

# %%
keep = list(range(0, len(traj["t"]), 25)) + [len(traj["t"]) - 1]
frames_xt, frames_x0 = traj["x_t"][keep], traj["x0"][keep]
t_values = [traj["t"][i] for i in keep]

# %%
# NBVAL_IGNORE_OUTPUT
slider = frame_scrubber(frames_xt, t_values, description="t", nrow=4, extra=[frames_x0],
                        panel_titles=["$x_t$", "predicted $x_0$"],
                        title="DDPM sampling: the state x_t and the prediction of x_0")

# %% [markdown]
# Things to notice while scrubbing:
#
# - At first $\hat x_0$ is a rough, noisy blob: the model can only guess where the ink will be.
# - Then $\hat x_0$ turns into one particular digit and sharpens, while $x_t$ still looks like pure
#   noise: the *shape* is decided early, invisibly.
# - $x_t$ becomes readable only near the end, when most of the noise has gone; those steps remove
#   noise and add fine detail, but no longer change which digit it is.
#
# When exactly is the digit decided? Ask the course's MNIST classifier (chapter 08) to read every kept
# $\hat x_0$, and find, for each image, the step from which on it always reads the final digit:

# %%
from diffusion_lab.classifier import features_and_predictions, load_classifier

clf = load_classifier("mnist")[0]


def settled_at(frames):
    """For each image: the first kept t from which the classifier always reads the final digit."""
    _, reads, _ = features_and_predictions(clf, frames.flatten(0, 1).clamp(-1, 1))
    reads = reads.view(len(keep), n)  # (kept steps, images)
    out = []
    for i in range(n):
        wrong = (reads[:, i] != reads[-1, i]).nonzero()
        out.append(t_values[0 if len(wrong) == 0 else min(int(wrong.max()) + 1, len(keep) - 1)])
    return out


for i, (t_x0, t_xt) in enumerate(zip(settled_at(frames_x0), settled_at(frames_xt))):
    print(f"image {i} (label {labels[i].item()}): the classifier reads its final digit in x0_hat from t = {t_x0} on, "
          f"in x_t itself only from t = {t_xt} on")
#
# ## Two choices: the variance, and clipping
#
# **Variance.** $\tilde\beta_t$ is the right variance if $x_0$ were known; $\beta_t$ is the right one if
# $x_0$ were pure noise. Ho et al. found both give similar samples. On the linear schedule they differ
# only near the end of the run:

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.semilogy(sched.betas.sqrt().numpy(), label="$\\sqrt{\\beta_t}$")
ax.semilogy(range(1, sched.T), sched.posterior_variance[1:].sqrt().numpy(),
            label="$\\sqrt{\\tilde\\beta_t}$ (0 at t = 0)")
ax.set_xlabel("t")
ax.set_ylabel("noise added per step")
ax.set_xlim(0, 200)
ax.set_title("beta and beta_tilde, zoomed on the last 200 steps")
ax.legend()
plt.show()

# %% [markdown]
# **Clipping.** Pixels live in $[-1, 1]$, but nothing forces $\hat x_0$ to: eq. 15 divides by
# $\sqrt{\bar\alpha_t}$, about 0.006 at $t = 999$, so any error in $\epsilon_\theta$ is magnified about
# 160 times. How far out of range was the guess along the run above?

# %%
x0_traj = traj["x0"]
overshoot = (x0_traj.abs() - 1).clamp(min=0).mean(dim=(1, 2, 3, 4))  # how far beyond [-1, 1], on average
largest = x0_traj.abs().amax(dim=(1, 2, 3, 4))
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].semilogy(traj["t"], overshoot)
axes[0].set_ylabel("mean overshoot beyond [-1, 1]")
axes[1].semilogy(traj["t"], largest)
axes[1].axhline(1, color="gray", ls="--")
axes[1].set_ylabel("largest |pixel|")
for ax in axes:
    ax.set_xlabel("t")
    ax.invert_xaxis()  # sampling runs from left (t = 999) to right (t = 0)
fig.suptitle("the model's guess of the clean image $\\hat x_0$, along the run")
fig.tight_layout()
plt.show()

# %% [markdown]
# Early in the run (left) $\hat x_0$ is far out of range (the right panel's scale says how far);
# it comes back to about $[-1, 1]$ only later in the run (a tiny overshoot that remains is the
# background sitting a hair below $-1$).
# `clip_x0=True` clamps it to $[-1, 1]$ before the posterior mean, as the DDPM authors' code (and
# diffusers' `clip_sample`) does; the package leaves it off unless asked.
#
# Now three runs from the **same seed** (same starting noise, same noise at every step), changing one
# setting at a time. The first is the run above (posterior variance, no clipping).

# %%
runs = {"beta_tilde, no clipping": x_out}
for name, kw in [("beta, no clipping", dict(variance="beta", clip_x0=False)),
                 ("beta_tilde, clipping", dict(clip_x0=True))]:
    start = time.perf_counter()
    runs[name] = samplers.sample(model, sched, y=labels, sampler="ddpm", seed=0, progress=False, **kw)
    print(f"{name}: {time.perf_counter() - start:.1f} s")

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 0.9 * (-(-n // 4)) + 1))
for ax, (name, images) in zip(axes, runs.items()):
    change = (images - x_out).abs().mean().item()
    show_images(images, nrow=4, ax=ax, title=f"{name}\n(mean |change|: {change:.3f})")
fig.tight_layout()
plt.show()

# %% [markdown]
# Same starting noise, same noise at every step: compare the printed mean changes. The variance
# choice can only change details: the two variances differ only in the last steps, after the digit is
# decided. Clipping matters in proportion to how far out of range $\hat x_0$ strays, and how late;
# for a well-trained model it is back in range long before the end. Clipping earns its place with
# *less* trained models: an early error in the overall brightness of $\hat x_0$ is carried all the way down the chain,
# and an undertrained model's unclipped run can end in all-black or all-white images. Try
# `clip_x0=False` on your model from chapter 04 (`dl.load_checkpoint("runs/04_my_mnist")`).

# %% [markdown]
# ## What to try next
#
# - Move `t = 500` in the term-by-term cell to 950 or 50: how far is $\hat x_0$ from a digit, and how
#   big is `coef_x0`?
# - Combine `variance="beta"` with `clip_x0=True`, or sample with a different `seed`.
# - Replace the labels with `labels = torch.full((n,), 7)`: one class, several seeds. How different
#   are the sevens, and at which $t$ do they part ways in the viewer?
# - Chapter 06 (DDIM) samples in 20-50 steps instead of 1000. Note this notebook's timing first.
