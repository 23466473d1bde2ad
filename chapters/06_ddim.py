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
# # 06 · DDIM: fewer steps, and a deterministic sampler
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/06_ddim.ipynb)
#
# DDPM needs all 1000 steps because each one is a tiny, noisy move. Song, Meng and Ermon (2021)
# noticed that the *same trained network* supports a different sampler: one that can jump over many
# timesteps at once and, if we like, adds no noise at all. Same model, no retraining, 20-50 steps.
#
# **In this notebook you will**
# - derive the DDIM update (eq. 12) from the pieces of the DDPM step, and its noise knob $\eta$ (eq. 16);
# - see which timesteps DDIM visits ("leading", "trailing", "linspace" spacing);
# - implement the deterministic step (exercise) and check a 20-step sampler of your own against the package;
# - play with the number of steps and $\eta$ in a viewer, and measure the speed-up;
# - see that with $\eta = 0$ the starting noise *determines* the image, at any step count, and
#   walk smoothly between two images by interpolating their noises.

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
from diffusion_lab.claims import say
from diffusion_lab.classifier import features_and_predictions, load_classifier
from diffusion_lab.course import check
from diffusion_lab.course.plots import show_images, table_figure
from diffusion_lab.course.widgets import sampler_controls
from diffusion_lab.results import load_results

torch.manual_seed(0)
device = dl.pick_device()
model, sched, config = dl.load_pretrained("mnist_cfg", device=device)
model.eval()
classes = config["classes"]
print(f"device: {device}; fast mode: {dl.fast_mode()}")

# %% [markdown]
# ## From DDPM to DDIM
#
# Chapter 05 wrote the DDPM step as: guess the clean image, then move to where $x_{t-1}$ would be if
# that guess were right, plus noise. DDIM keeps the first half and rewrites the second. Given the
# guess $\hat x_0$ and the noise estimate $\epsilon_\theta$, an image at any earlier time $s < t$
# "should" look like the forward process applied to $\hat x_0$ with that very noise:
# $\sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s}\,\epsilon_\theta$. DDIM's update (Song et al. 2021,
# eq. 12, written in this course's $\bar\alpha$ notation, where Song et al. write $\alpha$) is exactly
# that, with an optional share $\tau_t^2$ of the noise replaced by fresh noise (Song et al. call its
# standard deviation $\sigma_t$; this course keeps $\sigma$ for chapter 09's noise level, see CONVENTIONS.md):
#
# $$x_s = \sqrt{\bar\alpha_s}\,\underbrace{\frac{x_t - \sqrt{1-\bar\alpha_t}\,\epsilon_\theta(x_t, t)}
#   {\sqrt{\bar\alpha_t}}}_{\text{predicted } x_0\ (\text{eq. 15 of DDPM})}
#   + \underbrace{\sqrt{1-\bar\alpha_s-\tau_t^2}\;\epsilon_\theta(x_t, t)}_{\text{direction pointing to } x_t}
#   + \underbrace{\tau_t\, \xi}_{\text{fresh noise, } \xi \sim \mathcal N(0, I)} \tag{12}$$
#
# Two things changed from DDPM:
#
# - **$s$ need not be $t-1$.** Nothing in eq. 12 assumes a small step, so we may jump from $t = 999$
#   to $t = 949$ in one network call. The model was trained at every $t$, so it can be asked at any.
# - **The noise is a knob.** Song et al. choose it with a parameter $\eta$ (eq. 16):
#
# $$\tau_t(\eta) = \eta\,\sqrt{\frac{1-\bar\alpha_s}{1-\bar\alpha_t}}\,\sqrt{1-\frac{\bar\alpha_t}{\bar\alpha_s}}
#   \tag{16}$$
#
#   $\eta = 0$ adds no noise: the sampler is a **deterministic** function of the starting noise.
#   $\eta = 1$ adds DDPM's posterior noise: with $s = t - 1$ it *is* the DDPM step.
#
# That last claim is easy to check numerically, with the package's `ddim_sigma` (the paper's name for $\tau_t$) and `ddim_step`:

# %%
t = 600
ab_t, ab_s = float(sched.alpha_bar[t]), float(sched.alpha_bar[t - 1])
tau = samplers.ddim_sigma(t, t - 1, sched, eta=1.0)
assert abs(tau**2 - float(sched.posterior_variance[t])) < 1e-12  # eq. 16 with eta=1 is beta_tilde_t

