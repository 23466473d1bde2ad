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
# # 13 · Flow matching: straight paths from noise to data
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/13_flow_matching.ipynb)
#
# Stable Diffusion 3 and Flux are not trained the way chapters 04-12 trained. They move each image
# towards its noise along a *straight line* and teach the network the speed and direction of that
# line: flow matching, or rectified flow. This chapter shows that it is the same family as DDPM: one
# formula for the noisy image, two choices of its coefficients, one table that turns any network
# output into any other, and samplers that are, line for line, the ones you already wrote.
#
# **In this notebook you will**
# - write both paths as one interpolant, $x_t = a_t x_0 + b_t \epsilon$, and see DDIM and Euler become one line;
# - watch particles in 2-D: straight conditional paths, curved marginal paths, and why;
# - train both paths on two moons in seconds and compare them at 1 to 50 steps (two widgets);
# - write the flow-matching loss yourself (exercise);
# - read what the same CPU budget buys on MNIST: DDPM against rectified flow, a U-Net against a
#   transformer (DiT), at 1 to 50 model calls, with spreads;
# - measure how straight each model's paths are, and sample from the shipped `mnist_flow`.

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
from diffusion_lab import paths, samplers
from diffusion_lab.claims import say, with_spread
from diffusion_lab.course import check, toy2d
from diffusion_lab.course.plots import show_images
from diffusion_lab.course.widgets import plot_picker
from diffusion_lab.results import load_results

torch.manual_seed(0)
device = dl.pick_device()
print(f"device: {device}; fast mode: {dl.fast_mode()}")

# %% [markdown]
# ## Two paths between noise and data
#
# Every model in this course noises a clean image $x_0$ in one jump,
#
# $$x_t = a_t\,x_0 + b_t\,\epsilon, \qquad \epsilon \sim \mathcal N(0, I).$$
#
# A *path* is the choice of $a_t$ and $b_t$ (stochastic interpolants, Albergo & Vanden-Eijnden 2023):
#
# | path | $a_t$ | $b_t$ | time | used by |
# |---|---|---|---|---|
# | variance-preserving (VP) | $\sqrt{\bar\alpha_t}$ | $\sqrt{1-\bar\alpha_t}$ | steps $0 \dots 999$ | DDPM, chapters 01-12 |
# | linear | $1 - t$ | $t$ | $t \in [0, 1]$ | rectified flow, flow matching, SD3, Flux |
#
# On the linear path $t = 0$ is the image and $t = 1$ pure noise, as in rectified flow (Liu et al.
# 2022), SD3 and diffusers; Lipman et al. (2023) run their time the other way. The network is told
# $1000\,t$, so it reads time on the same scale as the VP networks. The VP path keeps the variance at 1
# ($a^2 + b^2 = 1$); the linear one keeps the *sum* at 1 and travels in a straight line from $x_0$ to
# $\epsilon$. The two are not far apart: both start at the image and end at the noise, and a VP image at
# step $t$ is a linear-path image too, rescaled, at the time $s = b_t / (a_t + b_t)$ with the same
# signal-to-noise ratio $a/b$ (`paths.vp_to_linear`). The right panel puts both on that common clock.

