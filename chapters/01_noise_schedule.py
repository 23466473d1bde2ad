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
# # 01 · Noise schedules
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/01_noise_schedule.ipynb)
#
# A diffusion model destroys images with noise, a little at a time, and learns to reverse that.
# The **noise schedule** decides how much noise each step adds. It is a list of $T$ numbers, and
# everything else in the forward process follows from it.
#
# **In this notebook you will**
# - define $\beta_t$, $\alpha_t$, $\bar\alpha_t$ and the signal-to-noise ratio, and compute them yourself;
# - compare four schedules: linear, Yu 2025's scaled linear, cosine and sigmoid;
# - see why the last step must reach (almost) pure noise, and what goes wrong when it does not;
# - scrub through $t$ and watch one digit dissolve under each schedule.

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
from diffusion_lab.course.plots import plot_schedules, show_strip
from diffusion_lab.course.widgets import frame_scrubber
from diffusion_lab.schedules import schedule_from_betas

# %% [markdown]
# ## One step of noise
#
# The forward process adds Gaussian noise in $T$ small steps (Ho et al. 2020, eq. 2):
#
# $$q(x_t \mid x_{t-1}) = \mathcal{N}\!\left(x_t;\ \sqrt{1-\beta_t}\,x_{t-1},\ \beta_t I\right) \tag{2}$$
#
# $\beta_t$ is the **variance** of the noise added at step $t$ (its standard deviation is
# $\sqrt{\beta_t}$). The old image is shrunk by $\sqrt{1-\beta_t}$ at the same time, so that an
# image with variance 1 keeps variance 1: $(1-\beta_t)\cdot 1 + \beta_t = 1$.
#
# Two shorthands make the algebra readable:
#
# $$\alpha_t = 1 - \beta_t, \qquad \bar\alpha_t = \prod_{s=0}^{t} \alpha_s .$$
#
# Chaining the steps gives a closed form, the jump straight from the clean image $x_0$ to step $t$
# (eq. 4; chapter 02 checks it numerically):
#
# $$q(x_t \mid x_0) = \mathcal{N}\!\left(x_t;\ \sqrt{\bar\alpha_t}\,x_0,\ (1-\bar\alpha_t) I\right)
# \quad\Longleftrightarrow\quad x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,
# \quad \epsilon \sim \mathcal{N}(0, I). \tag{4}$$
#
# So $\sqrt{\bar\alpha_t}$ is how much **signal** survives at step $t$ and $\sqrt{1-\bar\alpha_t}$ is
# how much **noise** there is. Their squared ratio is the signal-to-noise ratio,
# $\mathrm{SNR}(t) = \bar\alpha_t / (1-\bar\alpha_t)$.
#
# *Indexing:* in this course $t$ runs $0, 1, \dots, T-1$, as in PyTorch and diffusers; Ho et al.
# count $1 \dots T$. $x_0$ is the clean image, which comes "before step 0", so $\bar\alpha_{-1} = 1$.
# `notebooks/CONVENTIONS.md` has a diagram of the indices.

# %% [markdown]
# ## Exercise: $\bar\alpha_t$ from $\beta_t$
#
# Complete `alpha_bar(betas)`: given the tensor $(\beta_0, \dots, \beta_{T-1})$, return
# $(\bar\alpha_0, \dots, \bar\alpha_{T-1})$. One line of PyTorch does it. Then run the check
# under it.

# %%
def alpha_bar(betas: torch.Tensor) -> torch.Tensor:
    ### BEGIN SOLUTION
    return torch.cumprod(1 - betas, dim=0)
    ### END SOLUTION


# %% [markdown]
# <!-- hint: alpha_bar -->

# %%
alpha_bar = check.alpha_bar(alpha_bar)

