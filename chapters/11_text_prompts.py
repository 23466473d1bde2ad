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
# # 11 · Text prompts and cross-attention
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/11_text_prompts.ipynb)
#
# Chapter 07's model takes a class label; Stable Diffusion takes a sentence. Between the two sit three
# pieces: a **tokenizer** that turns words into numbers, a **text encoder** (a small transformer) that
# turns those numbers into one vector per word, and **cross-attention** blocks inside the U-Net through
# which every image position reads the words (Rombach et al. 2022, sec. 3.3). Classifier-free guidance
# carries over unchanged, with the empty prompt as the "null label". All of it here is trained from
# scratch on MNIST on a CPU, with prompts like "a thick seven" made from the images themselves.
#
# **In this notebook you will**
# - tokenize prompts, and see the error an unknown word gives;
# - see where the captions come from: attributes measured on each training digit;
# - write the cross-attention weights (exercise) and check them;
# - sample from prompts, with guidance over text;
# - look at attention maps: which image regions read which word;
# - type your own prompts into a text box.

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
import torch.nn.functional as F

import diffusion_lab as dl
from diffusion_lab import claims, text
from diffusion_lab.autoencoder import autoencoder_of
from diffusion_lab.claims import say
from diffusion_lab.course import check
from diffusion_lab.course.plots import show_images, show_strip, table_figure, to_display
from diffusion_lab.course.widgets import prompt_box
from diffusion_lab.embeddings import timestep_embedding
from diffusion_lab.models import count_parameters
from diffusion_lab.results import load_results
from diffusion_lab.unet import cross_attention_maps

torch.manual_seed(0)
device = dl.pick_device()
model, sched, config = dl.load_pretrained("mnist_text", device=device)
ae = autoencoder_of(dl.pretrained_path("mnist_text"), config, device=device)
tok = text.tokenizer_of(config)
print(f"device: {device}; fast mode: {dl.fast_mode()}")
print(f"text encoder {count_parameters(model.text_encoder):,} parameters, {len(model.cross)} cross-attention "
      f"blocks, U-Net {count_parameters(model):,} parameters in all, on 4x7x7 latents (chapter 10)")

# %% [markdown]
# ## Words to numbers: the tokenizer
#
# Ours is the simplest kind: one token per word, from a vocabulary written out in the package
# (`text.vocabulary`): digit words, numerals, the attributes the data supports, a few fillers. Every
# prompt starts with a `<bos>` token and is padded with `<pad>` to a fixed length; the model ignores
# padding. (Stable Diffusion's CLIP tokenizer splits words into sub-word pieces from a vocabulary of
# 49,408; the idea is the same.)

# %%
print("vocabulary:", " ".join(tok.words))
ids = tok.encode(["a thick seven", "digit 7", ""])
for prompt, row in zip(["a thick seven", "digit 7", "(the empty prompt)"], ids):
    print(f"{prompt:>20} -> {row.tolist()}")
try:
    tok.encode("a purple seven")
except ValueError as err:
    print("\nValueError:", err)

# %% [markdown]
# ## Where the captions come from
#
# MNIST has labels, not captions. So the training loop writes a prompt for every image it draws:
# the class in one of several forms ("7", "seven", "a seven", "digit 7"), sometimes with attributes
# measured on that very image. A digit is **thick** or **thin** when its share of inked pixels is in the
# top or bottom third of its class, **slanted** or **upright** by its slant (the image moment
# $\mu_{11}/\mu_{02}$). One prompt in ten that has an attribute names no class at all ("a thick digit"),
# and one in ten (`p_uncond`) is dropped to the empty prompt, for guidance.

# %%
data = dl.load_data("mnist", "train", limit=dl.pick(default=2000, fast=500), verbose=False)
attrs = text.image_attributes(data.images, data.labels, "mnist")
g = torch.Generator().manual_seed(3)
idx = torch.randperm(len(data), generator=g)[:8]
prompts = text.random_prompts(data.labels[idx], {k: v[idx] for k, v in attrs.items()}, "mnist", g)
show_strip(data.images[idx][:, None], [f'"{p}"' for p in prompts], size=1.5,
           title="training images and the prompts the loop wrote for them")
plt.show()

# %% [markdown]
# ## Tokens to vectors: the text encoder
#
# A small transformer (Vaswani et al. 2017): a learnt embedding per token plus one per position, two
# pre-norm blocks of self-attention (each word reads the others, so "thick" can colour "seven") and an
# MLP, then a LayerNorm. It is trained together with the U-Net, as in latent diffusion's eq. 3. Out
# comes the **context**: one 64-number vector per token.