# %%
sched = dl.make_schedule("linear", 1000)
t_lin = torch.linspace(0, 1, 201, dtype=torch.float64)
a_vp, b_vp = sched.sqrt_alpha_bar, sched.sqrt_one_minus_alpha_bar
fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
axes[0].plot(torch.arange(1000) / 999, a_vp, label="VP $a_t = \\sqrt{\\bar\\alpha_t}$")
axes[0].plot(torch.arange(1000) / 999, b_vp, label="VP $b_t = \\sqrt{1-\\bar\\alpha_t}$")
axes[0].plot(t_lin, 1 - t_lin, "--", label="linear $a_t = 1 - t$")
axes[0].plot(t_lin, t_lin, "--", label="linear $b_t = t$")
axes[0].set_xlabel("t (VP: step / 999)")
axes[0].set_title("the coefficients", fontsize=10)
axes[0].legend(fontsize=8)
s_of_vp = b_vp / (a_vp + b_vp)  # the linear-path time with the same a/b
axes[1].plot(torch.arange(1000), s_of_vp)
axes[1].set_xlabel("VP step t")
axes[1].set_ylabel("linear-path time s with the same SNR")
axes[1].set_title(f"VP step 0 is s = {float(s_of_vp[0]):.3f}, step 999 is s = {float(s_of_vp[-1]):.3f}", fontsize=10)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## One table of targets
#
# A network can be trained to predict any of four things, and with $x_t$ known each one gives the pair
# $(\hat x_0, \hat\epsilon)$ (two linear equations in two unknowns), and the pair gives every other:
#
# | target | formula | trained by |
# |---|---|---|
# | $\epsilon$ | the noise | DDPM (chapter 04) |
# | $x_0$ | the clean image | |
# | $v$ | $a_t \epsilon - b_t x_0$ | Salimans & Ho 2022 (chapter 04's v-prediction) |
# | $u = dx_t/dt$ | $a'_t x_0 + b'_t \epsilon$, on the linear path $\epsilon - x_0$ | flow matching (this chapter) |
#
# The velocity $u$ of the linear path is the same at every $t$: each image walks to its noise at constant
# speed. `paths.target` makes a target from the pair and `paths.to_x0_eps` turns it back:

# %%
g = torch.Generator().manual_seed(0)
x0, eps = torch.randn(2, 1, 28, 28, generator=g, dtype=torch.float64), torch.randn(2, 1, 28, 28, generator=g,
                                                                                    dtype=torch.float64)
t = torch.tensor(0.3, dtype=torch.float64)
a, b, da, db = paths.linear_coefficients(t)
x_t = a * x0 + b * eps
for kind in paths.TARGETS:
    pred = paths.target(kind, x0, eps, a, b, da, db)
    x0_back, eps_back = paths.to_x0_eps(pred, kind, x_t, a, b, da, db)
    print(f"{kind:>8}: pair recovered to {max((x0_back - x0).abs().max(), (eps_back - eps).abs().max()):.0e}")

# %% [markdown]
# A deterministic step from time $t$ to an earlier time $s$ keeps the predicted pair and mixes it again with
# the coefficients of $s$:
#
# $$x_s = a_s\,\hat x_0 + b_s\,\hat\epsilon .$$
#
# On the VP path that is DDIM (chapter 06, eq. 12 with $\eta = 0$). On the linear path, substitute
# $\hat x_0 = x_t - t\,\hat u$ and $\hat\epsilon = x_t + (1 - t)\,\hat u$ and it becomes
# $x_s = x_t + (s - t)\,\hat u$: **Euler's method** for the ODE $dx/dt = u_\theta(x_t, t)$, which carries noise
# at $t = 1$ to an image at $t = 0$. In the package both call the same line, `paths.step_to`:

# %%
ab_s = float(sched.alpha_bar[400])
x_t600 = sched.sqrt_alpha_bar[600] * x0 + sched.sqrt_one_minus_alpha_bar[600] * eps
ddim_x, _ = samplers.ddim_step(x_t600, eps, 600, 400, sched)
print("DDIM step minus step_to(x0, eps, a_s, b_s):      ",
      f"{(ddim_x - paths.step_to(x0, eps, ab_s ** 0.5, (1 - ab_s) ** 0.5)).abs().max():.0e}")
s = 0.1
u = eps - x0
print("Euler step x_t + (s - t) u minus step_to(x0, eps, 1 - s, s):",
      f"{(x_t + (s - t) * u - paths.step_to(x0, eps, 1 - s, s)).abs().max():.0e}")

# %% [markdown]
# ## Straight conditional paths, curved marginal paths
#
# Each training pair $(x_0, \epsilon)$ is joined by a straight line. But at sampling time the network does not
# know which image a noisy point belongs to: at a point $x$ it can only learn the *average* velocity of all
# the lines through it, $u(x, t) = \mathbb E[\epsilon - x_0 \mid x_t = x]$ (the marginal velocity; Lipman et al.
# prove that regressing on the straight lines learns exactly this average). For a finite data set the
# average has a closed form (`toy2d.exact_velocity`: the lines through $x$ weighted by how likely each data
# point makes $x$). Where lines from different data points cross, the average turns, so the paths that
# follow it *curve*, although every line it averages is straight. On two moons:

# %%
moons = toy2d.two_moons(2000)
few = moons[:400]  # the exact field sums over the data: 400 points keep it quick
g = torch.Generator().manual_seed(2)
pairs_x0, pairs_eps = few[:25], torch.randn(25, 2, generator=g)
grid_t = torch.linspace(1, 0, 101)
x = torch.randn(300, 2, generator=g)
exact_paths = [x]
for t_now, t_next in zip(grid_t[:-1], grid_t[1:]):
    u = toy2d.exact_velocity(x, few, float(t_now))
    x = x + (t_next - t_now) * u
    exact_paths.append(x)
exact_paths = torch.stack(exact_paths)

fig, axes = plt.subplots(1, 2, figsize=(10, 4.4), sharex=True, sharey=True)
for i in range(25):
    axes[0].plot([pairs_x0[i, 0], pairs_eps[i, 0]], [pairs_x0[i, 1], pairs_eps[i, 1]], color="C0", lw=0.8, alpha=0.6)
axes[0].scatter(*few.T, s=2, color="grey")
axes[0].scatter(*pairs_eps.T, s=8, color="C3", label="noise $\\epsilon$ (t = 1)")
axes[0].set_title("training: straight lines from $x_0$ to $\\epsilon$", fontsize=10)
axes[0].legend(fontsize=8, loc="lower left")
for i in range(60):
    axes[1].plot(exact_paths[:, i, 0], exact_paths[:, i, 1], color="C1", lw=0.7, alpha=0.7)
axes[1].scatter(*few.T, s=2, color="grey")
axes[1].scatter(*exact_paths[0, :60].T, s=8, color="C3")
axes[1].set_title("sampling: the exact marginal velocity's paths", fontsize=10)
for ax in axes:
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
fig.tight_layout()
plt.show()
bend = paths.straightness(grid_t.tolist(), exact_paths)
print(f"straightness of the exact marginal paths (0 = straight): {bend:.3f}; "
      f"of the straight training lines: 0")

# %% [markdown]
# The right panel's paths start straight (at $t = 1$ every point is equally likely to go anywhere, and the
# average points at the data's mean) and bend late, when the point has to choose a moon. Straightness
# (Liu et al. 2022) measures it: $S = \int_0^1 \mathbb E\,\lVert (x_1 - x_0) - dx_t/dt \rVert^2\,dt$, zero
# exactly when every path is a straight line walked at constant speed, and then one Euler step is exact.
#
# ## Both paths on the moons
#
# Now train a small network on each path: the VP path with DDPM's loss (eq. 14, `training.diffusion_loss`),
# the linear path with flow matching's (`training.flow_matching_loss`, the exercise below). Same network,
# same steps, a few seconds each:

# %%
toy_steps = dl.pick(default=1500, fast=600)
nets, toy_losses = {}, {}
for path in ("vp", "linear"):
    nets[path], toy_losses[path] = toy2d.train_toy(path, moons, steps=toy_steps)
    print(f"{path:>6}: {toy_steps} steps, last 100 losses average {sum(toy_losses[path][-100:]) / 100:.3f}")

toy_calls = [1, 2, 4, 10, 50]
toy_runs = {(path, n): toy2d.trajectories(nets[path], path, steps=n) for path in nets for n in toy_calls}


def nearest_data(points):  # how far generated points lie from the data: mean distance to the nearest moon point
    return float(torch.cdist(points, moons).min(dim=1).values.mean())


print("mean distance to the data (the real points themselves score", f"{nearest_data(toy2d.two_moons(500, seed=9)):.3f}):")
for n in toy_calls:
    print(f"  {n:>2} steps: VP (DDIM) {nearest_data(toy_runs['vp', n][1][-1]):.3f}   "
          f"linear (Euler) {nearest_data(toy_runs['linear', n][1][-1]):.3f}")