g = torch.Generator().manual_seed(0)
x_t, eps, z = (torch.randn(4, 1, 28, 28, generator=g) for _ in range(3))
ddim_x, _ = samplers.ddim_step(x_t, eps, t, t - 1, sched, eta=1.0, noise=z)
ddpm_x, _ = samplers.ddpm_step(x_t, eps, t, sched, variance="posterior", noise=z)
assert torch.allclose(ddim_x, ddpm_x, atol=1e-5)  # one DDIM step with eta=1 == one DDPM step
print(f"t={t}: tau(eta=1)^2 = {tau**2:.3e} = beta_tilde_t; DDIM(eta=1) step == DDPM step")

# %% [markdown]
# ## Which timesteps? The sub-grid
#
# With `steps` network calls we visit a decreasing list of timesteps out of $0, \dots, 999$.
# `samplers.ddim_timesteps` builds it the way the diffusers library does, in three flavours:
#
# - **leading** (the DDIM paper, diffusers' default): $0, k, 2k, \dots$ with $k = T/\text{steps}$, reversed;
# - **trailing**: counted down from $T-1$, so the first call is always at the noisiest step;
# - **linspace**: evenly spaced from $T-1$ to $0$, rounded.

# %%
steps_demo = 10
fig, ax = plt.subplots(figsize=(9, 2.4))
for row, spacing in enumerate(["leading", "trailing", "linspace"]):
    ts = samplers.ddim_timesteps(sched.T, steps_demo, spacing)
    ax.scatter(ts, [row] * len(ts), s=30)
    ax.text(1060, row, f"first t = {ts[0]}, last t = {ts[-1]}", va="center", fontsize=9)
ax.set_yticks([0, 1, 2], ["leading", "trailing", "linspace"])
ax.set_xlim(-20, 1400)
ax.set_xticks(range(0, 1001, 100))
ax.set_xlabel("timestep t")
ax.invert_yaxis()
ax.set_title(f"the {steps_demo} timesteps DDIM visits, out of T = {sched.T}")
fig.tight_layout()
plt.show()

# %% [markdown]
# All three agree on the spacing ($\approx 100$) and differ at the ends. "Leading" never visits
# $t = 999$: it starts at $t = 900$, where $x_t$ would still hold a trace of the image
# ($\sqrt{\bar\alpha_{900}} \approx 0.016$, against $0.006$ at $t = 999$), so pure noise is a slightly
# wrong starting point. "Trailing" starts at 999 but ends at $t = 99$ ($\sqrt{\bar\alpha_{99}} \approx
# 0.95$): its last call jumps from a lightly noised image straight to the clean one. The differences
# shrink as the number of steps grows. We use the package's default, "leading", below; the exercises
# at the end let you compare.
#
# ## Exercise: the deterministic DDIM step
#
# Write `my_ddim_step(x_t, eps, t, t_prev, schedule)` for $\eta = 0$: eq. 12 without the noise term.
# `t_prev = -1` means "jump to the clean image"; there $\bar\alpha_{-1} = 1$ (no noise left).
# Complete it, then run the check under it.

# %%
def my_ddim_step(x_t, eps, t, t_prev, schedule):
    """Deterministic DDIM (eq. 12, eta = 0): x_{t_prev} = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev) eps."""
    ### BEGIN SOLUTION
    ab_t = float(schedule.alpha_bar[t])
    ab_prev = float(schedule.alpha_bar[t_prev]) if t_prev >= 0 else 1.0
    x0_hat = (x_t - (1 - ab_t) ** 0.5 * eps) / ab_t**0.5
    return ab_prev**0.5 * x0_hat + (1 - ab_prev) ** 0.5 * eps
    ### END SOLUTION


# %% [markdown]
# <!-- hint: ddim_step -->

# %%
my_ddim_step = check.ddim_step(my_ddim_step)

# %%
pkg_x, _ = samplers.ddim_step(x_t, eps, 600, 550, sched, eta=0.0)
assert torch.allclose(my_ddim_step(x_t, eps, 600, 550, sched), pkg_x, atol=1e-5)
print("the step from t = 600 to 550 matches samplers.ddim_step")

# %% [markdown]
# ### Your sampler, in six lines
#
# Pure noise, then `my_ddim_step` along the sub-grid. With $\eta = 0$ nothing random happens after the
# start, so if we draw the starting noise $x_{T-1}$ the way `samplers.sample` does (from a generator seeded with `seed`), the
# two must give the same images:

# %%
@torch.no_grad()
def my_ddim_sample(model, schedule, labels, steps, seed=0):
    x = torch.randn((len(labels), 1, 28, 28), generator=torch.Generator().manual_seed(seed)).to(device)
    ts = samplers.ddim_timesteps(schedule.T, steps)
    for t, t_prev in zip(ts, ts[1:] + [-1]):
        eps = model(x, torch.full((len(labels),), t, device=device), labels.to(device))
        x = my_ddim_step(x, eps, t, t_prev, schedule)
    return x