# %%
tokens = tok.encode(["a thick seven"]).to(device)
with torch.no_grad():
    context = model.text_encoder(tokens)
print(f"tokens {tuple(tokens.shape)} -> context {tuple(context.shape)}")

# %% [markdown]
# ## Cross-attention
#
# After every residual block of the U-Net sits a cross-attention block. With $h$ the feature map
# (one $d$-vector per position) and $c$ the context (one vector per token):
#
# $$Q = W_Q\,\mathrm{norm}(h), \qquad K = W_K\,c, \qquad V = W_V\,c, \qquad
#   \mathrm{out} = h + W_O\,\mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt d}\right) V .$$
#
# Queries come from the image, keys and values from the words: each position asks "which word is about
# me?", and takes a weighted mix of the words' values. The softmax runs over the tokens, so each
# position's weights sum to 1; padding tokens get a score of $-\infty$, hence weight 0.
#
# ## Exercise: the attention weights
#
# Complete `my_attention_weights(q, k, keep)`: `q` (B, N, d) one query per position, `k` (B, L, d) one
# key per token, `keep` (B, L) False for padding; return the weights (B, N, L). Then run the check
# under it: it names the usual mistakes (missing scaling, wrong softmax axis, unmasked padding, ...).

# %%
def my_attention_weights(q, k, keep):
    """softmax(q k^T / sqrt(d)) over the tokens, padding masked."""
    ### BEGIN SOLUTION
    scores = q @ k.transpose(1, 2) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~keep[:, None, :], float("-inf"))
    return scores.softmax(dim=-1)
    ### END SOLUTION


# %% [markdown]
# <!-- hint: attention_weights -->

# %%
my_attention_weights = check.attention_weights(my_attention_weights)

# %% [markdown]
# The model's first cross-attention block, on "a thick seven" and a noisy latent: the weights it
# stores itself, against the ones your function (or the package's, until yours passes) computes from
# the block's own queries and keys.

# %%
block = model.cross[0]  # after the first residual block
z_t = torch.randn(1, model.in_channels, model.image_size, model.image_size,
                  generator=torch.Generator().manual_seed(0)).to(device)
t_mid = torch.tensor([500], device=device)
with torch.no_grad():
    block.keep_attention = True
    model(z_t, t_mid, tokens)
    block.keep_attention = False
    stored = block.attention  # (1, positions, tokens)
    h = model.down[0](model.conv_in(z_t), model.time_mlp(timestep_embedding(t_mid, model.base_channels)))
    q = block.q(block.norm(h)).flatten(2).transpose(1, 2)  # one query per position
    weights = my_attention_weights(q, block.k(context), tokens != text.PAD)
print(f"{check.whose(my_attention_weights)} function: weights {tuple(weights.shape)} (1 prompt, "
      f"{weights.shape[1]} positions, {weights.shape[2]} tokens); largest difference from the stored ones "
      f"{(weights - stored).abs().max():.1e}; padding tokens get {weights[0, :, tokens[0] == text.PAD].sum():.1f}")

# %% [markdown]
# ## Prompts in, digits out
#
# Sampling is chapter 10's: `dl.sample` on latents, then the decoder. The only change is `y`: prompt
# tokens instead of labels. Guidance works as in chapter 07, with the empty prompt in place of the
# null label: $\tilde\epsilon = \epsilon(z_t, \varnothing) + s\,(\epsilon(z_t, \text{prompt}) -
# \epsilon(z_t, \varnothing))$.

# %%
def generate(prompt, n=8, guidance=3.0, seed=0, steps=20):
    y = tok.encode(prompt).to(device)
    z = dl.sample(model, sched, n, y=y, guidance=guidance, steps=steps, seed=seed, progress=False)
    with torch.no_grad():
        return ae.decode(z).cpu()


grid_prompts = ["zero", "1", "a two", "digit 3", "four", "a five", "6", "a seven", "an eight", "number 9"]
per = dl.pick(default=6, fast=2)
start = time.perf_counter()
samples = {(p, 0): generate(p, per) for p in grid_prompts}
print(f"{len(grid_prompts)} prompts x {per} samples: {time.perf_counter() - start:.1f} s")
table_figure(samples, grid_prompts, [0], "prompt", "", per_cell=per, cell_size=0.6,
             row_fmt=lambda p: f'"{p}"')
plt.show()

# %% [markdown]
# Attributes: the same seeds with "thick", "thin", "slanted" and "upright". Printed under the figure:
# each row's mean ink share and slant (the measures the training prompts were made from), beside the
# thirds of the real training digits of that class, so you can check whether the model listens.