# %% [markdown]
# With one step, DDIM on the VP path divides by $a_{999} = \sqrt{\bar\alpha_{999}} \approx 0.006$ to get its
# $\hat x_0$, so any error in $\hat\epsilon$ is multiplied by about 160; Euler on the linear path divides by
# nothing ($\hat x_0 = x_1 - \hat u$) and lands on the data's blurred mean. The cell below says what these
# runs show:

# %%
one_vp, one_lin = (nearest_data(toy_runs[p, 1][1][-1]) for p in ("vp", "linear"))
four_vp, four_lin = (nearest_data(toy_runs[p, 4][1][-1]) for p in ("vp", "linear"))
print(f"1 step: DDIM's points lie {one_vp / one_lin:.0f}x as far from the data as Euler's "
      f"({one_vp:.2f} against {one_lin:.2f}); 4 steps: {four_vp:.3f} against {four_lin:.3f}, "
      f"{'within' if abs(four_vp - four_lin) < 0.5 * min(four_vp, four_lin) else 'not within'} half of each other.")

# %% [markdown]
# The widget below scrubs the time of the 50-step paths on the linear path, with the learned velocity field
# drawn as arrows (a particle moves *against* them, since time runs down):

# %%
times_lin, states_lin = toy_runs["linear", 50]
times_vp, states_vp = toy_runs["vp", 50]


def draw_particles(ax, t):
    i = min(range(len(times_lin)), key=lambda k: abs(times_lin[k] - t))
    ax.scatter(*moons[:500].T, s=2, color="lightgrey")
    if t > 0:
        points, u = toy2d.velocity_field(nets["linear"], times_lin[i])
        ax.quiver(points[:, 0], points[:, 1], -u[:, 0], -u[:, 1], color="C0", alpha=0.5, angles="xy")
    ax.scatter(*states_lin[i, :300].T, s=6, color="C1")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    ax.set_title(f"linear path, t = {times_lin[i]:.2f}: particles and -u_theta", fontsize=10)


scrub = plot_picker({"t": [1.0, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]}, draw_particles, width=4.5)

# %% [markdown]
# The second widget puts the two paths side by side on the same noise, at the number of steps you pick:

# %%
def draw_both(ax, steps, path):
    ax.scatter(*moons[:500].T, s=2, color="lightgrey")
    times, states = toy_runs[path, steps]
    ax.plot(states[:, :40, 0], states[:, :40, 1], color="C0" if path == "vp" else "C1", lw=0.6, alpha=0.6)
    ax.scatter(*states[-1, :300].T, s=6, color="C0" if path == "vp" else "C1")
    ax.set_xlim(-3, 3)
    ax.set_ylim(-3, 3)
    ax.set_aspect("equal")
    name = "VP, DDIM" if path == "vp" else "linear, Euler"
    ax.set_title(f"{name}, {steps} steps: mean distance to the data {nearest_data(states[-1]):.3f}", fontsize=10)


both = plot_picker({"steps": toy_calls, "path": ["linear", "vp"]}, draw_both, width=4.5)
print("straightness of the 50-step paths, in linear-path coordinates: "
      f"VP {paths.straightness(times_vp, states_vp):.3f}, linear {paths.straightness(times_lin, states_lin):.3f}")

