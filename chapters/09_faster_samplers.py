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
# # 09 · Faster samplers: the ODE view, Euler, Heun and DPM-Solver++
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/09_faster_samplers.ipynb)
#
# Chapter 06 cut sampling from 1000 network calls to 20 with DDIM. Can we go lower without losing
# quality? Yes, once we see what deterministic DDIM really is: a numerical solver for an ordinary
# differential equation, and the *crudest* one (Euler's method). Better solvers of the same equation
# reach the same images in fewer steps, with the same trained network.
#
# **In this notebook you will**
# - rewrite DDIM in "sigma space" and see that it is Euler's method for the probability-flow ODE;
# - write the Euler step yourself (exercise) and build a sampler from it;
# - see why Euler drifts where the path bends, and how Heun's correction and DPM-Solver++'s
#   exponential integrator fix it, first on a 1-D toy, then on the real network;
# - compare the samplers side by side with a slider over the number of model calls;
# - read the measured table: Fréchet distance, precision, recall and class accuracy against model calls.

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
import inspect
import math

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

import diffusion_lab as dl
from diffusion_lab import samplers, solvers
from diffusion_lab.claims import say
from diffusion_lab.course import check
from diffusion_lab.course import sampler_sweep as sweep
from diffusion_lab.course.widgets import sampler_viewer
from diffusion_lab.metrics import precision_recall
from diffusion_lab.results import load_results

torch.manual_seed(0)
device = dl.pick_device()
model, sched, config = dl.load_pretrained("mnist_cfg", device=device)
amp = True  # bf16 autocast in the network where the hardware has it natively (else float32)
print(f"device: {device}; fast mode: {dl.fast_mode()}")

# %% [markdown]
# ## DDIM in sigma space
#
# The forward process makes $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$. Divide by
# $\sqrt{\bar\alpha_t}$:
#
# $$\tilde x = \frac{x_t}{\sqrt{\bar\alpha_t}} = x_0 + \sigma_t\,\epsilon, \qquad
#   \sigma_t = \sqrt{\frac{1-\bar\alpha_t}{\bar\alpha_t}}.$$
#
# In these variables (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based Generative
# Models") an image at time $t$ is simply *the clean image plus noise of size $\sigma_t$*. The network
# still sees $x_t = \tilde x / \sqrt{1+\sigma_t^2}$ (because $\bar\alpha_t = 1/(1+\sigma_t^2)$), so nothing
# about training changes. The noise level runs from $\sigma \approx 0.01$ at $t = 0$ to $\sigma \approx 157$
# at $t = 999$ with our linear schedule:

# %%
sigma_table = solvers.sigmas_of(sched)
fig, ax = plt.subplots(figsize=(6, 2.8))
ax.semilogy(sigma_table)
ax.set_xlabel("timestep t")
ax.set_ylabel("$\\sigma_t$ (log scale)")
ax.set_title(f"noise level: {sigma_table[0]:.3f} at t = 0, {sigma_table[-1]:.0f} at t = {sched.T - 1}", fontsize=10)
plt.show()

# %% [markdown]
# Now take deterministic DDIM (chapter 06, eq. 12 with $\eta = 0$) from $t$ to $s$:
# $x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s}\,\hat\epsilon$. Divide by $\sqrt{\bar\alpha_s}$ and use
# $\hat x_0 = \tilde x_t - \sigma_t\hat\epsilon$:
#
# $$\tilde x_s = \hat x_0 + \sigma_s\,\hat\epsilon.$$
#
# Substitute $\hat x_0$ and the step becomes one step of **Euler's method** (new state = old state +
# step length x slope) for the ordinary differential equation
#
# $$\frac{d\tilde x}{d\sigma} = \hat\epsilon\big(\tilde x/\sqrt{1+\sigma^2},\ t(\sigma)\big):$$
#
# walk in $\sigma$ from large to small, and at each point the slope is the predicted noise. This ODE is
# the *probability-flow ODE* (Song et al. 2021, "Score-Based Generative Modeling through SDEs", eq. 13):
# its solutions carry pure noise to images with the same distribution at every $t$ as DDPM's random
# walk, but without any randomness after the start. DDIM was solving it all along. Check it on the
# package's two step functions:

# %%
g = torch.Generator().manual_seed(0)
x_t, eps = torch.randn(4, 1, 28, 28, generator=g), torch.randn(4, 1, 28, 28, generator=g)
t, s = 600, 550
ddim_x, _ = samplers.ddim_step(x_t, eps, t, s, sched, eta=0.0)
to_sigma = lambda x, t: x * math.sqrt(1 + sigma_table[t] ** 2)  # x_t -> x~ (divide by sqrt(alpha_bar))
euler_x = solvers.euler_step(to_sigma(x_t, t), eps, sigma_table[t], sigma_table[s])
print(f"DDIM step, in sigma space, minus the Euler step: {(to_sigma(ddim_x, s) - euler_x).abs().max():.1e}")

# %% [markdown]
# ## Exercise: the Euler step
#
# Write `my_euler_step(x, eps, sigma, sigma_next)`: one Euler step of $d\tilde x/d\sigma = \hat\epsilon$ from
# `sigma` to `sigma_next`, where `x` is $\tilde x$ (sigma space) and `eps` the network's prediction there.
# Derive it first: substitute $\hat x_0 = \tilde x_t - \sigma_t \hat\epsilon$ into the DDIM step above, or apply
# Euler's rule to the ODE (which way does $\sigma$ move, and so what is the sign of the step?). The
# cell above already checks the package's version against DDIM; yours must agree with both. One line.
# Complete it, then run the check under it: it names the mistake when it recognises one.

# %%
def my_euler_step(x, eps, sigma, sigma_next):
    """One Euler step of dx~/dsigma = eps from sigma to sigma_next (Karras et al. 2022, Alg. 1)."""
    ### BEGIN SOLUTION
    return x + (sigma_next - sigma) * eps
    ### END SOLUTION


# %% [markdown]
# <!-- hint: euler_step -->

# %%
my_euler_step = check.euler_step(my_euler_step)

# %% [markdown]
# ### Your Euler sampler
#
# Start from the same noise `sample()` draws for a seed, move it into sigma space, and step down the
# grid of noise levels. `solvers.sigma_grid` gives the grid: the timesteps where the network is asked,
# and the $\sigma$s the steps walk through, ending at $\sigma = 0$, the clean image.

# %%
@torch.no_grad()
def my_euler_sample(model, schedule, labels, steps, seed=0):
    ts, sigmas = solvers.sigma_grid(schedule, steps, "euler", spacing="trailing")
    x = torch.randn((len(labels), 1, 28, 28), generator=torch.Generator().manual_seed(seed)).to(device)
    x = x * math.sqrt(1 + sigmas[0] ** 2)  # x_T -> sigma space
    for t, sigma, sigma_next in zip(ts, sigmas[:-1], sigmas[1:]):
        x_t = x / math.sqrt(1 + sigma**2)  # what the network sees
        eps = model(x_t, torch.full((len(labels),), int(t), device=device), labels.to(device))
        x = my_euler_step(x, eps, sigma, sigma_next)
    return x


labels = torch.arange(10)
mine = my_euler_sample(model, sched, labels, steps=10)
package = samplers.sample(model, sched, y=labels, sampler="euler", steps=10, spacing="trailing", progress=False)
ddim = samplers.sample(model, sched, y=labels, sampler="ddim", steps=10, spacing="trailing", progress=False)
print(f"{check.whose(my_euler_step)} Euler step in a sampler, against sample(sampler='euler'): "
      f"{(mine - package).abs().max():.1e}")
print(f"Euler against DDIM on the same grid: {(package - ddim).abs().max():.1e}")
assert (mine - package).abs().max() < 1e-3 and (package - ddim).abs().max() < 1e-3

