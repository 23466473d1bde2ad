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
# # 14 · The score and the reverse SDE: noise that corrects, and editing
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/14_score_and_sde.ipynb)
#
# Chapter 09 left a puzzle: DDPM's 1000 *random* steps gave a better FD than any deterministic sampler at
# any number of steps. This chapter explains it. A noise predictor is also a *score*, the direction in which
# the data get more likely; with the score, noising has two exact reverses, a stochastic one (the reverse
# SDE) and a deterministic one (the probability-flow ODE), with the same marginals. The noise of the first
# corrects errors that the second carries to the end. The score is also what lets a model *edit*: complete
# a half-hidden digit, redraw an image from a noisy copy, or follow another network's gradient.
#
# **In this notebook you will**
# - see a noise predictor as a score field on the 2-D moons, beside the exact one;
# - write one Euler-Maruyama step of the reverse SDE (exercise) and walk both roads from one start point;
# - read the chapter-09 puzzle answered in numbers: ODE against SDE samplers at 10 to 100 model calls;
# - inpaint digits (a widget) and redraw them from noise of a chosen strength (image-to-image, a slider).

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
from IPython.display import Markdown, display

import diffusion_lab as dl
from diffusion_lab import edit, forward, sde
from diffusion_lab.claims import say
from diffusion_lab.course import check, sde_sweep, toy2d
from diffusion_lab.course.plots import show_images
from diffusion_lab.course.widgets import plot_picker
from diffusion_lab.results import load_results

torch.manual_seed(0)
device = dl.pick_device()
print(f"device: {device}; fast mode: {dl.fast_mode()}")

# %% [markdown]
# ## The score: a noise predictor points towards the data
#
# The *score* of a distribution is the gradient of its log density, $\nabla_x \log p(x)$: at every point, the
# direction in which the data become more likely, and how steeply. Noising an image in one jump,
# $x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon$, makes $x_t$ Gaussian around $\sqrt{\bar\alpha_t}\,x_0$,
# and its score is $-\epsilon / \sqrt{1-\bar\alpha_t}$. Averaged over the images that could have made $x_t$, the
# best noise prediction gives the score of the noisy data $p_t$ itself (Vincent 2011; Song et al. 2021, eq. 11):
#
# $$\nabla_{x_t} \log p_t(x_t) = -\frac{\hat\epsilon_\theta(x_t, t)}{\sqrt{1-\bar\alpha_t}}
#   \qquad\Longleftrightarrow\qquad \hat\epsilon_\theta = -\sqrt{1-\bar\alpha_t}\;\nabla \log p_t .$$
#
# (In the $\sigma$ coordinates of chapter 09, $\tilde x = x_t / \sqrt{\bar\alpha_t}$ with
# $\sigma = \sqrt{(1-\bar\alpha_t)/\bar\alpha_t}$, it reads $\hat\epsilon = -\sigma \nabla_{\tilde x} \log p$.)
# So a DDPM network *is* a score model, and `forward.score_from_eps` is the one line between them. On
# the moons of chapter 13 the exact score has a closed form (`toy2d.exact_score`: $p_t$ is then a mixture of
# Gaussians), so we can train the toy network on the VP path and lay its arrows over the exact ones:

# %%
moons = toy2d.two_moons(2000)
toy_steps = dl.pick(default=3000, fast=600)
net, toy_losses = toy2d.train_toy("vp", moons, steps=toy_steps)
print(f"toy network trained {toy_steps} steps on the VP path; last loss {sum(toy_losses[-100:]) / 100:.3f}")


def draw_score(ax, t):
    points, learned = toy2d.score_field(net, t, lim=1.8, n=15)
    exact = toy2d.exact_score(points, moons, t)
    scale = float(exact.norm(dim=1).quantile(0.9))
    ax.scatter(*moons[:600].T, s=2, color="lightgrey")
    ax.quiver(*points.T, *(exact / scale).T, color="k", alpha=0.35, angles="xy", label="exact")
    ax.quiver(*points.T, *(learned / scale).T, color="C1", alpha=0.8, angles="xy", label="learned")
    cos = torch.nn.functional.cosine_similarity(learned, exact, dim=1).mean()
    ax.set_xlim(-1.9, 1.9)
    ax.set_ylim(-1.9, 1.9)
    ax.set_aspect("equal")
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"t = {t}: mean cosine(learned, exact) = {cos:.2f}", fontsize=10)


score_view = plot_picker({"t": [10, 50, 150, 300, 600]}, draw_score, width=4.8)

