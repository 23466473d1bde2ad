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
# # 07 · Classifier-free guidance
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/07_classifier_free_guidance.ipynb)
#
# A class-conditional model draws *a* digit of the class you ask for, but some of its draws are
# sloppy, ambiguous ones. Classifier-free guidance (Ho & Salimans 2022,
# [arXiv:2207.12598](https://arxiv.org/abs/2207.12598)) is a dial that trades variety
# for clarity: at every sampling step, compare what the model predicts *with* the label and *without*
# it, and push further in the direction the label points. It is the "guidance scale" of every
# text-to-image model.
#
# **In this notebook you will**
# - see how one network learns both a conditional and an unconditional model (label dropout);
# - write the guidance formula (exercise) in its two common forms, and pin down which one diffusers uses;
# - turn the guidance scale with a class picker, and look at a grid of scales against seeds;
# - measure what guidance costs: the diversity of the samples falls as their class becomes clearer.

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
from diffusion_lab import claims, samplers
from diffusion_lab.claims import say
from diffusion_lab.classifier import features_and_predictions, load_classifier
from diffusion_lab.course import check
from diffusion_lab.course.plots import show_strip, table_figure
from diffusion_lab.course.widgets import guidance_viewer
from diffusion_lab.guidance import guided_eps
from diffusion_lab.results import load_results

torch.manual_seed(0)
device = dl.pick_device()
model, sched, config = dl.load_pretrained("mnist_cfg", device=device)
model.eval()
classes = config["classes"]
null = model.num_classes  # the label that means "no label"
p_uncond = config["training"]["p_uncond"]
print(f"device: {device}; fast mode: {dl.fast_mode()}; classes {classes}, null label {null}, "
      f"trained with p_uncond = {p_uncond}")

# %% [markdown]
# ## One network, two models: label dropout
#
# The shipped model $\epsilon_\theta(x_t, t, y)$ takes a label $y \in \{0, \dots, 9\}$, plus one extra
# value, the **null label** $\varnothing$ (stored as 10), which means "no label". During training
# (chapter 04) each label is replaced by $\varnothing$ with probability $p_\text{uncond} = 0.1$. So the
# same weights learn two things at once:
#
# - $\epsilon_c = \epsilon_\theta(x_t, t, y)$: the noise, knowing the class (the conditional model);
# - $\epsilon_u = \epsilon_\theta(x_t, t, \varnothing)$: the noise, for a digit of any class (the
#   unconditional model).
#
# Here is a training batch as the network sees it (`dl.drop_labels` is the function `training.train` calls):

# %%
data = dl.load_data("mnist", "train", limit=dl.pick(default=5000, fast=1000), verbose=False)
g = torch.Generator().manual_seed(4)
idx = torch.randint(len(data), (12,), generator=g)
y_batch = dl.drop_labels(data.labels[idx], p_uncond, null, generator=g)
show_strip(data.images[idx][:, None], ["∅" if v == null else str(v.item()) for v in y_batch], size=0.9,
           title="the label the network is given with each image (∅: dropped)")
plt.show()

# %% [markdown]
# At sampling time the package asks for both predictions in *one* batched call: the images twice,
# once with their labels and once with $\varnothing$. (A model called with `y=None` also uses the null
# label, so for this model `None` and $\varnothing$ are the same thing.)

# %%
x_t = torch.randn(4, 1, 28, 28, generator=g).to(device)
t_now = torch.full((4,), 700, device=device)
y_now = torch.tensor([3, 3, 8, 8], device=device)
with torch.no_grad():
    eps_c = model(x_t, t_now, y_now)
    eps_u = model(x_t, t_now, torch.full_like(y_now, null))
    assert torch.allclose(model(x_t, t_now, None), eps_u)

# %% [markdown]
# ## The guidance formula
#
# Ho & Salimans (2022, eq. 6) write the guided noise prediction with a guidance *strength* $w \ge 0$:
#
# $$\tilde\epsilon = (1 + w)\,\epsilon_c - w\,\epsilon_u .$$
#
# Rearranged with $s = 1 + w$ it reads
#
# $$\tilde\epsilon = \epsilon_u + s\,(\epsilon_c - \epsilon_u) .$$
#
# This second form is the one the diffusers library (and this package: `guidance=s`) uses; its
# `guidance_scale` is $s$. Same formula, shifted by one, so beware when comparing numbers:
#
# | | Ho & Salimans' $w$ | diffusers `guidance_scale` $s$ |
# |---|---|---|
# | unconditional ($\tilde\epsilon = \epsilon_u$) | $-1$ | 0 |
# | plain conditional, no guidance ($\tilde\epsilon = \epsilon_c$) | 0 | 1 |
# | Stable Diffusion's usual default | 6.5 | 7.5 |
#
# Why does it work? By Bayes' rule, $\nabla \log p(x \mid c) - \nabla \log p(x) = \nabla \log p(c \mid x)$,
# and a noise prediction is a scaled, negated score ($\epsilon \approx -\sqrt{1-\bar\alpha_t}\,\nabla_{x_t}
# \log p(x_t)$). So $\epsilon_c - \epsilon_u$ points like the gradient of an *implicit classifier* for
# the class. With $s > 1$ we follow that gradient harder than the model alone would: samples become
# more typical of their class, and less varied. No separate classifier needed, hence the name.
#
# ## Exercise: the guided noise
#
# Complete `my_guided_eps(eps_c, eps_u, s)` in the diffusers form, then run the check under it.