# %% [markdown]
# ## Four schedules
#
# - `linear` (Ho et al. 2020, [arXiv:2006.11239](https://arxiv.org/abs/2006.11239), with $T = 1000$):
#   $\beta_t$ rises linearly from $10^{-4}$ to $0.02$.
# - `scaled_linear` (Yu 2025, [arXiv:2512.07201](https://arxiv.org/abs/2512.07201) §3.1, the paper
#   this course follows): $\beta_t$ rises linearly from $0.0003 \cdot \frac{1000}{T}$ to $0.03 \cdot \frac{1000}{T}$.
# - `cosine` (Nichol & Dhariwal 2021, [arXiv:2102.09672](https://arxiv.org/abs/2102.09672), eq. 17):
#   defined through $\bar\alpha$ itself,
#   $\bar\alpha_t = f(t+1)/f(0)$ with $f(u) = \cos^2\!\big(\frac{u/T + s}{1 + s}\cdot\frac{\pi}{2}\big)$
#   and $s = 0.008$; then $\beta_t = 1 - \bar\alpha_t/\bar\alpha_{t-1}$, capped at $0.999$.
# - `sigmoid`: $\beta_t$ follows an S-curve from $10^{-4}$ to $0.02$ (slow, fast, slow), the
#   sigmoid of `linspace(-6, 6, T)`. It comes from the DDIM authors' code
#   ([ermongroup/ddim](https://github.com/ermongroup/ddim), `get_beta_schedule`). Jabri et al. 2022
#   also call a schedule "sigmoid", but theirs shapes $\bar\alpha$ directly: a different curve.
#
# Yu 2025's `scaled_linear` is **not** diffusers' `scaled_linear`: diffusers' is linear in
# $\sqrt{\beta}$ (a Stable Diffusion choice). Ours is linear in $\beta$, with the end points
# multiplied by $1000/T$ so that any $T$ ends as noisy as $T = 1000$. More in `CONVENTIONS.md`.
#
# The first two are one `torch.linspace` each, and the cosine schedule is three lines. Let's write
# them from scratch and check them against the package, then feed them to your `alpha_bar`.

# %%
T = 1000
schedules = {name: dl.make_schedule(name, T) for name in dl.SCHEDULES}

my_betas = {
    "linear": torch.linspace(1e-4, 0.02, T, dtype=torch.float64),
    "scaled_linear": torch.linspace(0.0003 * 1000 / T, 0.03 * 1000 / T, T, dtype=torch.float64),
}
u = torch.arange(T + 1, dtype=torch.float64)
f = torch.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2
my_betas["cosine"] = (1 - f[1:] / f[:-1]).clamp(max=0.999)  # beta_t = 1 - abar_t / abar_{t-1}

for name, betas in my_betas.items():
    assert torch.allclose(betas, schedules[name].betas, atol=1e-12), name
for name, sched in schedules.items():
    assert torch.allclose(alpha_bar(sched.betas), sched.alpha_bar, rtol=1e-10), name
print("from-scratch betas and your alpha_bar match diffusion_lab for", ", ".join(schedules))

# %% [markdown]
# Now the curves. $\beta_t$ is on a log axis: the cosine schedule's last steps shoot up to the cap
# of $0.999$, which would flatten everything else.

# %%
fig = plot_schedules(schedules, quantities=("betas", "alpha_bar", "log_snr"))
fig.axes[0].set_yscale("log")
fig.axes[0].set_title(r"$\beta_t$ (log scale)")
fig.axes[1].set_title(r"$\bar\alpha_t$")
fig.axes[2].set_title(r"log SNR $= \log \bar\alpha_t - \log(1 - \bar\alpha_t)$")
fig.axes[2].axhline(0, color="gray", lw=0.8, ls=":")
plt.show()

# %% [markdown]
# Read the middle panel as "how much of the image is left": the linear and sigmoid schedules keep
# almost all of it for the first ~100 steps, then lose it quickly; cosine spends its steps more
# evenly. The log-SNR panel shows the same thing on a better scale: cosine's curve is nearly a
# straight line through the middle, so every step removes about the same fraction of information.
#
# The two scales in eq. 4 are easier to feel than $\bar\alpha$. Solid lines are the signal
# $\sqrt{\bar\alpha_t}$, dashed lines the noise $\sqrt{1-\bar\alpha_t}$; where they cross, signal
# and noise are equally loud (SNR = 1).