# %% [markdown]
# At small $t$ the arrows point straight at the nearest moon and are long (the noisy data sit close to the
# data: $p_t$ is steep). At large $t$ they point at the centre and shrink: the noisy data are nearly a
# standard Gaussian, whose score is $-x$. Where the network rarely saw training points (the corners) it is
# least like the exact field.
#
# ## Two roads down: the reverse SDE and the probability-flow ODE
#
# With infinitely many tiny steps, DDPM's noising is a stochastic differential equation, the variance-preserving
# SDE (Song et al. 2021, https://arxiv.org/abs/2011.13456, eq. 11):
#
# $$dx = \underbrace{-\tfrac12 \beta(t)\, x}_{f(x,t)}\,dt + \underbrace{\sqrt{\beta(t)}}_{g(t)}\,dw .$$
#
# Anderson (1982) showed that it has a reverse in time, another SDE, if the score is known; and Song et al.
# found an ODE with the *same marginals* $p_t$ at every $t$, the probability-flow ODE:
#
# $$\text{reverse SDE (eq. 6):}\quad dx = [f - g^2 \nabla\log p_t]\,dt + g\,d\bar w
#   \qquad\qquad \text{ODE (eq. 13):}\quad dx = [f - \tfrac12 g^2 \nabla\log p_t]\,dt$$
#
# Both run time backwards, from $t = T$ (noise) to $0$ (data). Euler-Maruyama is Euler's method with a
# Gaussian kick of variance $g^2\,dt$ per step. With $\beta(t)\,dt$ = DDPM's $\beta_t$ (one step is one unit of
# time), a step back from $t$ is
#
# $$x \leftarrow x + \big(\tfrac12\beta_t\,x + \beta_t\,\nabla\log p_t\big) + \sqrt{\beta_t}\,z
#   \qquad\text{(SDE)},\qquad x \leftarrow x + \tfrac12\beta_t\,x + \tfrac12\beta_t\,\nabla\log p_t\qquad\text{(ODE)}.$$
#
# DDPM's ancestral step (chapter 05) is the SDE step up to terms of order $\beta_t^2$; DDIM with $\eta = 0$ is a
# step of the ODE (chapter 06). The ODE's step as the package writes it (`diffusion_lab/sde.py`); the SDE's
# step is yours to write below:

# %%
import inspect  # noqa: E402

print(inspect.getsource(sde.probability_flow_step))

# %% [markdown]
# ### Exercise: one step of the reverse SDE
#
# Write `my_reverse_sde_step(x, score, beta_dt, noise, last)`: one Euler-Maruyama step backwards in time of
# the reverse VP SDE. `x` and `score` have the same shape, `beta_dt` is the number $\beta(t)\,dt$, `noise` is
# a standard normal $z$ of the shape of `x`, and `last` says whether this is the final step (then it adds no
# noise: nothing would remove it). Which way does the drift point when time runs backwards? What is the
# standard deviation of Brownian motion over a time $dt$? The check names the mistake when it recognises one.

# %%
def my_reverse_sde_step(x, score, beta_dt, noise, last):
    """x -> x at t - dt, on the reverse VP SDE (Song et al. 2021, eq. 6 with eq. 11)."""
    ### BEGIN SOLUTION
    x = x + 0.5 * beta_dt * x + beta_dt * score
    if not last:
        x = x + beta_dt**0.5 * noise
    return x
    ### END SOLUTION


# %% [markdown]
# <!-- hint: reverse_sde_step -->

# %%
my_reverse_sde_step = check.reverse_sde_step(my_reverse_sde_step)

# %% [markdown]
# The package's version, to set beside yours once the check above passes:

# %%
print(inspect.getsource(sde.reverse_sde_step))

# %% [markdown]
# Now walk both roads with the toy network's score, all 1000 steps (cheap on 2-D points): 300 particles that
# all start at **one and the same** point of noise, down the SDE with your step, and the same point down
# the ODE.

# %%
score_at = toy2d.score_fn(net)
start = torch.tensor([[1.2, -0.9]])
betas = toy2d.SCHEDULE.betas


def sde_walk(x, generator):  # your step, the whole way down
    with torch.no_grad():
        for t in range(len(betas) - 1, -1, -1):
            x = my_reverse_sde_step(x, score_at(x, t), float(betas[t]), torch.randn(x.shape, generator=generator),
                                    last=t == 0)
    return x


g = torch.Generator().manual_seed(0)
ends_sde = sde_walk(start.expand(300, 2), g)
with torch.no_grad():
    end_ode, kept_ode = sde.walk(score_at, start, betas, stochastic=False, keep_every=10)
    _, kept_sde = sde.walk(score_at, start.expand(5, 2), betas, stochastic=True,
                           generator=torch.Generator().manual_seed(1), keep_every=10)

