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
# # 10 · Latent diffusion
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/10_latent_diffusion.ipynb)
#
# Every step of the samplers so far runs a U-Net over every pixel. Stable Diffusion does not: it runs
# diffusion in the *latent space* of an autoencoder, a compressed version of the image that is cheaper
# to denoise, and turns the result into pixels once, at the end (Rombach et al. 2022, "High-Resolution
# Image Synthesis with Latent Diffusion Models", arXiv 2112.10752). Here we do the same at MNIST
# scale: 1x28x28 digits become 4x7x7 latents, a quarter of the numbers.
#
# **In this notebook you will**
# - meet the autoencoder: its encoder $\mathcal{E}$, decoder $\mathcal{D}$, the small KL term that keeps
#   its latents tame (exercise: write it), and the one number that scales them to unit variance;
# - see the forward process on latents, and what noisy latents look like once decoded (widget);
# - run the *same* `sample()` on a latent model and decode at the end: nothing in the sampler changes;
# - compare pixel and latent diffusion trained for the same minutes on the same CPU: speed and quality.

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
from diffusion_lab.autoencoder import autoencoder_of
from diffusion_lab.claims import say
from diffusion_lab.course import check
from diffusion_lab.course.plots import latent_as_image, show_images, show_strip
from diffusion_lab.course.widgets import frame_scrubber
from diffusion_lab.models import count_parameters
from diffusion_lab.results import load_results

torch.manual_seed(0)
device = dl.pick_device()
ae, _, ae_config = dl.load_pretrained("mnist_ae", device=device)  # an autoencoder has no noise schedule
model, sched, config = dl.load_pretrained("mnist_latent", device=device)
assert autoencoder_of(dl.pretrained_path("mnist_latent"), config) is not None  # and it is this autoencoder
print(f"device: {device}; fast mode: {dl.fast_mode()}")
print(f"autoencoder: {count_parameters(ae):,} parameters; latent diffusion U-Net: {count_parameters(model):,} "
      f"parameters, denoising {model.in_channels}x{model.image_size}x{model.image_size} latents")

# %% [markdown]
# ## The autoencoder
#
# The encoder halves the image twice with strided convolutions (28 → 14 → 7) and ends in
# $2 \times 4$ channels: for each of the 4x7x7 latent numbers, a mean and a log-variance. The decoder
# mirrors it, upsampling twice. Each latent position stands for a 4x4 patch of the image
# ($f = 4$ in the paper's notation), and it takes 196 numbers to describe a digit instead of 784.
#
# Below: real digits, their four latent channels (tiled 2x2, grey = 0), and their reconstructions
# $\mathcal{D}(\mathcal{E}(x))$.

# %%
data = dl.load_data("mnist", "train", limit=dl.pick(default=2000, fast=500), verbose=False)
x = data.images[:8].to(device)
with torch.no_grad():
    z = ae.encode(x)
    recon = ae.decode(z)
print(f"images {tuple(x.shape)} -> latents {tuple(z.shape)} -> reconstructions {tuple(recon.shape)}")
show_strip(torch.stack([x.cpu(), latent_as_image(z.cpu(), 28), recon.cpu()])[:, :6],
           ["image x", "latent z (4 channels)", "D(z)"], size=1.1)
plt.show()

# %% [markdown]
# How good are the reconstructions? The training run measured them on the first test images (its
# checkpoint records how many, the mean squared error on the $[-1, 1]$ scale and the PSNR that goes
# with it); here is the same measure on the images above. The project's classifier's verdict on the
# reconstructions is in the table at the end.

# %%
with torch.no_grad():
    mse_here = (recon.clamp(-1, 1) - x).pow(2).mean().item()
test_rec = ae_config["training"]["test_reconstruction"]
print(f"test set (from the model card): MSE {test_rec['mse']:.4f}, PSNR {test_rec['psnr_db']:.1f} dB over "
      f"{test_rec['num']} images; these 8 images: MSE {mse_here:.4f}")