labels = torch.arange(10)
mine = my_ddim_sample(model, sched, labels, steps=20)
theirs = samplers.sample(model, sched, y=labels, sampler="ddim", steps=20, eta=0.0, clip_x0=False, seed=0,
                         progress=False)
assert torch.allclose(mine, theirs, atol=1e-4)
show_images(mine, nrow=10, title="your DDIM sampler: 20 steps, eta = 0 (one image per class)")
plt.show()

# %% [markdown]
# Twenty network calls instead of a thousand. Are the digits as good as DDPM's? That is a
# measurement, not an impression: chapter 08 sampled 500 images each way from this model and graded
# them (`python scripts/evaluate_all.py steps`; FD ± one standard deviation, lower is better; the
# floor is real digits against real digits):

# %%
steps_rows = load_results("steps")  # data/results/steps.json
for r in steps_rows:
    if (r["sampler"], r["steps"]) in (("ddim", 20), ("ddim", 50), ("ddpm", 1000)):
        print(f"{r['sampler']} {r['steps']:4d} steps: FD {r['fd']:6.1f} ± {r['fd_std']:.1f} "
              f"(floor {r['fd_real_floor']:.1f}), class accuracy {r['class_accuracy']:.1%}, "
              f"{r['sample_seconds']:.0f} s for n = {r['num']} images")
say("ddim_20_vs_ddpm", "ddim_flat_from_20_steps")
times = {(r["sampler"], r["steps"]): r["sample_seconds"] for r in steps_rows}
print(f"DDPM took {times[('ddpm', 1000)] / times[('ddim', 20)]:.0f}x DDIM's time for its 1000 steps (one run of "
      "the script, one machine, one after the other)")

# %% [markdown]
# A gap smaller than twice the combined spread is not a measured difference (chapter 08 explains the
# rule; each sentence above is a tested claim).
#
# ### Paper's code vs ours: the DDIM grid and clipping
#
# Yu 2025's `ddim_sample` ([disanda/GM](https://github.com/disanda/GM/tree/main/DDPM-DDIM-ClassifierFree),
# `ddpm.py`) is eq. 12 with $\eta = 0$ too, but three lines differ from ours:
#
# 1. its grid is `range(0, T, T // steps) + 1`: shifted by one, it visits 951, 901, ..., 1 where
#    "leading" visits 950, 900, ..., 0;
# 2. its list of previous timesteps starts at 0, so the last step lands on $\bar\alpha_0$ (one
#    step's noise left in) instead of the clean image, $\bar\alpha = 1$ (the `ends_on_alpha_bar_0`
#    mistake the check above knows);
# 3. it clips $\hat x_0$ to $[-1, 1]$ but keeps the raw $\epsilon_\theta$ in the "direction" term,
#    so the pair no longer describes $x_t$: `clip_x0=True` in our sampler steps with the noise that
#    the clipped $\hat x_0$ implies instead (diffusers' `use_clipped_model_output`).
#
# Which of them matters? `python scripts/paper_vs_ours.py` sampled 500 guided digits ($s = 3$, 20
# steps) from the shipped model with each variant, from the same starting noise, and graded them:

# %%
paper = load_results("paper_ddim")  # data/results/paper_ddim.json
print(f"{paper['num']} samples each, DDIM {paper['steps']} steps, s = {paper['guidance']:g}; `{paper['command']}`")
for arm in paper["arms"]:
    print(f"{arm['class_accuracy']:7.1%} recognised, FD {arm['fd']:7.1f} ± {arm['fd_std']:5.1f}  {arm['arm']}")

# %% [markdown]
# Compare the rows that differ in one thing. The first two differ only in the grid (offset and final
# step); the second and third only in the noise used beside a clipped $\hat x_0$; the last row does
# not clip at all. By chapter 08's rule (a gap counts when it exceeds twice the combined spread):

# %%
say("paper_grid_is_not_the_difference", "implied_eps_beats_raw_eps", "clipping_vs_none")

# %% [markdown]
# Keeping the raw noise beside a clipped guess is the change that decides the outcome: early in sampling, $\hat x_0$ is far out of range (chapter 05), clipping moves it a long
# way, and the raw $\epsilon_\theta$ then no longer matches it, so every step pushes $x_t$ off the
# path the model was trained on. (The results page's recipe section measured the same effect on a model
# trained for 10 minutes.)

