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
# # 08 · Evaluation: numbers, not adjectives
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/08_evaluation.ipynb)
#
# "The samples look good" is not a measurement. This chapter turns sample quality into numbers you
# can compute on a laptop CPU, then uses them to answer questions the earlier chapters left open.
#
# **In this notebook you will**
# - meet the yardstick: a small classifier trained on the real data, and the Fréchet distance in
#   its feature space (the idea behind FID), always beside its *real-data floor*;
# - measure class accuracy of guided samples, and diversity;
# - see how many samples a number needs, with the floor and the model's FD as error bars;
# - read off, with numbers and error bars: how many DDIM steps are enough, what the guidance scale
#   trades, and whether Yu 2025's minimal U-Net or ours learns more in the same training minutes;
# - write the Fréchet distance of two Gaussians yourself.

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

# %%
import time

import matplotlib.pyplot as plt
import torch

import diffusion_lab as dl
from diffusion_lab import claims
from diffusion_lab.claims import say
from diffusion_lab.classifier import features_and_predictions, load_classifier
from diffusion_lab.course import check
from diffusion_lab.course.widgets import plot_picker
from diffusion_lab.evaluate import real_floor
from diffusion_lab.metrics import class_accuracy, frechet_distance, frechet_half_std, within_class_spread
from diffusion_lab.results import load_results

device = dl.pick_device()
print("device:", device, "| fast mode:", dl.fast_mode())

# %% [markdown]
# ## The yardstick
#
# FID (Heusel et al. 2017, [arXiv:1706.08500](https://arxiv.org/abs/1706.08500)) compares generated
# and real images through the features of an ImageNet Inception network. For 28×28 digits that
# network is the wrong tool (and a large download), so the course trains its own small CNN on the
# full MNIST training set (`scripts/train_classifiers.py`) and ships it with the features of the
# 10,000 official test images. Its penultimate layer has 128 features.
#
# Fit a Gaussian $\mathcal N(\mu, \Sigma)$ to each set of features; the Fréchet distance between them is
#
# $$ \mathrm{FD} = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{Tr}\big(\Sigma_1 + \Sigma_2 - 2 (\Sigma_1 \Sigma_2)^{1/2}\big). $$
#
# Zero means identical statistics. From a finite sample, $\mu$ and $\Sigma$ are only estimates (a
# $128 \times 128$ covariance has 8,256 numbers to estimate), so FD is biased upwards, the more the
# fewer the samples. The number means little alone: we always print the **real-data floor**, the FD
# between two disjoint sets of *real* test images at the same sample count. A perfect generator
# scores the floor, not zero.

# %%
clf, info, test_feats, test_labels = load_classifier("mnist")
print(f"classifier test accuracy: {info['test_accuracy']:.2%}  ({info['command']})")
print(f"{'samples':>8}{'floor, classes as drawn':>26}{'floor, classes balanced':>26}")
for n in (100, 500, 2000):
    drawn, _ = real_floor(test_feats, n)  # the first n of a random half: class counts vary
    balanced, _ = real_floor(test_feats, n, test_labels)  # exactly n/10 of each digit
    print(f"{n:>8}{drawn:>26.2f}{balanced:>26.2f}")

# %% [markdown]
# Two floors per count, because a floor must match what it is compared with. Our conditional
# evaluations ask for exactly one tenth of the images per digit, so their floor takes real images in
# the same class balance (right column; `evaluate_model` uses it). A random draw of real digits has
# an uneven class mix, which moves its feature mean and covariance: more distance, most of all at
# small counts (left column). Both shrink as the count grows. From here on, every floor is the
# balanced one.
#
# ### Exercise: the Fréchet distance of two Gaussians with diagonal covariances
#
# With $\Sigma_1 = \mathrm{diag}(v_1)$ and $\Sigma_2 = \mathrm{diag}(v_2)$ the matrix square root is
# elementwise, and the formula collapses to
# $\lVert \mu_1 - \mu_2\rVert^2 + \sum_i (\sqrt{v_{1,i}} - \sqrt{v_{2,i}})^2$. Complete it, then
# run the check under it.

# %%
def my_frechet_diagonal(mu1, var1, mu2, var2):
    ### BEGIN SOLUTION
    return ((mu1 - mu2) ** 2).sum() + ((var1.sqrt() - var2.sqrt()) ** 2).sum()
    ### END SOLUTION