# %%
fig, ax = plt.subplots(figsize=(7, 3.4))
for color, (name, sched) in zip(plt.cm.tab10.colors, schedules.items()):
    ax.plot(sched.sqrt_alpha_bar, color=color, label=name)
    ax.plot(sched.sqrt_one_minus_alpha_bar, color=color, ls="--")
    cross = int((sched.snr < 1).nonzero()[0])
    ax.plot(cross, math.sqrt(0.5), "o", color=color, ms=5)
ax.set_xlabel("t")
ax.set_title(r"signal $\sqrt{\bar\alpha_t}$ (solid) and noise $\sqrt{1-\bar\alpha_t}$ (dashed)")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ## The end must be (almost) pure noise
#
# Sampling starts from $x_{T-1} \sim \mathcal{N}(0, I)$: pure noise, no trace of an image. During
# training, though, the model only ever sees
# $x_{T-1} = \sqrt{\bar\alpha_{T-1}}\,x_0 + \sqrt{1-\bar\alpha_{T-1}}\,\epsilon$.
# If $\sqrt{\bar\alpha_{T-1}}$ is not close to zero, training and sampling disagree about the very
# first step: the model has learnt to expect a faint digit that pure noise does not contain.
#
# Let's add two schedules that get this wrong:
# - `linear, T=100`: Ho's $\beta$ range with only 100 steps, so far less total noise;
# - `short linear`: $T = 1000$ but $\beta$ stops at $0.002$ instead of $0.02$.
#
# and one that gets it right with few steps: Yu 2025's `scaled_linear, T=100`, whose
# $1000/T$ factor makes each step ten times larger.

# %%
ends = {f"{name}, T={T}": sched for name, sched in schedules.items()}
ends["scaled_linear, T=100"] = dl.make_schedule("scaled_linear", 100)
ends["linear, T=100"] = dl.make_schedule("linear", 100)
ends["short linear (beta_end 0.002)"] = schedule_from_betas(torch.linspace(1e-4, 0.002, 1000))

print(f"{'schedule':<30}{'alpha_bar_(T-1)':>16}{'signal left':>13}")
for name, sched in ends.items():
    ab = sched.alpha_bar[-1].item()
    print(f"{name:<30}{ab:>16.1e}{math.sqrt(ab):>13.3f}")

# %% [markdown]
# A signal of 0.006 is invisible under noise of size 1. A signal of 0.6 is not. Here is the same
# digit, with the same noise $\epsilon$, at the last step $t = T-1$ of each schedule:

# %%
data = dl.load_data("mnist", "train", limit=64)
x0 = data.images[7:8]  # one digit, shape (1, 1, 28, 28)
eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
last = torch.stack([dl.q_sample(x0, s.T - 1, s, eps) for s in ends.values()])  # (6, 1, 1, 28, 28)
fig = show_strip(last, [n.replace(", ", "\n").replace(" (", "\n(") for n in ends], size=1.6,
                 title="x at t = T-1: should look like pure noise")
plt.show()

# %% [markdown]
# The first five look like static; in the last two the digit is still plainly there. A model
# trained on either of those would begin sampling from an input unlike anything it was trained on.
# (Even the standard `linear` schedule leaves $\sqrt{\bar\alpha_{T-1}} \approx 0.006$, not 0.
# Lin et al. 2024 show that this small leak matters for large images; some schedules force the
# last step to exactly zero signal.)
#
# The $1000/T$ rescaling is what lets Yu 2025 use short schedules. Plotted against the fraction
# of the way through, $t/T$, the scaled linear schedule gives the same $\bar\alpha$ curve for any
# $T$, while the unscaled linear one runs out of steps before the noise is complete:

# %%
fig, ax = plt.subplots(figsize=(6, 3.2))
for name, T_ in [("scaled_linear", 1000), ("scaled_linear", 300), ("scaled_linear", 100), ("scaled_linear", 50),
                 ("linear", 1000), ("linear", 100)]:
    s = dl.make_schedule(name, T_)
    ax.plot((torch.arange(T_) + 1) / T_, s.alpha_bar, label=f"{name}, T={T_}",
            ls="-" if name == "scaled_linear" else "--")
ax.set_xlabel("t / T")
ax.set_ylabel(r"$\bar\alpha_t$")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# ### Paper's code vs ours: the schedule
#
# Yu 2025's code ([disanda/GM](https://github.com/disanda/GM/tree/main/DDPM-DDIM-ClassifierFree),
# `ddpm.py`) trains MNIST and Fashion-MNIST with **$T = 300$** (its §8.1), using `linear_beta_schedule`:
# our `scaled_linear` with $T = 300$. The course's shipped models use Ho et al.'s `linear` schedule
# with $T = 1000$. Side by side, measured on the two schedules:

# %%
paper, ours = dl.make_schedule("scaled_linear", 300), dl.make_schedule("linear", 1000)
for name, s in [("Yu 2025's code: scaled_linear, T=300", paper), ("the course: linear, T=1000", ours)]:
    half = int((s.snr < 1).nonzero()[0])  # the first t where noise outweighs signal
    print(f"{name:<38} beta {s.betas[0]:.4f} -> {s.betas[-1]:.4f} | signal left at T-1: "
          f"{s.sqrt_alpha_bar[-1]:.4f} | SNR < 1 from t/T = {half / s.T:.2f} | DDPM sampling: {s.T} network calls")

# %% [markdown]
# Both end in pure noise (the signal left at $T-1$ is tiny in both). Yu's schedule adds more noise
# in all: its $\beta$ rise to $0.03 \cdot 1000/T$, as if Ho's schedule ended at $0.03$ instead of
# $0.02$, so noise outweighs signal a little earlier in the run and even less signal is left at
# the end. What $T = 300$ buys is speed: DDPM's sampler walks every step, so 300 steps sample in
# 30% of the time. What it costs: each step is a bigger jump (look at
# the $\beta$ range), so each denoising step has more to undo. DDIM (chapter 06) makes the
# difference moot: it visits 20-50 of the $T$ steps whatever $T$ is.

# %% [markdown]
# ## Scrub through time
#
# Below, one digit is noised under each of the four schedules, with the same $\epsilon$ everywhere,
# so the only difference is the schedule. All frames are computed up front with `dl.q_sample`, so the
# slider is instant. Notice how long the cosine schedule keeps the digit readable.

# %%
ts = list(range(0, T, dl.pick(default=20, fast=100))) + [T - 1]
frames = {name: torch.stack([dl.q_sample(x0, t, s, eps) for t in ts]) for name, s in schedules.items()}
print("per schedule:", tuple(frames["linear"].shape), "= (timesteps, images, channels, height, width)")

# %%
# NBVAL_IGNORE_OUTPUT
names = list(frames)
slider = frame_scrubber(frames[names[0]], ts, description="t", nrow=1,
                        extra=[frames[n] for n in names[1:]], panel_titles=names, static_images=1,
                        title="one digit, same noise, four schedules")

# %% [markdown]
# ## What to try next
#
# - Move the slider to the $t$ where each row stops looking like a digit, and compare it with the
#   crossing points in the signal/noise figure.
# - Change `T` to 100 (top of the "Four schedules" section) and rerun: which schedules still end in
#   pure noise?
# - Make your own: `schedule_from_betas(torch.linspace(1e-4, 0.05, 1000))` or any sequence in $(0, 1)$,
#   and add it to `ends`.
# - Next, **02 · Forward noising**: check that $T$ small steps (eq. 2) and one jump (eq. 4) really give
#   the same distribution.