# %% [markdown]
# ## Play: steps and $\eta$
#
# Below, the same labels and the same seed for every setting, precomputed over a grid of step counts
# and $\eta$, so the sliders only pick a result. The static table shows the first images of each
# setting; the viewer shows them all.

# %%
steps_grid = [5, 10, 20, 50]
eta_grid = [0.0, 0.5, 1.0]
n = dl.pick(default=16, fast=4, gpu=32)
grid_labels = torch.arange(n) % 10
results, seconds = {}, {}
for s in steps_grid:
    for e in eta_grid:
        start = time.perf_counter()
        results[(s, e)] = samplers.sample(model, sched, y=grid_labels, steps=s, eta=e, seed=0,
                                          progress=False).cpu()
        seconds[(s, e)] = time.perf_counter() - start
captions = {k: f"{v:.1f} s for {n} images" for k, v in seconds.items()}

# %%
# NBVAL_IGNORE_OUTPUT
steps_slider, eta_slider = sampler_controls(results, steps_grid, eta_grid, nrow=8, static_per_cell=4,
                                            captions=captions, title="DDIM: rows = steps, columns = eta")

# %% [markdown]
# - Down the $\eta = 0$ column the images *stay the same digits*: more steps only refine the strokes.
# - With $\eta > 0$ fresh noise enters at every step, so the image no longer depends on $x_{T-1}$ alone:
#   the same start ends as a differently shaped digit, and it changes again with the step count
#   (each count draws different noise). The larger $\eta$, the more it wanders.
# - How few steps still give digits you can read? Chapter 08's steps sweep grades 5 to 100 steps.
#
# ## Speed against steps
#
# Each step is one network call on the whole batch, so the time grows linearly with the number of
# steps. Measured here (one image per class, $\eta = 0$); the dashed line extends the fit to DDPM's 1000.

# %%
speed_steps = dl.pick(default=[5, 10, 20, 50, 100, 200], fast=[5, 10, 20, 50])
speed_images, speed_seconds = {}, []
for s in speed_steps:
    start = time.perf_counter()
    speed_images[s] = samplers.sample(model, sched, y=labels, steps=s, seed=0, progress=False).cpu()
    speed_seconds.append(time.perf_counter() - start)

slope, intercept = torch.linalg.lstsq(
    torch.tensor([[s, 1.0] for s in speed_steps]), torch.tensor(speed_seconds)[:, None]
).solution.flatten().tolist()
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(speed_steps, speed_seconds, "o", label="measured")
ax.plot([0, 1000], [intercept, intercept + 1000 * slope], "--", color="gray", label="linear fit")
ax.set_xlabel("steps (network calls)")
ax.set_ylabel("seconds for 10 images")
ax.set_title(f"{1000 * slope:.1f} ms per step on {device.type}: 1000 steps would take "
             f"{intercept + 1000 * slope:.0f} s", fontsize=10)
ax.legend()
plt.show()

# %% [markdown]
# ## Same noise, same image
#
# With $\eta = 0$ the sampler is a fixed map from the starting noise $x_{T-1}$ to an image. Different step
# counts approximate the same map more or less finely, so they land on (nearly) the same image:

# %%
table_figure({(s, 0): speed_images[s] for s in speed_steps}, speed_steps, [0], "steps", "", per_cell=10,
             cell_size=0.6, title="eta = 0, the same starting noise in every row (one image per class)")
plt.show()

reference = speed_images[speed_steps[-1]]
distance = [(speed_images[s] - reference).abs().mean().item() for s in speed_steps]
print("mean |pixel difference| from the", speed_steps[-1], "step images:",
      ", ".join(f"{s} steps: {d:.3f}" for s, d in zip(speed_steps, distance)))

# %% [markdown]
# The differences shrink as the step count grows: the coarse runs are approximations of the same
# trajectory. This is what makes DDIM useful for editing: the noise $x_{T-1}$ acts like a *code* for the
# image (and DDIM can even be run backwards to find the code of a real image, "DDIM inversion").
#
# ## Walking between two images
#
# If the noise is a code, nearby codes should give similar images. Take two noises $z_0, z_1$ and
# a class, and decode points between them. The obvious path, the straight line
# $(1-\lambda) z_0 + \lambda z_1$, has a flaw: halfway, its length is only about $0.71$ of a typical
# noise vector's (two independent Gaussians partly cancel), so the sampler starts from a "quieter"
# $x_{T-1}$ than any it was built for. Spherical interpolation (slerp), which the DDIM paper uses for this
# experiment, walks along the arc instead and keeps the length:
#
# $$\text{slerp}(z_0, z_1; \lambda) = \frac{\sin((1-\lambda)\theta)}{\sin\theta}\,z_0
#   + \frac{\sin(\lambda\theta)}{\sin\theta}\,z_1, \qquad \cos\theta = \frac{\langle z_0, z_1\rangle}
#   {\lVert z_0\rVert\,\lVert z_1\rVert}$$