# %% [markdown]
# Same images, to float32 rounding: with the same grid and starting noise, DDIM and Euler are one sampler.
#
# ## Where Euler goes wrong, and two fixes
#
# Euler assumes the slope stays what it was at the start of the step. Where the solution bends, it
# overshoots, and with few steps the error is large. Two classic remedies:
#
# **Heun's method** (Karras et al. 2022, Alg. 1) takes the Euler step as a *trial*, asks the network for
# the slope at the trial point, and redoes the step with the average of the two slopes:
#
# $$\tilde x_e = \tilde x + (\sigma'-\sigma)\,\hat\epsilon, \qquad
#   \tilde x' = \tilde x + (\sigma'-\sigma)\,\frac{\hat\epsilon(\tilde x, \sigma) + \hat\epsilon(\tilde x_e, \sigma')}{2}.$$
#
# Second order, but two network calls per step (the last step, to $\sigma' = 0$, stays Euler: $2N-1$ calls).
#
# **DPM-Solver++** (Lu et al. 2022, arXiv 2211.01095) looks at the ODE through the denoised image
# $\hat x_0 = \tilde x - \sigma\hat\epsilon$ (Karras et al. call it the denoiser $D$; this course keeps
# $\mathcal{D}$ for chapter 10's decoder): $d\tilde x/d\sigma = (\tilde x - \hat x_0)/\sigma$. The part $\tilde x/\sigma$ is linear and
# can be integrated *exactly*; only $\hat x_0$ must be approximated. It steps in $\lambda = -\log\sigma$, with
# $h = \lambda' - \lambda$. Since $\sigma^2 = (1 - \bar\alpha)/\bar\alpha = 1/\mathrm{SNR}$, this $\lambda$ is *half* chapter
# 01's log-SNR: $\lambda = \tfrac12 \log \mathrm{SNR}$ (Lu et al. call it the half log-SNR). The step:
#
# $$\tilde x' = \frac{\sigma'}{\sigma}\,\tilde x + \Big(1 - \frac{\sigma'}{\sigma}\Big)\,\hat x_0.$$
#
# With $\hat x_0$ held constant over the step this is, once more, DDIM. The "2M" (second-order multistep)
# variant reuses the previous step's denoised image for free and extrapolates:
# $\hat x_0 \approx (1 + \tfrac{1}{2r})\,\hat x_0^{(i)} - \tfrac{1}{2r}\,\hat x_0^{(i-1)}$, with $r = h_{i-1}/h_i$. One network call per step,
# second order. The package's step functions, side by side:

# %%
for fn in (solvers.euler_step, solvers.heun_step, solvers.dpmpp_2m_step):
    print(inspect.getsource(fn))

# %% [markdown]
# ### A 1-D picture
#
# Take data that is either $-1$ or $+1$, blurred a little: $x_0 \sim \tfrac12\mathcal N(-1, 0.15^2) + \tfrac12\mathcal N(1, 0.15^2)$.
# For it the best possible denoiser $\hat x_0(\tilde x; \sigma) = E[x_0 \mid \tilde x]$ has a closed form, so we can
# run the solvers on the *exact* ODE and compare them with its true solution (Heun with 500 steps):

# %%
def toy_eps_at(x_t, t, sigma, s=0.15):
    """Noise prediction of the exact denoiser for the two-bump data, at noise level sigma."""
    x = x_t * math.sqrt(1 + sigma**2)  # sigma space
    v = s**2 + sigma**2
    w = torch.sigmoid(2 * x / v)  # posterior probability of the +1 bump
    denoised = w * (sigma**2 + s**2 * x) / v + (1 - w) * (-(sigma**2) + s**2 * x) / v
    return (x - denoised) / sigma


def toy_solve(sampler, steps, starts):
    ts, sigmas = solvers.sigma_grid(sched, steps, sampler, spacing="trailing")
    path = [starts.clone()]
    x = solvers.ode_sample(toy_eps_at, starts, ts, sigmas, sampler,
                           on_step=lambda i, x_t, x0: path.append(x_t.clone()))
    return [sched.T - 1] + [float(t) for t in ts[1:]] + [0.0], torch.stack(path), x


starts = torch.linspace(-2.2, 2.2, 9, dtype=torch.float64)
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
ref_t, ref_path, _ = toy_solve("heun", 500, starts)
for ax, (sampler, steps) in zip(axes, [("euler", 5), ("heun", 3), ("dpmpp2m", 5)]):
    ax.plot(ref_t, ref_path, color="0.8", lw=2)
    t_grid, path, _ = toy_solve(sampler, steps, starts)
    ax.plot(t_grid, path, "o-", ms=3, color="C0")
    ax.set_title(f"{sampler}: {solvers.model_calls(sampler, steps)} model calls", fontsize=10)
    ax.set_xlabel("timestep t")
    ax.invert_xaxis()