# %%
def my_guided_eps(eps_c, eps_u, s):
    """Classifier-free guidance in the diffusers form."""
    ### BEGIN SOLUTION
    return eps_u + s * (eps_c - eps_u)
    ### END SOLUTION


# %% [markdown]
# <!-- hint: guided_eps -->

# %%
my_guided_eps = check.guided_eps(my_guided_eps)

# %% [markdown]
# Tie it to the package's `guided_eps(model, x, t, y, s)`, which runs the model itself: $s = 1$ must
# give $\epsilon_c$, $s = 0$ must give $\epsilon_u$, and any other $s$ your formula, which also equals
# Ho & Salimans' form with $w = s - 1$.

# %%
with torch.no_grad():
    assert torch.allclose(guided_eps(model, x_t, t_now, y_now, 1.0), eps_c, atol=1e-4)  # s = 1: conditional
    assert torch.allclose(guided_eps(model, x_t, t_now, y_now, 0.0), eps_u, atol=1e-4)  # s = 0: unconditional
    for s in (3.0, 7.0):
        pkg = guided_eps(model, x_t, t_now, y_now, s)
        assert torch.allclose(my_guided_eps(eps_c, eps_u, s), pkg, atol=1e-4)
        w = s - 1
        assert torch.allclose((1 + w) * eps_c - w * eps_u, pkg, atol=1e-4)  # Ho & Salimans' form
print("s = 1 gives eps_c, s = 0 gives eps_u, and both forms agree with guided_eps")

# %% [markdown]
# ## What guidance does to one prediction
#
# Take one real digit, noise it halfway ($t = 600$), and ask the model for its guess of the clean
# image $\hat x_0$ (eq. 15) under every label and several scales. At $s = 0$ the label is ignored, so
# every column shows the same guess: the unconditional model's reading of the noisy digit.

# %%
guess_scales = [0.0, 1.0, 3.0, 7.0]
source = 4  # the index of the real digit to noise (in `data`)
t_mid = 600
x_src = data.images[source : source + 1].to(device)
x_mid = dl.q_sample(x_src, t_mid, sched, torch.randn(x_src.shape, generator=g).to(device)).expand(10, -1, -1, -1)
t_b = torch.full((10,), t_mid, device=device)
guesses = {}
with torch.no_grad():
    for s in guess_scales:
        eps = guided_eps(model, x_mid, t_b, torch.arange(10, device=device), s)
        x0_hat = dl.predict_x0(x_mid, eps, t_b, sched).cpu()
        guesses.update({(s, c): x0_hat[c : c + 1] for c in range(10)})
show_strip(torch.stack([x_src.cpu(), x_mid[:1].cpu()]),
           [f"a real {classes[data.labels[source]]}", f"noised, t = {t_mid}"], size=1.0)
plt.show()
table_figure(guesses, guess_scales, range(10), "s", "label", per_cell=1, cell_size=0.75,
             row_fmt=lambda v: f"{v:g}", title="the model's guess of the clean image, per label and scale")
plt.show()

# %% [markdown]
# At $s = 1$ each column already turns into its own class: halfway through the noise, the image
# leaves the model a lot of freedom, and the label decides. Larger $s$ pushes further along
# $\epsilon_c - \epsilon_u$: the guesses get bolder and higher in contrast, and at $s = 7$ they start
# to distort.

# %% [markdown]
# ## Sampling with guidance: a class picker and a scale slider
#
# Now full DDIM runs (chapter 06) with guidance at every step, for every class at a range of scales,
# all from the same starting noises: for each class, seed $k$ starts from the same $x_{T-1}$ at every
# scale. Precomputed once, so the controls below only pick images.

# %%
scales = [0.0, 1.0, 2.0, 3.0, 5.0, 7.0]
n = dl.pick(default=6, fast=2, gpu=16)  # samples (seeds) per class
steps = dl.pick(default=20, fast=10, gpu=50)
y_all = torch.arange(10).repeat_interleave(n)  # class-major: n images of 0, then n of 1, ...
images = {}
start = time.perf_counter()
for s in scales:
    out = samplers.sample(model, sched, y=y_all, guidance=s, steps=steps, seed=0, progress=False).cpu()
    images.update({(c, s): out[c * n : (c + 1) * n] for c in range(10)})
print(f"{len(scales)} scales x {len(y_all)} images, {steps} DDIM steps each: "
      f"{time.perf_counter() - start:.0f} s (each guided step runs the model on a double batch)")

# %%
# NBVAL_IGNORE_OUTPUT
class_picker, scale_slider = guidance_viewer(images, classes, scales, nrow=min(n, 8),
                                             title="rows: guidance scale s; columns: class (first seed)")