# %%
attr_prompts = ["a seven", "a thick seven", "a thin seven", "a slanted one", "an upright one"]
attr_images = {(p, 0): generate(p, per, seed=1) for p in attr_prompts}
table_figure(attr_images, attr_prompts, [0], "prompt", "", per_cell=per, cell_size=0.6, row_fmt=lambda p: f'"{p}"')
plt.show()
real = text.attribute_scores(data.images, "mnist")  # the measures the training prompts were made from
for digit, name in ((7, "sevens"), (1, "ones")):
    mine = data.labels == digit
    ink_lo, ink_hi = text.thirds(real["ink"][mine])
    sl_lo, sl_hi = text.thirds(real["slant"][mine])
    print(f"real {name} ({int(mine.sum())}): thin below ink {ink_lo:.3f}, thick above {ink_hi:.3f}; "
          f"upright below slant {sl_lo:.2f}, slanted above {sl_hi:.2f}")
for p in attr_prompts:
    scores = text.attribute_scores(attr_images[(p, 0)], "mnist")
    print(f'{p:>16}: ink share {scores["ink"].mean():.3f}, slant {scores["slant"].mean():.2f}  '
          f'({len(scores["ink"])} samples)')

# %% [markdown]
# ## Guidance over text
#
# $s = 0$ ignores the prompt (the model's unconditional digits), $s = 1$ follows it plainly, larger
# $s$ follows it harder. Same seeds in every row.

# %%
scales = [0.0, 1.0, 3.0, 6.0]
guided = {(s, 0): generate("a thick seven", per, guidance=s, seed=2) for s in scales}
table_figure(guided, scales, [0], "s", "", per_cell=per, cell_size=0.6, row_fmt=lambda v: f"{v:g}",
             title='"a thick seven" at four guidance scales')
plt.show()

# %% [markdown]
# ## Attention maps: which regions read which word
#
# Each cross-attention block stores, if asked, its weights: for every position, how much it reads each
# token. `cross_attention_maps` averages them over the blocks (resizing each to the latent's 7x7); we
# also average over the sampling steps, running the model on the trajectory's $z_t$, then enlarge the
# 7x7 maps to the digit's 28x28 (each latent position is a 4x4 patch).

# %%
def attention_over_sampling(prompt, seed=0, steps=20):
    """(decoded image (1, 28, 28), words, maps (L, 28, 28)) averaged over the DDIM steps."""
    y = tok.encode(prompt).to(device)
    z0, traj = dl.sample(model, sched, 1, y=y, guidance=3.0, steps=steps, seed=seed, return_trajectory=True,
                         progress=False)
    maps = torch.stack([cross_attention_maps(model, traj["x_t"][i].to(device), t, y)[0]
                        for i, t in enumerate(traj["t"])]).mean(0)
    n_words = int((y != text.PAD).sum())
    with torch.no_grad():
        image = ae.decode(z0).cpu()[0]
    big = F.interpolate(maps[None, :n_words].cpu(), size=28, mode="bilinear", align_corners=False)[0]
    return image, ["<bos>", *tok.split(prompt)], big


def show_attention(prompt, seed=0, axes_row=None):
    image, words, maps = attention_over_sampling(prompt, seed)
    axes = axes_row if axes_row is not None else plt.subplots(1, len(words) + 1, figsize=(1.6 * (len(words) + 1), 1.9))[1]
    axes[0].imshow(to_display(image)[0], cmap="gray")
    axes[0].set_title(f'"{prompt}"', fontsize=9)
    for ax, w, m in zip(axes[1:], words, maps):  # each word on its own colour scale: where does it read most?
        ax.imshow(to_display(image)[0], cmap="gray")
        shown = ax.imshow(m.numpy(), cmap="magma", alpha=0.6, vmin=float(m.min()), vmax=float(m.max()))
        plt.colorbar(shown, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=6)
        ax.set_title(f"{w}  ({m.mean():.2f})", fontsize=9)
    for ax in axes:
        ax.set_axis_off()


for prompt in ["a thick seven", "digit 3"]:
    show_attention(prompt)
    plt.show()
_, words, maps = attention_over_sampling("a thick seven")
share = maps.flatten(1).mean(1)
print("mean weight per token for \"a thick seven\":", ", ".join(f"{w} {v:.2f}" for w, v in zip(words, share)),
      f"-> most read: {words[int(share.argmax())]}")
lo, hi = maps.flatten(1).min(1).values, maps.flatten(1).max(1).values
print("range over the image, smallest to largest weight:", ", ".join(f"{w} {a:.2f}-{b:.2f}" for w, a, b in zip(words, lo, hi)))