fig, ax = plt.subplots(figsize=(5, 4.5))
ax.scatter(*moons[:800].T, s=2, color="lightgrey", label="data")
for k in range(5):
    ax.plot(*torch.stack([s[k] for s in kept_sde]).T, lw=0.6, color="C0", alpha=0.6)
ax.plot(*torch.cat(kept_ode).T, lw=2, color="C3", label="ODE path")
ax.scatter(*ends_sde.T, s=5, color="C0", label="300 SDE ends")
ax.scatter(*end_ode.T, s=60, marker="*", color="C3", label="ODE end")
ax.scatter(*start.T, s=60, marker="x", color="k", label="start (t = 999)")
ax.set_aspect("equal")
ax.legend(fontsize=7)
ax.set_title("one start point, two roads", fontsize=10)
plt.show()

# %% [markdown]
# The ODE is a *function*: one start point, one end point, always the same. The SDE from that one point
# still reaches many points of the data: the noise it adds along the way keeps choosing. Both are exact
# reverses of the same noising, so over many start points both produce the data distribution, given the
# exact score and infinitely small steps. With a learned score and finite steps they treat the network's
# *errors* differently: an ODE carries an error made early all the way to the end, while the SDE's fresh
# noise and its doubled pull towards the data ($g^2$ instead of $\tfrac12 g^2$) keep dragging the particles
# back towards where the data are (Karras et al. 2022, sec. 4). Over many start points, on the toy, with the
# learned score and with the exact one:

# %%
def nearest_data(points):  # mean distance from each point to the closest data point
    return torch.cdist(points, moons).min(dim=1).values.mean().item()


starts = torch.randn(1000, 2, generator=torch.Generator().manual_seed(2))
exact_at = lambda x, t: toy2d.exact_score(x, moons, t)  # noqa: E731
print("mean distance to the nearest data point after 1000 steps (fresh real points: "
      f"{nearest_data(toy2d.two_moons(1000, seed=9)):.3f}):")
with torch.no_grad():
    for name, fn in (("learned score", score_at), ("exact score", exact_at)):
        ends = {road: sde.walk(fn, starts, betas, stochastic=road == "SDE", generator=torch.Generator().manual_seed(3))
                for road in ("ODE", "SDE")}
        print(f"  {name}: " + ", ".join(f"{road} {nearest_data(x):.3f}" for road, x in ends.items()))

# %% [markdown]
# On the moons both roads land about as close to the data, with either score: a two-dimensional toy with a
# well-learned score leaves little error for the noise to correct (the exact score of 2000 points even
# lands *on* them: it has memorised its data set). The difference shows where the network's errors are
# large, on images.

# %% [markdown]
# ## The chapter-09 puzzle, measured
#
# The stochastic samplers do with few steps what the SDE does with 1000: each step has a deterministic part
# and fresh noise. DDIM with $\eta = 1$ (chapter 06) adds the noise of DDPM's posterior for the jump
# $t \to s$. Euler ancestral (diffusers' `EulerAncestralDiscreteScheduler`, `--sampler euler_ancestral`)
# takes an Euler step in $\sigma$ down to a level $\sigma_\downarrow$ *below* the target $\sigma'$, then adds
# noise of standard deviation $\sigma_\uparrow$ back up to it, $\sigma_\downarrow^2 + \sigma_\uparrow^2 = \sigma'^2$.
# Worked out, its $\sigma_\uparrow$ is DDIM's $\eta = 1$ noise in $\sigma$ space: one sampler written twice.
# DPM-Solver++ 2M SDE (`--sampler dpmpp2m_sde`, Lu et al. 2022) is chapter 09's exponential integrator
# applied to the reverse SDE instead of the ODE: with $r = \sigma'/\sigma$,
#
# $$\tilde x' = r^2\,\tilde x + (1 - r^2)\,\hat x_0 + \sigma'\sqrt{1 - r^2}\;z
#   \qquad\text{against the ODE's}\qquad \tilde x' = r\,\tilde x + (1 - r)\,\hat x_0 ,$$
#
# twice the pull towards the prediction, and noise to make up the variance. EDM's sampler (`--sampler edm
# --churn S`, Karras et al. 2022, Alg. 2) first *raises* the noise level from $\sigma$ to
# $\hat\sigma = (1 + \gamma)\sigma$ with fresh noise, $\gamma = \min(S_\text{churn}/N, \sqrt2 - 1)$, then takes
# a Heun step from $\hat\sigma$ down; with churn 0 it is Heun exactly. The first three match diffusers step
# for step in float64 with the same injected noise, and EDM matches Algorithm 2 written out line by line
# (`tests/test_stochastic_samplers.py`).
#
# `scripts/sde_compare.py sweep` sampled the shipped `mnist_cfg` and `fashion_mnist_cfg` 1000 times with each
# (class-balanced, unguided $s = 1$) at 10 to 100 model calls; the ODE rows are chapter 09's, at the same
# settings and seeds. FD with its half-sampling standard deviation:

# %%
sweep_rows = load_results("sde") + load_results("samplers")
display(Markdown("**MNIST** (`mnist_cfg`, n = 1000 each, s = 1)\n\n" + "\n".join(sde_sweep.table(sweep_rows, "mnist"))))
display(Markdown("**Fashion-MNIST** (`fashion_mnist_cfg`, n = 1000 each, s = 1)\n\n"
                 + "\n".join(sde_sweep.table(sweep_rows, "fashion_mnist"))))
sde_sweep.figure(sweep_rows)
plt.show()
print(sde_sweep.target(sweep_rows))

# %%
say("sde_ddim_eta1_beats_eta0_50_calls", "sde_edm_beats_heun_49_calls", "sde_dpmpp_beats_ode_50_calls",
    "sde_dpmpp_vs_ode_10_calls", "sde_eta1_is_euler_ancestral")
say("sde_vs_ode_fashion_50_calls", "sde_vs_ode_fashion_dpmpp_20_calls")

# %% [markdown]
# What the numbers show, and what they do not. On MNIST the ODE samplers stop improving after about 20
# calls and get no better at 50: their remaining error is the network's, carried down the road unchanged.
# In each of the three pairs above, the stochastic sampler at about 50 calls beats the ODE sampler it is
# built from by more than twice the combined spread, and every stochastic sampler comes within 10% of DDPM's
# 1000-step FD with 20 calls or fewer: the puzzle of chapter 09 was the noise. At 10 calls the SDE version of DPM-Solver++ is ahead in the table but not by enough to rank. On
# Fashion-MNIST the same samplers show *no* measured difference from the ODE ones at these budgets: the
# correction helps where the network's errors are large, and this is a property of one model, not a law.
# DDPM's 1000-step row was measured without a spread: a line to read against, not a rank.
#
# ## Editing with the score: inpainting
#
# A model that denoises can complete an image it only partly knows. RePaint (Lugmayr et al. 2022,
# https://arxiv.org/abs/2201.09865) walks the reverse process as usual and, after each step to noise level
# $s$, *replaces* the known pixels by the input noised to the same level $s$:
#
# $$x_s \leftarrow m \odot \big(\sqrt{\bar\alpha_s}\,x_0^{\text{known}} + \sqrt{1-\bar\alpha_s}\,\epsilon\big)
#   + (1 - m) \odot x_s^{\text{model}}, \qquad m = 1 \text{ where the pixel is known.}$$
#
# The model's part then always sees a noisy image that agrees with the known part, at the right noise
# level. One pass is not enough for the two parts to agree; RePaint goes back up a few steps (forward
# noising, $q(x_t \mid x_s)$) and down again, `jumps` times every `jump_length` steps ("resampling").
# `edit.inpaint` does this for every generator of the course: on the linear path of chapter 13 the noisy
# copy is $(1 - s)\,x_0 + s\,\epsilon$ instead, and a latent model (chapter 10) inpaints its latents and gets
# the known pixels back after decoding. On the command line:
# `python -m diffusion_lab edit --checkpoint mnist_cfg --images in.npz --mask mask.npz --labels 7 --out out.npz`.
#
# The widget hides part of six digits and completes them, asking for each digit's own class or for another
# one (the digits come from the offline training subset, so the model has seen them; the measurement below
# uses the test set):

# %%
model, schedule, config = dl.load_pretrained("mnist_cfg", device=device)
train = dl.load_data("mnist", "train", verbose=False)  # the offline subset: digits the model was trained on
digits, digit_labels = train.images[-6:].to(device), train.labels[-6:].to(device)
edit_steps = dl.pick(default=25, fast=5)
REGIONS = {"bottom": (slice(14, 28), slice(0, 28)), "top": (slice(0, 14), slice(0, 28)),
           "left": (slice(0, 28), slice(0, 14)), "right": (slice(0, 28), slice(14, 28)),
           "box": (slice(8, 20), slice(8, 20))}
ASK = {"its own class": digit_labels, "another class": (digit_labels + 5) % 10}


def region(name):
    m = torch.ones(28, 28, device=device)
    m[REGIONS[name]] = 0
    return m