# %% [markdown]
# ## One class: scales against seeds
#
# Rows are scales, columns are seeds (each column starts from the same noise in every row).

# %%
digit = 4
fig = table_figure({(s, digit): images[(digit, s)] for s in scales}, scales, [digit], "s", "class",
                   per_cell=n, cell_size=0.8, row_fmt=lambda v: f"{v:g}")
plt.show()

# %% [markdown]
# Read down a column: the same noise becomes, at $s = 0$, a digit of whatever class the unconditional
# model drifts to; at $s = 1$ usually a plain digit of the class; at $s = 3$ a bolder, more
# stereotypical one; at $s = 7$ a heavy, over-saturated one. Read along a row: the higher the scale,
# the more the seeds look alike.
#
# ## Adherence against diversity
#
# Two numbers per scale, over all classes:
#
# - **diversity**: the mean pixel distance between two samples of the same class (from different seeds);
# - **adherence**: the share of samples that the course's digit classifier (chapter 08) reads as the
#   class that was asked for.

# %%
clf = load_classifier("mnist")[0]


def diversity(x):
    """Mean Euclidean distance between two different samples of x (N, C, H, W), in pixel units."""
    flat = x.clamp(-1, 1).flatten(1)
    d = torch.cdist(flat, flat)
    return (d.sum() / (len(x) * (len(x) - 1))).item()


def adherence(x, c):
    """Share of the samples in x that the classifier reads as class c."""
    _, pred, _ = features_and_predictions(clf, x.clamp(-1, 1))
    return (pred == c).float().mean().item()


div = [sum(diversity(images[(c, s)]) for c in range(10)) / 10 for s in scales]
adh = [sum(adherence(images[(c, s)], c) for c in range(10)) / 10 for s in scales]
fig, axes = plt.subplots(1, 2, figsize=(10, 3))
axes[0].plot(scales, div, "o-")
axes[0].set_ylabel("mean distance between samples")
axes[0].set_title("diversity within a class")
axes[1].plot(scales, [100 * a for a in adh], "o-", color="C1")
axes[1].set_ylabel("% read as the requested class")
axes[1].set_title("adherence")
for ax in axes:
    ax.set_xlabel("guidance scale s")
fig.tight_layout()
plt.show()

# %% [markdown]
# As the scale grows, diversity falls, while adherence rises from the unconditional level ($s = 0$:
# about one in ten, chance) and then levels off: past a few units of guidance, samples do not become
# *more* recognisable, only more alike and more saturated. That is the trade-off every guidance scale
# picks a point on. These curves come from a few samples per class (`n` above), so they are rough;
# chapter 08 measures the same trade with 500 samples per scale and error bars. Large text-to-image
# models typically use $s$ = 5 to 8.
#
# ### Paper's code vs ours: guidance
#
# Yu 2025's `ddpm_classFree.py` ([disanda/GM](https://github.com/disanda/GM/tree/main/DDPM-DDIM-ClassifierFree))
# carries the name, but it trains and samples a plain conditional model: every training batch keeps
# its true labels (no label dropout, and its label embedding has no null entry), and its samplers call
# `model(x, t, label)` once per step, with no unconditional prediction and no guidance formula. In
# this chapter's terms that is $s = 1$. What guidance adds on top of it, measured on the shipped model
# (`python scripts/evaluate_all.py guidance`, DDIM 20 steps; ± one standard deviation, chapter 08):

# %%
guidance_rows = load_results("guidance")  # data/results/guidance.json
for r in guidance_rows:
    if r["guidance"] in (1.0, 3.0):
        acc = claims.measure(r, "class_accuracy")
        what = "plain conditional, as Yu 2025's code" if r["guidance"] == 1.0 else "guided"
        print(f"s = {r['guidance']:g} ({what}): class accuracy {100 * acc.value:.1f}% ± {100 * acc.std:.1f}, "
              f"within-class spread {r['within_class_spread']:.1f}, FD {r['fd']:.1f} ± {r['fd_std']:.1f} "
              f"(floor {r['fd_real_floor']:.1f}), n = {r['num']}")
say("guidance_buys_accuracy", "guidance_costs_fd")

# %% [markdown]
# Guidance buys accuracy with variety: the within-class spread falls, and FD, which counts variety,
# rises. A model trained without label dropout
# cannot make that trade at all: it has no $\epsilon_u$ to extrapolate from (chapter 04's last viewer
# shows the error of an untrained null label).

# %% [markdown]
# ## What to try next
#
# - Negative or fractional scales: what does $s = -1$ do? And $s = 0.5$?
# - Use `eta=1.0` in the sampling cell: does stochastic sampling keep more diversity at high scales?
# - Guidance only for part of the run: write a loop with `samplers.ddim_step` and `guided_eps` that
#   uses $s = 5$ for $t > 500$ and $s = 1$ afterwards (or the reverse). Which half matters?
# - Negative prompts, MNIST style: in a sampling loop of your own, replace $\epsilon_u$ by the prediction
#   for *another* class (say, ask for a 7 and use the label 1 in place of $\varnothing$). Guidance then
#   pushes toward one class and away from the other.