# %% [markdown]
# ## The flow-matching loss
#
# Training on the linear path is DDPM's Algorithm 1 with two lines changed (Lipman et al. 2023, eq. 23;
# Liu et al. 2022, eq. 1): draw $t$ uniformly in $[0, 1]$ instead of a step, put the image on its line,
# $x_t = (1 - t)\,x_0 + t\,\epsilon$, and regress the network on the line's velocity:
#
# $$\mathcal L = \mathbb E_{x_0, \epsilon, t}\,\big\lVert (\epsilon - x_0) - u_\theta(x_t, t, y) \big\rVert^2 .$$
#
# No weighting, no schedule: the path is the schedule. Stable Diffusion 3 draws $t$ from a logit-normal
# instead, more often in the middle where the velocity is hardest to guess (Esser et al. 2024, sec. 3.1;
# `train --time-sampling logit_normal`).
#
# ## Exercise: the flow-matching loss
#
# Write `my_flow_matching_loss(model, x0, t, noise, y=None)`: `t` holds one time in $[0, 1]$ per image
# (shape `(B,)`), `noise` is $\epsilon$, and the network is called as `model(x_t, 1000 * t, y)`. Before you write
# it, work out on paper: which endpoint does $x_t$ reach at $t = 0$, which at $t = 1$, and so which way does
# the velocity point? Return the mean squared error as one number. The check names the mistake when it
# recognises one.

# %%
import torch.nn.functional as F  # noqa: E402


def my_flow_matching_loss(model, x0, t, noise, y=None):
    """Conditional flow matching on the linear path x_t = (1 - t) x0 + t noise."""
    ### BEGIN SOLUTION
    tt = t.view(-1, 1, 1, 1)
    x_t = (1 - tt) * x0 + tt * noise
    return F.mse_loss(model(x_t, t * 1000, y), noise - x0)
    ### END SOLUTION


# %% [markdown]
# <!-- hint: flow_matching_loss -->

# %%
my_flow_matching_loss = check.flow_matching_loss(my_flow_matching_loss)

# %% [markdown]
# Your loss on the moons: the loss takes images `(B, C, H, W)`, so the 2-D points travel as 1x1 images with
# 2 channels, and train the toy network for a few hundred steps with it:

# %%
class PointsAsImages(torch.nn.Module):  # (B, 2, 1, 1) <-> (B, 2) around the toy network
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x, t, y=None):
        return self.net(x.flatten(1), t)[:, :, None, None]


mine = toy2d.ToyNet()
opt = torch.optim.Adam(mine.parameters(), lr=3e-3)
g = torch.Generator().manual_seed(0)
for _ in range(dl.pick(default=600, fast=300)):
    batch = moons[torch.randint(len(moons), (256,), generator=g)][:, :, None, None]
    loss = my_flow_matching_loss(PointsAsImages(mine), batch, torch.rand(256, generator=g),
                                 torch.randn(256, 2, 1, 1, generator=g))
    opt.zero_grad()
    loss.backward()
    opt.step()
mine.eval()
_, states = toy2d.trajectories(mine, "linear", steps=10)
print(f"trained with {check.whose(my_flow_matching_loss)} loss: last loss {loss.item():.3f}; 10 Euler steps land "
      f"{nearest_data(states[-1]):.3f} from the data on average")

# %% [markdown]
# ## MNIST: the same CPU budget, three ways
#
# Now the real thing, measured by `scripts/flow_compare.py`: three class-conditional models trained for the
# same CPU time (10 minutes at the speed of each, measured side by side in one run, so each arm gets the
# steps its speed buys), all else equal: the course's DDPM recipe (VP path, $\epsilon$, the U-Net), the same
# U-Net on the linear path, and a DiT (`diffusion_lab/dit.py`, patches of 4x4 pixels) on the linear path. Each was sampled 1000 times (class-balanced, unguided, $s = 1$) at 1 to 50 model calls:
# DDIM and DPM-Solver++ 2M for the VP model (chapter 09), Euler and Heun for the flows. Training them
# takes 30 minutes, so the chapter reads the numbers.

# %%
speed = {r["arm"]: r for r in load_results("flow_speed")}
flow_rows = load_results("flow")
for arm, r in speed.items():
    print(f"{arm:>10}: {r['what']}; {r['parameters']:,} parameters, {r['train_images_per_second']:.0f} training "
          f"images/s ({r['ratio_to_ddpm_unet']:.2f}x the U-Net), {r['threads']} threads")
print("CPU:", speed["ddpm_unet"]["cpu"])