# %% [markdown]
# <!-- hint: frechet_diagonal -->

# %%
my_frechet_diagonal = check.frechet_diagonal(my_frechet_diagonal)

# %% [markdown]
# ## A live evaluation
#
# Sample from the shipped class-conditional model (DDIM, 20 steps, guidance $s = 3$), one tenth of
# the images per digit, and measure, piece by piece. (`evaluate_model` does all of this in one call,
# and so does the command line:
# `python -m diffusion_lab evaluate --checkpoint data/checkpoints/mnist_cfg.safetensors --sampler ddim --steps 20 --guidance 3 --num 1000`.)

# %%
model, schedule, config = dl.load_pretrained("mnist_cfg", device=device)
num = dl.pick(default=500, fast=40, gpu=1000)
requested = torch.arange(num) % 10
start = time.perf_counter()
images = torch.cat([dl.sample(model, schedule, y=requested[i : i + 250], sampler="ddim", steps=20, guidance=3.0,
                              seed=i, progress=False).cpu() for i in range(0, num, 250)])
seconds = time.perf_counter() - start
feats, read_as, _ = features_and_predictions(clf, images)
floor, reference = real_floor(test_feats, num, test_labels)
fd = frechet_distance(feats, reference)
print(f"{num} samples in {seconds:.0f} s; FD {fd:.1f} (floor at {num}: {floor:.1f}); "
      f"class accuracy {class_accuracy(read_as, requested):.1%}; within-class spread "
      f"{within_class_spread(feats, requested):.2f} (real test digits: "
      f"{within_class_spread(test_feats[:1000], test_labels[:1000]):.2f})")

# %% [markdown]
# Class accuracy is how often the classifier agrees with the digit we asked for; the within-class
# spread is the mean distance of a digit's features from their centroid: how varied the samples of
# one digit are.
#
# Your diagonal FD from the exercise, on the same features, beside the full one:

# %%
mu_g, mu_r = feats.double().mean(0), reference.double().mean(0)
var_g, var_r = feats.double().var(0), reference.double().var(0)
print(f"FD with full covariances: {fd:.1f}; with the diagonals only ({check.whose(my_frechet_diagonal)} function): "
      f"{float(my_frechet_diagonal(mu_g, var_g, mu_r, var_r)):.1f}")

# %% [markdown]
# The diagonal version ignores how features vary *together*, so it misses part of the difference:
# cheap, but not the same yardstick. Never compare a diagonal FD with a full one.
#
# ## How many samples does a number need?
#
# Draw a different set of samples and FD changes. How much? Two spreads, both cheap to measure:
#
# - **the floor's**: other disjoint draws of real test images at the same count;
# - **the model's**: draws of $n$ of our generated images *without replacement*, and FD of each.
#   Up to half of what we generated, such draws vary almost as fresh samples would. For the spread
#   of the FD of all $N$ we have, take random halves: a half varies around the full set's FD with
#   variance $\sigma^2 (2/N - 1/N) = \sigma^2/N$, which is exactly the variance of FD from $N$ fresh
#   samples (half-sampling, `metrics.frechet_half_std`; its band is centred on the FD we report).
#
# Why not the textbook bootstrap, resampling *with* replacement? A resample repeats about a third of
# its points, which shrinks the fitted covariance and pushes every resampled FD upwards: its band can
# sit entirely above the FD it was meant to surround. The last line below measures that bias.
#
# Below, both spreads at every count up to half the live evaluation's (for the floor, up to 4000: a
# class-balanced draw of 4000 takes 400 of each digit from half the test set, and the rarest digit has
# about 440 there).