# %% [markdown]
# The number beside each word is its mean weight over the image; at every position the weights of
# the words add up to 1. Each map has its own colour bar, and the last printed line gives each word's
# range over the image: read the ranges with the colours.
#
# On its own scale every map has a shape. The class word and the attribute are read most **on the
# strokes**, where the digit is drawn, and least on the background; `<bos>`, the start token in every
# prompt, takes what the strokes leave, most in the background: a position with nothing to draw reads
# the one token that says nothing (a "sink", which large models' attention shows too). Drawn on one
# common scale, these maps look flat, because `<bos>`'s large share sets the scale; that is why each
# has its own here.
#
# Why the contrast is mild (the class word's weight varies a few times over, not from 0 to 1): the class
# decides the *whole* digit, so every position needs it a little; "thick" thickens every stroke; and
# each of the 7x7 latent positions covers a 4x4 patch with a receptive field that spans most of the
# digit. Nothing in these prompts is *somewhere*: "a seven on the left" would be, and a model trained on
# such captions would learn sharper maps. Try a single step (`traj["x_t"][i]` for one `i`) or a single
# block: is any of them sharper than the average?

# %% [markdown]
# ## Type a prompt
#
# Press Enter to sample 8 digits (20 guided steps on 4x7x7 latents and one decode: the prompt grid
# above printed how long ten such prompts took here). Unknown words show the vocabulary.

# %%
# NBVAL_IGNORE_OUTPUT
def draw_prompt(prompt):
    images = generate(prompt, 8, seed=int(time.time()) % 1000)  # new seeds each time

    def draw(axes):
        show_images(images, nrow=8, ax=axes[0])
        axes[0].set_title(f'"{prompt}"  (class named: {text.prompt_class(prompt, "mnist")})', fontsize=10)
    return draw


box = prompt_box(draw_prompt, "a thin slanted seven", width=7.0)

# %% [markdown]
# ## Measured: prompts against labels, same budget
#
# `scripts/latent_compare.py` trained this text model and chapter 10's class-label latent model on the
# same budget (the steps each makes in the same minutes of one CPU core, at its measured speed), and graded
# 1000 samples of each at $s = 3$ and at $s = 1$ (the text model asked with each class's canonical prompt,
# "a seven"). Read from the results files; ± is one standard deviation (chapter 08):

# %%
for part in ("latent", "latent_s1"):
    rows = {r["arm"]: r for r in load_results(part) if "sampler" in r}
    for arm in ("latent", "latent_text"):
        r, acc = rows[arm], claims.measure(rows[arm], "class_accuracy")
        print(f"s = {r['guidance']:g}, {r['what']:<30} {r['training_steps']:>5} steps, n = {r['num']}: class recognised "
              f"{100 * acc.value:.1f}% ± {100 * acc.std:.1f}, FD {r['fd']:.1f} ± {r['fd_std']:.1f} "
              f"(floor {r['fd_real_floor']:.1f})")
speed = {r["arm"]: r for r in load_results("latent_speed")}
print(f"a training step with prompts takes {speed['latent']['train_images_per_second'] / speed['latent_text']['train_images_per_second']:.2f}x "
      "the time of one with labels (interleaved timing)")

# %% [markdown]
# A label is one clean number; a prompt has to be read, by a text encoder that starts knowing nothing
# and learns from the same training steps, through attention that starts switched off (its output
# projection is initialised to zero), and every step costs more (a cross-attention block after every
# residual block, and the text encoder), so the same minutes buy fewer steps. What that cost at this
# budget, by chapter 08's rule (each sentence is a tested claim):

# %%
say("labels_beat_text_fd_s1", "labels_beat_text_accuracy_s1", "labels_vs_text_fd_s3", "labels_beat_text_accuracy_s3")

# %% [markdown]
# So without guidance, prompts cost a great deal, on both measures: a worse FD and more digits of the
# wrong class. Guidance at $s = 3$ hides most of it: the FDs are no longer told apart, and
# the prompts miss the class a little more often than the labels.
#
# ## What to try next
#
# - Prompts the model never saw in training: "a thick thin seven", "seven 7", "the number of eight".
#   What does it make of contradictions?
# - Negative prompts: in a loop of your own, replace $\epsilon(z_t, \varnothing)$ by the prediction for
#   "a thick seven" while asking for "a seven": do the sevens come out thin?
# - Look at the attention maps of single blocks (`model.cross[i].attention` after setting
#   `keep_attention = True`): do the 7x7 middle blocks and the outer ones attend differently?
# - Train Fashion-MNIST with prompts ("a dark coat", "an ankle boot"): `python -m diffusion_lab
#   train-autoencoder --dataset fashion_mnist ...`, then `train --text --autoencoder ...` as in chapter 10.