# %%
fig, ax = plt.subplots(figsize=(8, 4.2))
floor = flow_rows[0]["fd_real_floor"]
ax.axhspan(0, floor, color="lightgrey", label=f"real images' floor ({floor:.1f})")
for (arm, sampler), style in {("ddpm_unet", "ddim"): "C0o-", ("ddpm_unet", "dpmpp2m"): "C0s--",
                              ("flow_unet", "euler"): "C1o-", ("flow_unet", "heun"): "C1s--",
                              ("flow_dit", "euler"): "C2o-", ("flow_dit", "heun"): "C2s--"}.items():
    rows = sorted((r for r in flow_rows if r["arm"] == arm and r["sampler"] == sampler), key=lambda r: r["nfe"])
    ax.errorbar([r["nfe"] for r in rows], [r["fd"] for r in rows], yerr=[2 * r["fd_std"] for r in rows],
                fmt=style, capsize=3, label=f"{arm}, {sampler}", ms=4)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("model calls (NFE)")
ax.set_ylabel("FD (log scale)")
ax.set_title("same CPU budget, n = 1000 each, s = 1; bars: 2 x half-sampling std", fontsize=10)
ax.legend(fontsize=8, ncol=2)
plt.show()

# %%
lines = ["| model | sampler | calls | FD | precision | recall | class accuracy |", "|---|---|---|---|---|---|---|"]
for r in sorted(flow_rows, key=lambda r: (r["arm"], r["sampler"], r["nfe"])):
    lines.append(f"| {r['arm']} | {r['sampler']} | {r['nfe']} | {with_spread(r, 'fd')} | {r['precision']:.3f} | "
                 f"{r['recall']:.3f} | {100 * r['class_accuracy']:.1f}% |")
display(Markdown("\n".join(lines) + f"\n\nn = {flow_rows[0]['num']} images per row; FD ± its half-sampling "
                 "standard deviation; the real images' own FD at this n: "
                 f"{with_spread(flow_rows[0], 'fd_real_floor')}."))

# %% [markdown]
# What the plot and the table say, read from the rows (the sentences after them are checked claims):

# %%
row = {r["name"]: r for r in flow_rows}
one_ddim, one_euler = row["ddpm_unet ddim 1"], row["flow_unet euler 1"]
print(f"1 call: DDIM's FD is {one_ddim['fd']:,.0f} (its one step divides by a_999 ~ 0.006); Euler's is "
      f"{one_euler['fd']:.0f} with recall {one_euler['recall']:.2f}: one straight step lands every sample of a "
      f"class on the same blurred mean, which the classifier still reads as the class "
      f"({100 * one_euler['class_accuracy']:.0f}%).")
best = {arm: min((r for r in flow_rows if r["arm"] == arm), key=lambda r: r["fd"]) for arm in speed}
for arm, r in best.items():
    print(f"best of {arm}: FD {with_spread(r, 'fd')} with {r['sampler']} at {r['nfe']} calls "
          f"({r['fd'] / r['fd_real_floor']:.1f}x the real floor {r['fd_real_floor']:.1f})")

# %%
say("flow_beats_ddpm_10_calls", "flow_vs_dpm_solver_10_calls", "flow_beats_ddpm_4_calls", "flow_vs_ddpm_50_calls",
    "flow_vs_ddpm_accuracy_10_calls", "unet_vs_dit_10_calls", "heun_vs_euler_flow_10_calls")

# %% [markdown]
# ## Straightness, measured
#
# If the flow's paths were straight, one Euler step would be exact, and few-step sampling would be nearly
# free. They are not (the marginal paths curve, as on the moons), but how curved are they, on each path?
# `scripts/flow_compare.py straightness` ran each MNIST model's deterministic sampler for 50 steps on 256
# images and measured $S$ along the way, with the VP paths written in linear-path coordinates
# (`paths.vp_to_linear`), so the two are measured alike:

# %%
for r in load_results("flow_straightness"):
    print(f"{r['arm']:>10} ({r['sampler']}, {r['steps']} steps, n = {r['num']}): straightness "
          f"{r['straightness']:.4f} ± {r['straightness_std']:.4f} (standard error over the images)")