# %% [markdown]
# ## The KL term, and the latent scale
#
# The encoder does not output one latent but a Gaussian $q(z \mid x) = \mathcal{N}(\mu, v)$ per
# number (mean $\mu$, variance $v$; the network outputs $\log v$); training draws $z = \mu + \sqrt{v}\, \epsilon$ (the reparameterisation trick) and adds to the
# reconstruction error a small multiple of
#
# $$\mathrm{KL}\big(\mathcal{N}(\mu, v)\,\|\,\mathcal{N}(0, 1)\big)
#   = \tfrac12 \left(\mu^2 + v - 1 - \log v\right),$$
#
# summed over the latent numbers. Its weight is tiny ($10^{-6}$, the paper's "KL-reg"): just enough to
# stop the latents drifting to huge values, never enough to blur the digits.
#
# ## Exercise: the KL of a diagonal Gaussian
#
# Complete `my_kl(mean, log_var)` for tensors of shape (B, C, H, W): the KL per image, shape (B,).
# Then run the check under it: it compares your function with the package's and names the usual
# mistakes.

# %%
def my_kl(mean, log_var):
    """KL(N(mean, exp(log_var)) || N(0, 1)), summed over everything but the batch axis."""
    ### BEGIN SOLUTION
    return 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).flatten(1).sum(1)
    ### END SOLUTION


# %% [markdown]
# <!-- hint: gaussian_kl -->

# %%
my_kl = check.gaussian_kl(my_kl)

# %% [markdown]
# The shipped autoencoder's posteriors, measured with the function the check handed back (yours once it
# passes): how far, in nats, each digit's $q(z \mid x)$ sits from $\mathcal{N}(0, 1)$. The tiny KL weight
# lets it sit far: the term only stops the latents from drifting without bound.

# %%
with torch.no_grad():
    kl = my_kl(*ae.posterior(x))
print(f"KL per image ({check.whose(my_kl)} function), 8 digits: " + ", ".join(f"{v:.0f}" for v in kl.tolist()))

# %% [markdown]
# The diffusion model will add noise of variance 1 to these latents, so their scale matters: latents
# of standard deviation 0.1 would drown at the first steps, latents of standard deviation 10 would
# hardly notice the noise. Rombach et al. rescale them by one number, one over the latents' standard deviation measured on the
# training set (for Stable Diffusion's autoencoder it is the famous 0.18215). Ours:

# %%
with torch.no_grad():
    raw = ae.posterior(data.images.to(device))[0]
print(f"latent scale 1/std = {ae.latent_scale.item():.3f}: raw latents have std {raw.std().item():.2f}, "
      f"scaled ones {(raw * ae.latent_scale).std().item():.2f} (on {len(data)} training images)")
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.hist((raw * ae.latent_scale).flatten().cpu().numpy(), bins=80, density=True)
ax.set_title("scaled latent values")
plt.show()

# %% [markdown]
# ## Noise on latents: scrub $t$
#
# The forward process does not care what it noises: `q_sample` works on latents exactly as on pixels.
# Below, the same digit at the same $t$ three ways: its latent $z_t$; the decoder's reading of $z_t$,
# $\mathcal{D}(z_t)$; and the pixel-space $x_t$ a pixel model would see. Scrub $t$ and compare.

# %%
t_values = list(range(0, 1000, dl.pick(default=50, fast=200)))
x_show, z_show = x[:4], z[:4]
g = torch.Generator().manual_seed(1)
eps_x, eps_z = torch.randn(x_show.shape, generator=g).to(device), torch.randn(z_show.shape, generator=g).to(device)
frames_z, frames_dz, frames_x = [], [], []
with torch.no_grad():
    for t in t_values:
        z_t = dl.q_sample(z_show, t, sched, eps_z)
        frames_z.append(latent_as_image(z_t.cpu(), 28))
        frames_dz.append(ae.decode(z_t).cpu())
        frames_x.append(dl.q_sample(x_show, t, sched, eps_x).cpu())

# %%
# NBVAL_IGNORE_OUTPUT
slider = frame_scrubber(torch.stack(frames_z), t_values, nrow=2, extra=[torch.stack(frames_dz), torch.stack(frames_x)],
                        panel_titles=["latent $z_t$", "decoded $D(z_t)$", "pixels $x_t$"],
                        title="the forward process on latents and on pixels")

# %% [markdown]
# Scrubbing, notice:
#
# - **pixel noise is not latent noise.** Decoded, a noisy latent is not a noisy-looking digit but a
#   blotchy, smeared one: each latent number controls a 4x4 patch, so noise in it moves whole strokes.
# - **the same $\bar\alpha_t$ is not the same information.** Both spaces use one schedule, so at every
#   $t$ the signal and noise are mixed in the same proportions. But a latent number carries a 4x4 patch
#   of the image, and each latent is scaled to unit variance, while most pixels are flat background. So
#   the digit disappears *earlier* in latent space: by the middle of the schedule its decoded latent no
#   longer shows which digit it was, while the pixel $x_t$ still does (scrub to $t \approx 500$). The
#   model's work is spread differently over $t$ in the two spaces; Rombach et al. keep DDPM's schedule
#   all the same, and later work retunes it for latents.