# every setting of the widget at once, in one batch of 6 digits x 5 regions x 2 asks
combos = [(hide, ask) for hide in REGIONS for ask in ASK]
batch_masks = torch.stack([region(h) for h, _ in combos for _ in range(len(digits))])
batch_labels = torch.cat([ASK[a] for _, a in combos])
done = edit.inpaint(model, schedule, digits.repeat(len(combos), 1, 1, 1), batch_masks, y=batch_labels,
                    guidance=3.0, steps=edit_steps, seed=0)
completions = {c: done[i * len(digits):(i + 1) * len(digits)] for i, c in enumerate(combos)}
jumps, jump_length = edit.EDIT_DEFAULTS["jumps"], edit.EDIT_DEFAULTS["jump_length"]
print(f"{len(done)} completions, {edit.inpaint_model_calls(edit_steps, jumps, jump_length)} model calls each "
      f"(RePaint: {edit_steps} steps, {jumps} jumps back every {jump_length})")


def draw_inpaint(ax, hide, ask):
    seen = digits * region(hide) - 0.4 * (1 - region(hide))  # the hidden part shown grey
    show_images(torch.cat([seen, completions[hide, ask]]).cpu(), nrow=6, ax=ax)
    ax.set_title(f"top: what the model keeps; bottom: completed as {ASK[ask].tolist()}", fontsize=9)


inpaint_view = plot_picker({"hide": list(REGIONS), "ask": list(ASK)}, draw_inpaint, width=6.5)

# %% [markdown]
# Asked for another class, the model has to bend the known half into a digit it may not fit. Measured on
# 1000 real MNIST test digits (`scripts/sde_compare.py inpaint`, the lower half
# generated, graded by the evaluation classifier of chapter 08, a network the editing never consulted):

# %%
for r in load_results("inpaint"):
    print(f"asked for {'the true' if r['label'] == 'true' else 'another'} class: the classifier recognises "
          f"{100 * r['class_accuracy']:.1f}% ± {100 * r['class_accuracy_std']:.1f} of n = {r['num']} completions "
          f"(real test digits: {100 * r['real_accuracy']:.1f}%); the kept half unchanged bit for bit: "
          f"{r['kept_half_unchanged']}; {r['model_calls']} model calls per image")
print(sde_sweep.inpaint_target(load_results("inpaint")))
say("inpaint_true_beats_other_class")

# %% [markdown]
# ## Image-to-image: start from a noisy copy
#
# SDEdit (Meng et al. 2022, https://arxiv.org/abs/2108.01073) needs no mask: noise the input to a level
# $t_0 = \text{strength} \times T$ and run the deterministic sampler (DDIM) from there
# (`python -m diffusion_lab edit ... --strength 0.5`). A small strength keeps the
# image and cleans it up; strength 1 starts from pure noise and keeps nothing. In between, the result keeps
# the input's rough shape (what survives the noise) and the model redraws the rest, here asked for the
# class 8:

# %%
strengths = [0.2, 0.4, 0.6, 0.8, 1.0]
redrawn = {s: edit.image_to_image(model, schedule, digits, s, y=torch.full_like(digit_labels, 8), guidance=3.0,
                                  steps=edit_steps, seed=0) for s in strengths}


def draw_strength(ax, strength):
    show_images(torch.cat([digits, redrawn[strength]]).cpu(), nrow=6, ax=ax)
    change = (redrawn[strength] - digits).abs().mean().item()
    ax.set_title(f"strength {strength}: input (top), redrawn as 8 (bottom); mean change {change:.2f}", fontsize=9)


strength_view = plot_picker({"strength": strengths}, draw_strength, width=6.5)

# %% [markdown]
# ## Where it came from
#
# - **Score-based generative modelling through SDEs** (Song, Sohl-Dickstein, Kingma, Kumar, Ermon & Poole,
#   2021, https://arxiv.org/abs/2011.13456): the VP and VE SDEs, the reverse SDE, the probability-flow ODE,
#   predictor-corrector samplers.
# - **Denoising score matching** (Vincent 2011): a denoiser's optimum is the score of the noisy data.
# - **EDM** (Karras, Aittala, Aila & Laine, 2022, https://arxiv.org/abs/2206.00364): the $\sigma$ view of chapter
#   09, and why stochastic sampling corrects errors (sec. 4).
# - **RePaint** (Lugmayr et al. 2022, https://arxiv.org/abs/2201.09865) and **SDEdit** (Meng et al. 2022,
#   https://arxiv.org/abs/2108.01073): inpainting and image-to-image with an unchanged model; diffusers'
#   inpainting and img2img pipelines start from the same ideas.
#
# **Next:** chapter 15 goes the other way: one or two steps, by straightening the paths (reflow) and by
# distilling a teacher (consistency).