axes[0].set_ylabel("$x_t$ (the sampler's state)")
fig.suptitle("grey: the exact ODE solutions; blue: the solver with 5 model calls", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# Euler lags behind every bend of the true paths and so lands short; DPM-Solver++ follows them closely
# with the same five calls. Heun's three steps are so long that its trial points land far off, and the
# slope measured there throws the corrected step off too: a second-order method needs steps small
# enough for its correction to be meaningful. How far each solver's end point lands from the true one,
# as the number of model calls grows (log-log):

# %%
calls_grid = [5, 10, 20, 50, 100]
_, _, exact = toy_solve("heun", 500, starts)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for sampler in ("euler", "heun", "dpmpp2m"):
    errors = []
    for calls in calls_grid:
        _, _, end = toy_solve(sampler, solvers.steps_for_calls(sampler, calls), starts)
        errors.append((end - exact).abs().mean().item())
    ax.loglog(calls_grid, errors, "o-", label=sampler)
ax.set_xlabel("model calls (NFE)")
ax.set_ylabel("mean |end point - exact|")
ax.minorticks_off()
ax.set_xticks(calls_grid, [str(c) for c in calls_grid])
ax.set_title("the 1-D toy: error against model calls", fontsize=10)
ax.legend()
plt.show()

# %% [markdown]
# Euler's error halves each time the calls double: first order. DPM-Solver++'s falls faster as the
# steps shrink (second order), and it is the most accurate at every budget here. Heun, second order
# too, pays two calls per step and ends with a plain Euler step to $\sigma = 0$ (there is no slope to
# average at $\sigma = 0$), which on this toy is where most of the error is made: per model call it
# does no better than Euler.

# %% [markdown]
# ## On the real network
#
# There is no exact solution for the trained model, but a very fine solve is a good stand-in: here Heun
# with 100 steps. Every sampler starts from the same noise (same seeds, same labels, guidance $s = 1$)
# on the "trailing" grid, which starts at $t = 999$ for any number of steps, so all of them solve the same
# ODE from the same start, and we can measure how close each gets with a given budget of model calls.

# %%
n = dl.pick(default=10, fast=5, gpu=20)
labels = torch.arange(n) % 10
budgets = dl.pick(default=[5, 10, 20, 50], fast=[5, 10, 20])
kinds = ["euler", "heun", "dpmpp2m"]
common = dict(y=labels, spacing="trailing", seed=0, amp=amp, progress=False)
reference = samplers.sample(model, sched, sampler="heun", steps=dl.pick(default=100, fast=50), **common).cpu()
images, calls_made, distance = {}, {}, {}
for kind in kinds:
    for budget in budgets:
        steps = solvers.steps_for_calls(kind, budget)
        images[(kind, budget)] = samplers.sample(model, sched, sampler=kind, steps=steps, **common).cpu()
        calls_made[(kind, budget)] = solvers.model_calls(kind, steps)
        distance[(kind, budget)] = (images[(kind, budget)] - reference).abs().mean().item()

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for kind in kinds:
    ax.loglog([calls_made[(kind, b)] for b in budgets], [distance[(kind, b)] for b in budgets], "o-", label=kind)
ax.minorticks_off()
ax.set_xticks(budgets, [str(b) for b in budgets])
ax.set_xlabel("model calls (NFE)")
ax.set_ylabel("mean |pixel - fine solve|")
ax.set_title(f"the trained network ({n} images): distance from a fine solve", fontsize=10)
ax.legend()
plt.show()
for budget in budgets:
    print(f"{budget:3d} calls: " + ", ".join(f"{k} {distance[(k, budget)]:.3f}" for k in kinds))

# %% [markdown]
# The lines are this run's measurements: read off which solver gets closest to the fine solve at each
# budget. (Pixels range over $[-1, 1]$; a distance of 0.01 is invisible, 0.1 is a visibly different stroke.)
#
# ### Why Heun breaks at 5 calls on the network
#
# Write Heun's step with the denoised guesses. The trial point is an Euler step, and an Euler step *is*
# a DDIM step: $\tilde x_e = \tfrac{\sigma'}{\sigma}\tilde x + (1 - \tfrac{\sigma'}{\sigma})\, \hat x_0$, a valid state at
# level $\sigma'$. Its slope there is $(\tilde x_e - \hat x_0')/\sigma'$ with $\hat x_0'$ the network's new guess, and
# averaging the two slopes simplifies (use $\tilde x_e - \hat x_0 = \tfrac{\sigma'}{\sigma}(\tilde x - \hat x_0)$) to
#
# $$\tilde x' = \tilde x_e + \frac{\sigma - \sigma'}{2\sigma'}\,(\hat x_0' - \hat x_0).$$
#
# So Heun adds to a good DDIM step the *change* of the denoised guess, multiplied by
# $(\sigma - \sigma')/(2\sigma')$. With small steps that factor is small. With 3 steps it is large:

# %%
_, heun_sigmas = solvers.sigma_grid(sched, 3, "heun", spacing="trailing")
for a, b in zip(heun_sigmas[:-2], heun_sigmas[1:-1]):  # the last step, to sigma = 0, is plain Euler
    print(f"sigma {a:7.2f} -> {b:5.2f}: the change of the guess is multiplied by {(a - b) / (2 * b):.2f}")
toy_err = {k: (toy_solve(k, solvers.steps_for_calls(k, 5), starts)[2] - exact).abs().mean().item()
           for k in ("euler", "heun")}
net = {r["sampler"]: r["fd"] for r in load_results("samplers") if r["dataset"] == "mnist" and r["nfe"] == 5}
print(f"5 calls, the toy: end-point error Euler {toy_err['euler']:.2f}, Heun {toy_err['heun']:.2f}; "
      f"the network: FD Euler {net['euler']:,.1f}, Heun {net['heun']:,.0f}")

# %% [markdown]
# On the toy the exact denoiser's guesses stay between the two bumps, $-1$ and $1$, so even a large factor
# moves the state by a bounded amount, and Heun ends only a little worse than Euler. The network's first
# guess from pure noise is a blurry average digit; its second, from the trial point, is a sharper and
# different one. Their difference, several times over, is added to the state: the result is no longer
# a noisy image at level $\sigma'$ (its pixels far outside anything the network saw in training), the
# next guesses are worse still, and the sampler ends off the data (an FD in the hundreds of thousands).
# A second-order correction is only as good as the step is short.
#
# ## Play: the samplers side by side
#
# The same images as above: move the slider to give every sampler the same budget of model calls.
# Euler is DDIM (left); Heun's captions say how many calls it made (odd numbers: $2N - 1$).

# %%
# NBVAL_IGNORE_OUTPUT
captions = {k: f"{c} calls made" for k, c in calls_made.items()}
slider = sampler_viewer(images, kinds, budgets, nrow=5, static_per_cell=5, captions=captions,
                        title="same noise, same labels: rows = model-call budget, columns = sampler")

# %% [markdown]
# ## Measured: quality against model calls
#
# Closeness to a fine solve is not yet quality. `scripts/sampler_sweep.py` samples at least 1000 images
# per point from the shipped MNIST and Fashion-MNIST models with every sampler at 5, 10, 20 and 50 model
# calls, plus DDPM with all 1000 steps as the reference, and measures each set with chapter 08's
# yardstick. Two new columns: **precision** and **recall** (Kynkäänniemi et al. 2019). Put a ball around
# every real image's features, reaching to its 3rd nearest real neighbour: together the balls outline
# "where real images live". Precision is the share of generated images inside that region (are they
# realistic?); recall turns it around, the share of real images inside the region the generated ones
# outline (do they cover all the variety?). A tiny example makes the difference plain:

# %%
g = torch.Generator().manual_seed(1)
angles = torch.rand(400, generator=g) * 2 * math.pi
ring = torch.stack([angles.cos(), angles.sin()], 1) + 0.08 * torch.randn(400, 2, generator=g)
collapsed = ring[ring[:, 0] > 0.7][:1].repeat(400, 1) + 0.08 * torch.randn(400, 2, generator=g)
blurry = 1.6 * torch.randn(400, 2, generator=g)
fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
for ax, (name, fake) in zip(axes, [("collapsed onto one spot", collapsed), ("spread everywhere", blurry)]):
    p, r = precision_recall(ring, fake)
    ax.scatter(*ring.T, s=4, c="0.6", label="real")
    ax.scatter(*fake.T, s=4, c="C1", label="generated")
    ax.set_title(f"{name}: precision {p:.2f}, recall {r:.2f}", fontsize=10)
    ax.set_aspect("equal")
    ax.set_xlim(-4, 4)
    ax.set_ylim(-4, 4)
axes[0].legend(loc="lower left", fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# Realistic but narrow samples have high precision and low recall; varied but sloppy ones, the reverse.
# Guidance trades one for the other (chapter 07). Here is the sweep on the shipped models, read from
# `data/results/samplers.json` (the command that produced each row is in the file):

# %%
rows = load_results("samplers")
display(Markdown("\n".join(sweep.table(rows, commands=False))))

# %%
sweep.figure(rows)
plt.show()
for dataset in sweep.DATASETS:
    print(sweep.targets(rows, dataset))

# %% [markdown]
# What the MNIST rows show, by chapter 08's rule (each sentence a tested claim):

# %%
say("dpm_beats_ddim_at_5_calls", "dpm_10_calls_vs_ddim_20", "heun_breaks_at_5_calls", "fd_flat_from_10_calls_ddim",
    "fd_flat_from_10_calls_dpm", "fd_flat_from_10_calls_heun", "recall_rises_with_calls", "precision_falls_with_calls")

# %% [markdown]
# The main result: **after about 10 calls, more calls no longer improve FD for any solver**, while
# they keep trading precision for recall. A longer solve follows the ODE more closely, and the exact
# ODE's samples are more varied (recall rises) and slightly less typical (precision falls) than a
# coarse solve's; FD, which weighs both, stays within its spread. With 5 calls the solvers differ
# most: DPM-Solver++'s exponential integrator is clearly ahead, and Heun's correction breaks
# (the section above). Read the plots the same way: where does each curve flatten, and where does
# that level sit against DDPM's 1000 calls (dashed)? Euler and DDIM lie on top of each other, as they
# must. The lines under the plot check the course's two targets for a fast
# sampler on these rows (DPM-Solver++ with 10 calls no worse than DDIM with 20, and within 10% of DDPM
# with 1000), and say which rows are not measured yet. The DDPM rows were measured before the course
# recorded FD spreads (1000 steps for 1000 images is the sweep's most expensive row), so they rank
# nothing by the rule; read them as a level. Where DDPM's dashed line sits below every curve,
# its fresh noise at each step is doing something no deterministic path does: try `eta=1` in DDIM
# (chapter 06) to see how much of the gap that noise closes. FD ± is its half-sampling standard
# deviation (chapter 08) where a row has one (rows marked "bootstrap" were measured earlier by
# resampling with replacement, which tends to overstate the spread a little): two FDs closer than twice their
# combined spread are not told apart. Sampling times are not in the table: they were taken on a machine shared with other jobs
# and rank nothing (`python -m diffusion_lab bench` measures speed properly, side by side).
#
# ## What to try next
#
# - Rerun the "real network" section with `spacing="leading"` or with `karras=True` (Karras et al.'s
#   noise levels, crowded near $\sigma = 0$): which helps which sampler at 5 calls?
# - Give DPM-Solver++ 3 or 4 calls. What does its first-order first step alone produce (`steps=1`)?
# - Add `guidance=3` to `common`. Does the ranking of the samplers change when the slope is guided?
# - The command line takes every sampler: `python -m diffusion_lab sample --checkpoint
#   data/checkpoints/mnist_cfg.safetensors --sampler dpmpp2m --steps 10 --per-class 8 --out digits.png`.
# - `diffusion_lab.bridge.to_diffusers(sched, "dpmpp2m")` builds the matching diffusers scheduler, and
#   `bridge.sample_with_scheduler` runs our model through it: the same images (tests/test_solvers_diffusers.py).