say("flow_straighter_than_ddpm", "dit_vs_unet_straightness")

# %% [markdown]
# What straightness predicts: an Euler step (and DDIM is one) is exact where the velocity does not turn
# within the step, and its error grows with how much it does. Straighter paths should therefore reach their
# best FD in fewer model calls. Do the FD curves above agree? For each first-order sampler, the fewest calls
# that came within 25% of that model's best FD:

# %%
for arm, sampler in (("ddpm_unet", "ddim"), ("flow_unet", "euler"), ("flow_dit", "euler")):
    rows = sorted((r for r in flow_rows if r["arm"] == arm and r["sampler"] == sampler), key=lambda r: r["nfe"])
    best_fd = min(r["fd"] for r in rows)
    first = next(r for r in rows if r["fd"] <= 1.25 * best_fd)
    print(f"{arm:>10} with {sampler}: within 25% of its best FD ({best_fd:.1f}) from {first['nfe']} calls on "
          f"(FD {with_spread(first, 'fd')})")

# %% [markdown]
# ## `mnist_flow`: rectified flow at MNIST scale
#
# The course ships the winning linear arm, the U-Net's 10-minute run above, as `mnist_flow` (its model card
# in `data/checkpoints/README.md` has its numbers). Its checkpoint records its path, so `sample` and
# `evaluate` pick Euler by themselves:
#
# ```bash
# python -m diffusion_lab sample --checkpoint mnist_flow --per-class 8 --out flow.png   # Euler, 10 steps, s = 3
# python -m diffusion_lab sample --checkpoint mnist_flow --per-class 8 --sampler heun --steps 5 --out heun.png
# ```
#
# Here: the same noise at 1, 2, 4 and 10 Euler steps, guided at $s = 3$.

# %%
flow, flow_sched, flow_config = dl.load_pretrained("mnist_flow", device=device)
print(f"mnist_flow: {flow_config['model']['name']}, path {flow.config['path']}, predicts the "
      f"{flow.config['prediction']}; trained {flow_config['training']['steps_done']} steps")
labels = torch.arange(10)
strips = [samplers.sample(flow, flow_sched, y=labels, steps=n, guidance=3.0, seed=0, progress=False).cpu()
          for n in (1, 2, 4, 10)]
show_images(torch.cat(strips), nrow=10, title="Euler with 1, 2, 4 and 10 steps (rows), s = 3")
plt.show()

# %% [markdown]
# ## Where it came from
#
# - **Flow matching** (Lipman, Chen, Ben-Hamu, Nickel & Le, 2023, https://arxiv.org/abs/2210.02747): regress a
#   network on the velocity of simple conditional paths; the optimum is the marginal velocity field.
# - **Rectified flow** (Liu, Gong & Liu, 2022, https://arxiv.org/abs/2209.03003): the straight line between
#   noise and data, straightness, and *reflow*, which retrains on the model's own pairs to straighten the
#   paths (chapter 15).
# - **Stochastic interpolants** (Albergo & Vanden-Eijnden, 2023, https://arxiv.org/abs/2209.15571): the
#   $x_t = a_t x_0 + b_t \epsilon$ view that contains both paths.
# - **v-prediction** (Salimans & Ho, 2022, https://arxiv.org/abs/2202.00512): the target $v$ of the table.
# - **DiT** (Peebles & Xie, 2023, https://arxiv.org/abs/2212.09748): a transformer over patches with adaLN-Zero
#   conditioning (`diffusion_lab/dit.py`).
# - **Stable Diffusion 3** (Esser et al., 2024, https://arxiv.org/abs/2403.03206) trains a rectified flow with a
#   transformer (MM-DiT) on image latents, with logit-normal $t$ and shifted sampling times (`--shift`);
#   **Flux** (Black Forest Labs, 2024) does the same at larger scale. diffusers samples both with
#   `FlowMatchEulerDiscreteScheduler`, which `tests/test_flow_matching.py` checks our Euler against, step
#   for step.
#
# **Next:** chapter 14 adds the noise back: the score, the reverse SDE, and stochastic samplers.