# %%
def slerp(z0, z1, lam):
    """Spherical interpolation between two noise tensors (lam in [0, 1])."""
    cos = (z0 * z1).sum() / (z0.norm() * z1.norm())
    theta = torch.arccos(cos.clamp(-1, 1))
    return (torch.sin((1 - lam) * theta) * z0 + torch.sin(lam * theta) * z1) / torch.sin(theta)


g = torch.Generator().manual_seed(3)
z0, z1 = torch.randn(1, 1, 28, 28, generator=g), torch.randn(1, 1, 28, 28, generator=g)
lams = torch.linspace(0, 1, dl.pick(default=9, fast=5))
paths = {"slerp": torch.cat([slerp(z0, z1, lam) for lam in lams]),
         "straight line": torch.cat([(1 - lam) * z0 + lam * z1 for lam in lams])}

fig, ax = plt.subplots(figsize=(5, 2.6))
for name, x in paths.items():
    ax.plot(lams, x.flatten(1).norm(dim=1) / z0.norm(), "o-", label=name)
ax.set_xlabel("$\\lambda$")
ax.set_ylabel("length / length of $z_0$")
ax.set_title("how loud is the interpolated noise?", fontsize=10)
ax.legend()
plt.show()

# %%
digit = 2
rows = {"slerp, s = 1": (paths["slerp"], None), "straight line, s = 1": (paths["straight line"], None),
        "slerp, guidance s = 3": (paths["slerp"], 3.0)}
walk = {(name, 0): samplers.sample(model, sched, y=torch.full((len(lams),), digit), x_T=x, guidance=s,
                                   steps=dl.pick(default=50, fast=20), seed=0, progress=False)
        for name, (x, s) in rows.items()}
table_figure(walk, list(rows), [0], "path", "", per_cell=len(lams), cell_size=0.8,
             title=f"class {classes[digit]}: decoding noises between z0 (left) and z1 (right)")
plt.show()

clf = load_classifier("mnist")[0]
for name in rows:
    _, pred, conf = features_and_predictions(clf, walk[(name, 0)].clamp(-1, 1))
    ink = ((walk[(name, 0)] + 1) / 2 > 0.5).float().flatten(1).mean(1)  # share of inked pixels: stroke weight
    print(f"{name:<22} read as a {classes[digit]}: {int((pred == digit).sum())} of {len(lams)} frames "
          f"(lowest confidence {conf.min():.2f}); ink per frame: {' '.join(f'{100 * v:.0f}%' for v in ink.tolist())}")

# %% [markdown]
# Read the figure with the printed lines (the course's digit classifier, and the share of pixels
# that are ink, a measure of stroke weight, frame by frame):
#
# - **The label holds the digit.** The classifier reads every frame of all three walks as the digit
#   asked for, with high confidence: a class-conditional model turns any noise into that class. What
#   the walk changes is *style*: stroke weight, slant and shape move from $z_0$'s digit to $z_1$'s.
# - **Slerp keeps the noise typical**, so every frame is a sample the model could have drawn from a
#   real start. **The straight line's middle frames** start from noise quieter than any real start
#   (the plot above): they are not samples of the model's distribution, whatever they look like.
#   A quieter start acts like a lower sampling temperature; on this small model the effect is modest
#   (compare the two ink rows), on large image models it shows as flat, washed-out images.
# - **Guidance** ($s = 3$) draws the same walk with bolder strokes, more ink in every frame: chapter
#   07's trade of variety for a more emphatic digit, applied to every frame alike.
#
# So: interpolate on the sphere (slerp). An unconditional model has no label to hold the digit, and
# there the middle of a walk can fall between two digits: try it with `mnist_uncond`.

# %% [markdown]
# ## What to try next
#
# - In the "steps and $\eta$" grid, add `spacing="trailing"` to the `samplers.sample` call and rerun:
#   which spacing is better at 5 steps?
# - Sample with `steps=1`: one jump from pure noise to $\hat x_0$. What does the model's single guess
#   look like, and why is it blurry?
# - Change `digit`, or the seed of the two noises, in the last section. Try `lams` beyond $[0, 1]$.
# - DDIM runs backwards too: starting from a real digit, apply `my_ddim_step` with `t_prev > t`
#   (swap the roles) up to $t = 999$, then sample from the result. How close do you get back?