# %% [markdown]
# ## Sampling: the same sampler, then the decoder
#
# The latent model is a U-Net like chapter 03's, built for 4x7x7 inputs with one resolution level
# (7x7 is too small to halve twice) and class labels for guidance. `dl.sample` does not know it is
# looking at latents: it starts from noise of the model's shape and runs DDIM with guidance exactly as
# in chapters 06 and 07. One decoder call at the end turns latents into digits.

# %%
labels = torch.arange(10).repeat(dl.pick(default=4, fast=1))
start = time.perf_counter()
z0, traj = dl.sample(model, sched, y=labels, guidance=3.0, steps=20, seed=0, return_trajectory=True,
                     progress=False)
with torch.no_grad():
    images = ae.decode(z0)
seconds = time.perf_counter() - start
print(f"{len(labels)} digits: DDIM 20 steps with guidance on 4x7x7 latents, then one decode: {seconds:.1f} s")
show_images(images, nrow=10, title="latent diffusion, class labels 0-9 (s = 3)")
plt.show()

# %% [markdown]
# Here is the trajectory: the predicted clean latent $\hat z_0$ at a few steps, and its decoding.

# %%
cols = [0, 5, 10, 15, 19]
with torch.no_grad():
    decoded = torch.stack([ae.decode(traj["x0"][i, :3].to(device)).cpu() for i in cols])
latents = torch.stack([latent_as_image(traj["x0"][i, :3], 28) for i in cols])
fig = show_strip(torch.cat([latents, decoded], dim=1), [f"t = {traj['t'][i]}" for i in cols], size=1.0,
                 title="predicted z_0 (rows 1-3) and its decoding (rows 4-6)")
plt.show()

# %% [markdown]
# ## Pixel against latent diffusion, same minutes
#
# `scripts/latent_compare.py` trained three models on the same budget of CPU minutes: the pixel U-Net
# of chapter 04 (its measured recipe), a latent U-Net with class labels (this notebook's model) and a
# latent U-Net with prompts (chapter 11). The budget is fair on a shared machine: the script first times
# a training step of each, interleaved in one process, then gives each arm the number of steps it makes
# in the same number of minutes at that speed, one thread. Each model was then graded on 1000 samples by the
# project's classifier, at guidance $s = 3$ (the table) and $s = 1$. The numbers are read from the result
# files the script wrote, not typed here; ± is one standard deviation (chapter 08: half-sampling for FD,
# the binomial spread for accuracy).

# %%
rows = load_results("latent")  # written by scripts/latent_compare.py
speed = {r["arm"]: r for r in load_results("latent_speed")}
print("budget of every arm:", next(r for r in rows if "budget" in r)["budget"].split(" = ")[-1])
print(f"{'arm (s = 3)':<14}{'steps':>8}{'n':>6}{'FD ± std (floor)':>22}{'accuracy ± std':>17}")
for r in rows:
    if "sampler" not in r:
        continue
    name = r["arm"] + (" +clip" if r["clip_x0"] else "")
    acc = claims.measure(r, "class_accuracy")
    print(f"{name:<14}{r['training_steps']:>8}{r['num']:>6}{r['fd']:>9.1f} ± {r['fd_std']:<4.1f} ({r['fd_real_floor']:.1f})"
          f"{100 * acc.value:>9.1f}% ± {100 * acc.std:.1f}")
ae_row = next(r for r in rows if r["arm"] == "autoencoder")
print(f"\nthe autoencoder alone, D(E(x)): FD {ae_row['fd']:.1f} ± {ae_row['fd_std']:.1f} for {ae_row['fd_num']} "
      f"reconstructions of held-out test digits (the models' yardstick); classifier accuracy on all "
      f"{ae_row['num']:,} reconstructions {100 * ae_row['class_accuracy_of_reconstructions']:.2f}% (on the real "
      f"images {100 * ae_row['classifier_test_accuracy']:.2f}%)")
print("one training step and one sampling run, timed alone, interleaved (images/s; ratio to pixel):")
for arm, r in speed.items():
    print(f"  {arm:<12} train {r['train_images_per_second']:>7} ({r['train_ratio_to_pixel']}x)   "
          f"sample {r['sample_images_per_second']:>6} ({r['sample_ratio_to_pixel']}x)   "
          f"{r['parameters']:,} parameters")