# %%
counts = [50, 100, 200, 500, 1000, 2000, 4000]
rounds = dl.pick(default=30, fast=5)
gen = torch.Generator().manual_seed(0)
floor_fds = {n: [real_floor(test_feats, n, test_labels, seed=s)[0] for s in range(rounds)] for n in counts}
model_fds = {}
for n in [c for c in counts if c <= num // 2]:  # without replacement: a draw never repeats an image
    model_fds[n] = [frechet_distance(feats[torch.randperm(num, generator=gen)[:n]], reference) for _ in range(rounds)]


def band(ax, values, color, label):
    ns = sorted(values)
    mid = [torch.tensor(values[n]).median().item() for n in ns]
    lo = [torch.tensor(values[n]).quantile(0.05).item() for n in ns]
    hi = [torch.tensor(values[n]).quantile(0.95).item() for n in ns]
    ax.fill_between(ns, lo, hi, color=color, alpha=0.25)
    ax.plot(ns, mid, "o-", color=color, label=label)


def draw_count(ax, n):
    bins = torch.logspace(0, 3.5, 40).tolist()
    ax.hist(floor_fds[n], bins=bins, alpha=0.6, color="gray", label="real against real (the floor)")
    if n in model_fds:
        ax.hist(model_fds[n], bins=bins, alpha=0.6, color="C0", label="the model's samples (draws of n)")
    else:
        ax.text(0.5, 0.5, f"draws of n need n <= half of the {num} samples", transform=ax.transAxes, ha="center")
    ax.set_xscale("log")
    ax.set_xlabel("Fréchet distance")
    ax.set_ylabel(f"count of {rounds} draws")
    ax.set_title(f"FD at n = {n} samples", fontsize=10)
    ax.legend(fontsize=8)


def draw_all_counts(ax):
    band(ax, floor_fds, "gray", "real-data floor (5-95% of draws)")
    band(ax, model_fds, "C0", "the model (5-95% of draws without replacement)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of samples n")
    ax.set_ylabel("Fréchet distance")
    ax.legend(fontsize=8)


# %%
# NBVAL_IGNORE_OUTPUT
count_slider, = plot_picker({"n": counts}, draw_count, static=draw_all_counts,
                            title="FD and its floor against the number of samples")

# %%
for n in counts:
    f = torch.tensor(floor_fds[n])
    line = f"n = {n:5d}: floor {f.median():7.1f} (5-95%: {f.quantile(0.05):.1f}-{f.quantile(0.95):.1f})"
    if n in model_fds:
        m = torch.tensor(model_fds[n])
        line += f" | model {m.median():7.1f} (5-95%: {m.quantile(0.05):.1f}-{m.quantile(0.95):.1f})"
    print(line)
with_replacement = [frechet_distance(feats[torch.randint(num, (num,), generator=gen)], reference) for _ in range(rounds)]
fd_all, boot = frechet_distance(feats, reference), torch.tensor(with_replacement)
print(f"all {num}: FD {fd_all:.1f} ± {frechet_half_std(feats, reference):.1f} (half-sampling); resampled with "
      f"replacement: median {boot.median():.1f}, {int((boot > fd_all).sum())} of {rounds} resamples above the FD itself")

# %% [markdown]
# At 100 samples the floor alone is large and wide, and the model's band overlaps much of what a
# better or worse model would score: two models 100 samples apart cannot be ranked. Both bands
# narrow and fall as $n$ grows. So the sweeps below use at least 500 samples per setting, and every
# FD comes with its half-sampling standard deviation: two FDs closer than twice their combined spread,
# $2\sqrt{s_1^2 + s_2^2}$, are not a measured difference. The course's result sentences are checked by
# that rule in code (`diffusion_lab/claims.py`): each is printed from the result files by `say(...)`,
# and CI fails when the numbers stop supporting it.
#
# ## Questions answered with numbers
#
# The sweeps below take 10-60 CPU minutes each, so they were run once by
# `python scripts/evaluate_all.py` and saved in `data/results/`; every row records the command
# that reproduces it. Re-run the script to check them on your machine.

# %%
def load_rows(part):
    rows = load_results(part)  # data/results/<part>.json
    if not rows:
        print(f"data/results/{part}.json is missing: run `python scripts/evaluate_all.py {part}`.")
    return rows


def fd_text(r):
    spread = f" ± {r['fd_std']:.1f}" if "fd_std" in r else ""
    return f"FD {r['fd']:7.1f}{spread} (floor {r['fd_real_floor']:.1f})"


# %% [markdown]
# ### 1. How many sampling steps? DDPM's 1000 against DDIM's 5 to 100
#
# Plain conditional sampling ($s = 1$); error bars: ± two half-sampling standard deviations; the grey
# band is the real-data floor at the same count (± two standard deviations of its draws).

# %%
rows = load_rows("steps")
if rows:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    ddim = [r for r in rows if r["sampler"] == "ddim"]
    ddpm = [r for r in rows if r["sampler"] == "ddpm"]
    for ax, x_key, label in ((axes[0], "steps", "sampling steps"), (axes[1], "sample_seconds", "wall time (s)")):
        for part, style, name in ((ddim, "o-", "DDIM (eta = 0)"), (ddpm, "s", "DDPM (1000 steps)")):
            ax.errorbar([r[x_key] for r in part], [r["fd"] for r in part],
                        yerr=[2 * r.get("fd_std", 0) for r in part], fmt=style, capsize=3, label=name)
        f, fs = rows[0]["fd_real_floor"], rows[0].get("fd_real_floor_std", 0)
        ax.axhspan(f - 2 * fs, f + 2 * fs, color="gray", alpha=0.3, label="real-data floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("Fréchet distance (lower is better)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    plt.show()
    for r in rows:
        print(f"{r['sampler']:4s} {r['steps']:4d} steps: {fd_text(r)}  accuracy {r.get('class_accuracy', 0):.1%}  "
              f"{r['sample_seconds']:6.1f} s for {r['num']} samples")

    say("ddim_20_steps_beat_5", "ddim_10_vs_20_steps", "ddim_flat_from_20_steps", "ddim_20_vs_ddpm",
        "digit_decided_in_5_steps")

# %% [markdown]
# Read the error bars before the points: where two bars (± two standard deviations) overlap by more
# than the rule allows, the data do not rank those step counts. Beyond about 10 steps more steps buy
# nothing the measurement can see. Class accuracy is the other column to watch: the *digit* is decided
# early in sampling (chapter 05), which is why even 5 steps recognise it as often as 100. And the wall
# times make the trade concrete: compare DDPM's 1000 steps with DDIM's 20 (one run of the script on
# one machine, the rows measured one after the other; compare them as ratios).

# %% [markdown]
# ### 2. The guidance scale: adherence against diversity
#
# DDIM 20 steps. Accuracy climbs with $s$ while the within-class spread (diversity) falls: guidance
# buys recognisable digits with variety. ($s = 0$ is unconditional sampling, so its accuracy is
# chance and its "within-class" spread mixes all digits.)

# %%
real_spread = within_class_spread(test_feats[:1000], test_labels[:1000])
rows = load_rows("guidance")
if rows:
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.errorbar([r["within_class_spread"] for r in rows], [r["class_accuracy"] for r in rows],
                yerr=[2 * claims.measure(r, "class_accuracy").std for r in rows], fmt="o-", capsize=3)
    for i, r in enumerate(rows):  # labels alternate above and below: the high-s points sit close together
        ax.annotate(f"s={r['guidance']:g}", (r["within_class_spread"], r["class_accuracy"]),
                    textcoords="offset points", xytext=(0, 8 if i % 2 else -16), ha="center")
    ax.axvline(real_spread, ls="--", c="gray", label="real digits' spread")
    ax.set_xlabel("within-class spread (diversity →)")
    ax.set_ylabel("class accuracy (adherence ↑), ± 2 std")
    ax.legend()
    plt.show()
    for r in rows:
        acc = claims.measure(r, "class_accuracy")
        print(f"s = {r['guidance']:g}: accuracy {100 * acc.value:5.1f}% ± {100 * acc.std:.1f}  "
              f"spread {r['within_class_spread']:5.2f}  {fd_text(r)}  (n = {r['num']})")
    say("guidance_1_beats_0_on_fd", "guidance_1_beats_2_on_fd", "guidance_2_reaches_full_accuracy")

# %% [markdown]
# FD rewards diversity as well as quality: the scale with the lowest FD is the one whose samples are
# most *like the data*, variety included, and it need not be the one with the most recognisable
# digits. Here $s = 1$ has the lowest FD, and $s = 2$ already recognises every digit. As $s$ grows
# past 1, the digits grow alike (their spread falls below the real digits', the dashed line) and FD
# rises with them: exactly the trade guidance makes. (The within-class spread was measured without a
# spread of its own, so read its trend, not its small steps.)

# %% [markdown]
# ### 3. Yu 2025's minimal U-Net against ours: the same minutes
#
# Which architecture learns more in the time a learner has? `python scripts/recipe_sweep.py minutes`
# trained each for the same wall-clock budget (3 and 10 minutes) on the same 2-core CPU, with the
# same recipe (`TrainConfig`'s defaults, full MNIST training set) and graded both with the same
# sampler settings (DDIM 20 steps, $s = 3$, 1000 samples, $\hat x_0$ clipped):

# %%
minutes = [r for r in load_results("recipe_minutes") if r["dataset"] == "mnist"]
for r in minutes:
    acc = claims.measure(r, "class_accuracy")
    print(f"{r['model']:<8} {r['minutes']:>3g} min: {r['steps']:5d} steps at {r['images_per_s']:4.0f} images/s | "
          f"n = {r['num']}: class accuracy {100 * acc.value:5.1f}% ± {100 * acc.std:.1f} | FD "
          f"{claims.with_spread(r, 'fd')} (floor {r['fd_real_floor']:.1f}) | `{r['command']}`")
say("ours_beats_minimal_3_minutes", "ours_beats_minimal_10_minutes", "ours_ten_minutes_beat_three",
    "ours_beats_minimal_10_minutes_fd", "ours_ten_minutes_vs_three_fd")

# %% [markdown]
# What this comparison does and does not show:
#
# - It **does** compare the two designs at the budget this course is about (minutes on a CPU),
#   with everything else equal: data, recipe, sampler, grader, machine.
# - It does **not** use Yu 2025's width: their minimal U-Net has 128 channels at the top level; these
#   runs used 64 (`MINIMAL_WIDTH`), and ours 16, each chosen to train fast on a CPU. On your machine,
#   the cost of a training step at each width (one batch of 64, forward and backward):

# %%
STEP_REPS = dl.pick(default=3, fast=1)


def ms_per_training_step(net, reps=STEP_REPS):
    xb, tb, yb = torch.randn(64, 1, 28, 28), torch.randint(0, 1000, (64,)), torch.randint(0, 10, (64,))
    times = []
    for _ in range(reps + 1):  # the first is a warm-up
        start = time.perf_counter()
        net(xb, tb, yb).pow(2).mean().backward()
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times[1:])[len(times[1:]) // 2]


for name, net in [("ours, width 16", dl.UNet(base_channels=16, num_classes=10)),
                  ("minimal, width 64", dl.MinimalUNet(base_channels=64, num_classes=10)),
                  ("minimal, width 128 (Yu 2025's)", dl.MinimalUNet(base_channels=128, num_classes=10))]:
    print(f"{name:<31} {dl.count_parameters(net):>9,} parameters, {ms_per_training_step(net):7.0f} ms per step")

# %% [markdown]
# - So at width 128, the same minutes would buy the minimal U-Net several times fewer steps than at
#   64 (the ratio printed above). Whether its larger width would then win is not measured here: at
#   10 CPU minutes it would see far fewer images.
# - It says nothing about *final* quality: Yu 2025 trained for 200 epochs on a GPU (about 190,000
#   steps of batch 64), hundreds of times these budgets. Given that, both designs may well converge.
#
# ### 4. Where the time embedding goes
#
# Our U-Net with $t$ and $y$ in every block, against the same U-Net with them only in the middle
# blocks (the minimal U-Net's wiring), both trained the same 600 steps (`data/checkpoints/README.md`
# has the commands), sampled with DDIM 20 steps, $s = 3$:

# %%
rows = [r for r in load_rows("architecture") if r["checkpoint"] != "mnist_cfg_minimal"]
for r in rows:
    print(f"{r['arm']:<40} {r['training_steps']} steps: accuracy {r['class_accuracy']:.1%}, {fd_text(r)}, "
          f"{r['num']} samples")
say("time_embedding_place_fd", "time_embedding_place_accuracy")

# %% [markdown]
# At this short budget neither model is finished (both FDs are far above the floor), and the
# measurement cannot tell the two wirings apart, on FD or on accuracy. Whether that holds
# for longer training is a good experiment for you (commands in `data/checkpoints/README.md`). The
# minimal U-Net arm of the same run (1000 steps, about the same CPU time as our 600) is in
# `data/results/architecture.json`; section 3's equal-minutes comparison is the fairer one.

# %% [markdown]
# ## What to try next
# - Evaluate your own checkpoint from chapter 04 with `python -m diffusion_lab evaluate --checkpoint ...`
#   and compare it with the shipped one, at the same sample count.
# - Change `--eta` to 1 in the steps sweep: does stochastic DDIM need more steps than deterministic?
# - Move the slider of the sample-count viewer to 50: could you rank two models whose FDs differ by 20?