# %% [markdown]
# What the rows show, in words. Each sentence is a claim (`diffusion_lab/claims.py`): it is printed from
# the rows above by chapter 08's rule (a difference counts when it is larger than twice the combined
# spread), and the course's tests fail if the data stop supporting it.

# %%
arm = {r["arm"]: r for r in rows if "sampler" in r}
px, lt = arm["pixel"], arm["latent"]
print(f"In the same minutes the latent model made {lt['training_steps'] / px['training_steps']:.1f}x the pixel "
      f"model's training steps ({lt['training_steps']} against {px['training_steps']}).")
say("latent_beats_pixel_s1", "latent_vs_pixel_accuracy_s1", "pixel_beats_latent_s3", "latent_vs_pixel_accuracy_s3",
    "pixel_beats_latent_recall_s3", "autoencoder_beats_latent_fd", "latent_above_reconstructions_accuracy")
print(f"Sampling (interleaved timing, decoder included): latent {speed['latent']['sample_ratio_to_pixel']}x the pixel "
      f"model's images per second; training: {speed['latent']['train_ratio_to_pixel']}x.")

# %% [markdown]
# How to read it:
#
# - **Speed.** A latent step denoises 196 numbers instead of 784, so each convolution has 16x fewer
#   positions to cover. The latent U-Net spends part of that saving on width (48 channels against the
#   pixel model's 16 at full resolution); the speed rows say what is left of it, for training and for
#   sampling with the decoder call included.
# - **Quality at the same minutes.** More training steps in the same time is the whole argument of
#   latent diffusion, and at $s = 1$ it pays, on FD and on accuracy (the first two sentences above).
# - **The decoder bounds FD, not accuracy.** A latent model can only draw what the decoder can draw, so
#   the reconstructions' FD (same $n$, same reference images) is the best FD a latent model could reach;
#   ours is still well above it. Accuracy is different: the reconstructions are of *real* test digits,
#   some of them ambiguous, while a guided sample is drawn to be its class, so the samples' accuracy can
#   and does exceed the reconstructions'.
# - **Guidance.** At $s = 3$ the ranking on FD turns round. Guidance trades variety for clarity (chapter
#   07), and FD counts variety: the latent model pays more for that trade, its samples grow more alike
#   (recall, the share of real variety they cover, above). Both recognise the class almost always at $s = 3$: the
#   three images in a thousand between them are within the spread.
# - **Clipping.** The pixel arm clips $\hat x_0$ to $[-1, 1]$ at every step, its measured best (the
#   results page); the latent arms cannot: latents have no fixed range (the encoder's outputs, scaled to
#   unit variance, are not bounded), so clipping them would cut real values. `evaluate` refuses `--clip`
#   for a latent model.
# - **A real latent autoencoder is trained harder.** Ours minimises only the pixel error plus the tiny KL
#   term, and its reconstructions are slightly blurred. Rombach et al. add a perceptual loss (distances
#   in a pretrained network's features) and a patch-based adversarial loss, which keep edges and texture
#   sharp at much stronger compression ($f = 8$); at 28x28 with $f = 4$ the plain loss is enough to
#   show the idea, not to match their quality.
# - The autoencoder's training time (see its model card) is paid once and shared by every latent model,
#   as Stable Diffusion's autoencoder is. At 512x512 (Stable Diffusion's f = 8 takes 786,432 numbers down
#   to 16,384) the saving is what makes training possible at all.

# %% [markdown]
# ## What to try next
#
# - Interpolate two digits in latent space ($z = (1 - a) z_1 + a z_2$, then decode) and in pixel space:
#   which one passes through plausible digits?
# - Decode pure noise, `ae.decode(torch.randn(8, 4, 7, 7))`: the decoder alone is not a generator.
# - Train your own: `python -m diffusion_lab train-autoencoder --dataset fashion_mnist --minutes 10 --out
#   runs/fm_ae.safetensors`, then `python -m diffusion_lab train --dataset fashion_mnist --conditional
#   --autoencoder runs/fm_ae.safetensors --base-channels 48 --channel-mults 1 --num-res-blocks 2 --minutes 10
#   --out runs/fm_latent.safetensors`.
# - Try `--latent-channels 2` or `8`: how do the reconstruction error and the samples change?
