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
# # 03 · The U-Net
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/diffusion-lab/diffusion-lab/blob/main/notebooks/03_unet.ipynb)
#
# The only learnt part of a diffusion model is a network $\epsilon_\theta(x_t, t, y)$: given a
# noisy image, its timestep and (optionally) a class label, predict the noise that was added.
# Its output has the same shape as its input, which is the job U-Nets were designed for.
#
# **In this notebook you will**
# - build the sinusoidal timestep embedding that tells the network how noisy its input is;
# - take apart a residual block and see where the time enters;
# - compare the minimal U-Net of Yu 2025 (the paper this course follows) with the course's default U-Net: shapes, parameters, speed;
# - see why it matters *where* the time and label enter the network;
# - run the first sanity check of any new model: overfit one small batch.

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
from itertools import zip_longest

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

import diffusion_lab as dl
from diffusion_lab.course import check
from diffusion_lab.course.widgets import frame_scrubber
from diffusion_lab.layers import group_norm
from diffusion_lab.unet import GROUPS, ResBlock

torch.manual_seed(0)

# %% [markdown]
# ## What the network is trained to do
#
# Training (Ho et al. 2020, algorithm 1) picks a clean image $x_0$, a timestep $t$ and noise
# $\epsilon$, builds $x_t$ with the jump from chapter 02, and asks the network for $\epsilon$ back:
#
# $$L_\text{simple} = \mathbb{E}_{x_0, t, \epsilon}\left\|\,\epsilon - \epsilon_\theta\!\left(\sqrt{\bar\alpha_t}\,x_0
# + \sqrt{1-\bar\alpha_t}\,\epsilon,\ t\right)\right\|^2 \tag{14}$$
#
# One network serves all $T$ timesteps, and the right answer depends a lot on $t$. At $t = 10$ the
# noise is a faint speckle on a clear digit; at $t = 900$ it is almost the whole input. So the
# network must be told $t$.
#
# ## The timestep embedding
#
# Feeding the raw number $t \in \{0, \dots, 999\}$ into a network works badly: one input that varies
# over three orders of magnitude. Instead, $t$ is turned into a vector of sines and cosines at
# geometrically spaced frequencies: the Transformer's position encoding (Vaswani et al. 2017 §3.5,
# [arXiv:1706.03762](https://arxiv.org/abs/1706.03762)), which DDPM adopted for timesteps (Ho et al.
# 2020, appendix B). For an embedding of size $d$ with $h = d/2$:
#
# $$f_i = 10000^{-i/h},\quad i = 0, \dots, h-1, \qquad
# \mathrm{emb}(t) = \big[\cos(t f_0), \dots, \cos(t f_{h-1}),\ \sin(t f_0), \dots, \sin(t f_{h-1})\big].$$
#
# The fast frequencies tell neighbouring timesteps apart; the slow ones say roughly where in
# $0 \dots T$ we are. A small MLP after it lets the network make whatever features it likes from that.
#
# The *layout* varies between code bases, and a checkpoint only works with the one it was trained
# with. This course (and Yu 2025's code) uses guided-diffusion's: all cosines, then all sines,
# frequencies divided by $h$ (Dhariwal & Nichol 2021's code,
# [openai/guided-diffusion](https://github.com/openai/guided-diffusion)). The Transformer paper
# interleaves sine and cosine; DDPM's own code and diffusers' default put the sines first and divide
# by $h - 1$.
#
# ### Exercise: `timestep_embedding(t, dim)`
#
# `t` is a tensor of $B$ integer timesteps; return a $(B, \text{dim})$ float tensor, cosines first.

# %%
def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    ### BEGIN SOLUTION
    half = dim // 2
    freqs = 10000.0 ** (-torch.arange(half, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None, :]  # (B, half)
    return torch.cat([angles.cos(), angles.sin()], dim=1)
    ### END SOLUTION


# %% [markdown]
# <!-- hint: timestep_embedding -->

# %%
timestep_embedding = check.timestep_embedding(timestep_embedding)

# %%
T, dim = 1000, 64
ts = torch.arange(T)
emb = timestep_embedding(ts, dim)
assert torch.allclose(emb, dl.embeddings.timestep_embedding(ts, dim), atol=1e-4)

unit = F.normalize(emb, dim=1)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
im = axes[0].imshow(emb, aspect="auto", cmap="RdBu", interpolation="nearest")
axes[0].set_xlabel("embedding dimension (cosines | sines)")
axes[0].set_ylabel("t")
axes[0].set_title(f"timestep_embedding(t, {dim})")
fig.colorbar(im, ax=axes[0])
im = axes[1].imshow(unit @ unit.T, cmap="viridis", interpolation="nearest")
axes[1].set_xlabel("t")
axes[1].set_ylabel("t")
axes[1].set_title("cosine similarity of two timesteps' embeddings")
fig.colorbar(im, ax=axes[1])
fig.tight_layout()
plt.show()

# %% [markdown]
# Left: the first columns (fast frequencies) flicker from row to row, the last ones (slow) change
# smoothly across all 1000 steps. Right: each timestep's embedding is most similar to its
# neighbours' (the bright diagonal), so nearby noise levels start out with similar inputs and
# the network can share what it learns between them.
#
# ## A residual block, with time inside
#
# The default U-Net is built from one kind of block. With $e$ the (time + label) embedding:
#
# $$h = \mathrm{GN}(\mathrm{Conv}(\mathrm{SiLU}(\mathrm{GN}(x)))), \qquad (a, b) = W e, \qquad
# h = \mathrm{Conv}(\mathrm{SiLU}(h \odot (1 + a) + b)), \qquad \text{out} = h + \mathrm{skip}(x).$$
#
# - **Residual**: the block only learns a *correction* to its input. An identity path runs through
#   the whole network, which makes deep stacks easy to train.
# - **Time as a per-channel scale and shift**: $W e$ gives two numbers per channel, $a$ and $b$,
#   applied to every pixel of that channel right *after* a GroupNorm (Dhariwal & Nichol 2021's
#   "scale-shift norm"). Each block can thereby switch features up or down depending on the noise
#   level. Why after the norm is the pitfall at the end of this section.
# - GN is GroupNorm (statistics per image, so it behaves the same for any batch size); SiLU is
#   $x \cdot \mathrm{sigmoid}(x)$; skip is a $1\times1$ conv when the channel count changes.
#
# Here it is from scratch. We copy the weights of the package's `ResBlock` into it and check the outputs.

# %%
class MyResBlock(nn.Module):
    def __init__(self, cin, cout, emb_dim):
        super().__init__()
        self.norm1, self.conv1 = group_norm(cin, GROUPS), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * cout)  # a scale and a shift per output channel
        self.norm2, self.conv2 = group_norm(cout, GROUPS), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, e):
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        a, b = self.emb(e)[:, :, None, None].chunk(2, dim=1)  # (B, cout, 1, 1) each: same on every pixel
        h = h * (1 + a) + b
        h = self.conv2(F.silu(h))
        return h + self.skip(x)


ref = ResBlock(32, 64, emb_dim=128).eval()
mine = MyResBlock(32, 64, emb_dim=128)
mine.load_state_dict(ref.state_dict())  # same parameter names, so the weights fit
x, e = torch.randn(2, 32, 14, 14), torch.randn(2, 128)
assert torch.allclose(mine(x, e), ref(x, e), atol=1e-5)
print(f"MyResBlock matches diffusion_lab.unet.ResBlock: {tuple(x.shape)} -> {tuple(mine(x, e).shape)}")

# %% [markdown]
# ## Two U-Nets side by side
#
# A U-Net goes down in resolution (seeing more of the image per pixel), through a middle at the
# lowest resolution, and back up, with **skip connections** carrying each resolution's features
# across to the matching level on the way up. Fine detail survives through the skips; global layout is
# decided in the middle.
#
# | | `dl.MinimalUNet` (Yu 2025, §6) | `dl.UNet` (course default) |
# |---|---|---|
# | resolutions | 28 → 14 → 7 → 14 → 28 | 28 → 14 → 7 → 14 → 28 |
# | blocks | conv + GroupNorm + ReLU; one residual block in the middle | residual blocks (above) at every level |
# | skips | **added** | **concatenated** |
# | time + label | added **once, at the 7×7 middle** | added **in every residual block** |
# | attention | none | one self-attention layer at 7×7 |
#
# Yu 2025 uses `base_channels=128` for the minimal U-Net; we use 64 to keep this notebook quick.
# The default U-Net is the architecture of the model shipped with the course. Both take `y` labels
# for classifier-free guidance, with index `num_classes` as the "no label" class.

# %%
minimal = dl.MinimalUNet(image_size=28, in_channels=1, base_channels=64, num_classes=10).eval()
unet = dl.UNet(image_size=28, in_channels=1, base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=1,
               attention=True, num_classes=10).eval()


def top_layers(model):
    """(name, layer) for each direct child, looking inside ModuleLists ("down.0", "down.1", ...)."""
    for name, child in model.named_children():
        if isinstance(child, nn.ModuleList):
            yield from ((f"{name}.{i}", layer) for i, layer in enumerate(child))
        else:
            yield name, child


def trace_shapes(model, x, t, y):
    """Run the model once; return [(layer name, type, output shape)] in the order the layers ran."""
    rows = []
    hooks = [layer.register_forward_hook(
                 lambda m, inp, out, label=label: rows.append((label, type(m).__name__, tuple(out.shape[1:]))))
             for label, layer in top_layers(model)]
    with torch.no_grad():
        out = model(x, t, y)
    for hook in hooks:
        hook.remove()
    return rows, out


x = torch.randn(4, 1, 28, 28)
t = torch.randint(0, T, (4,))
y = torch.tensor([3, 1, 4, 10])  # 10 = the null label: "no class"
table = {}
for name, model in [("MinimalUNet", minimal), ("UNet", unet)]:
    table[name], out = trace_shapes(model, x, t, y)
    assert out.shape == x.shape  # the predicted noise has the image's shape

print(f"{'MinimalUNet (Yu 2025)':<42}| UNet (default)")
for a, b in zip_longest(table["MinimalUNet"], table["UNet"], fillvalue=("", "", "")):
    fmt = lambda r: f"{r[0]:<10}{r[1]:<16}{str(r[2]):<16}" if r[0] else ""
    print(f"{fmt(a):<42}| {fmt(b)}")

# %% [markdown]
# The tables list layers in the order they run. Note where the embeddings appear: in the minimal
# U-Net, `time_proj` and `label_emb` run only after `middle`, and their output is added there; in the
# default U-Net, `time_mlp` and `label_emb` run first, and every `ResBlock` after them receives the result.
#
# Sizes and speed on your machine (a batch of 64, no gradients):

# %%
REPS = dl.pick(default=5, fast=2)


def ms_per_batch(model, batch=64, reps=REPS):
    xb, tb, yb = torch.randn(batch, 1, 28, 28), torch.randint(0, T, (batch,)), torch.randint(0, 10, (batch,))
    with torch.no_grad():
        model(xb, tb, yb)  # warm-up
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            model(xb, tb, yb)
            times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


for name, model in [("MinimalUNet", minimal), ("UNet", unet)]:
    n_params = dl.count_parameters(model)
    n_shared = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("time_", "label_emb")))
    n_blocks = sum(p.numel() for n, p in model.named_parameters() if ".emb." in n)  # one Linear per block
    print(f"{name:<12} {n_params:>9,} parameters; for time/label: {n_shared:>7,} in the embeddings, "
          f"{n_blocks:>7,} ({n_blocks / n_params:.0%}) in the blocks | {ms_per_batch(model):6.1f} ms per batch of 64")

# %% [markdown]
# ## Why it matters where $t$ and $y$ enter
#
# Let's measure which layers *know* the timestep. We run each network twice on the **same** image
# and label, once with $t = 50$ and once with $t = 900$, record every layer's output, and plot how much
# it changed. A layer that does not depend on $t$ produces exactly the same output both times.
#
# For the default U-Net we use the trained model shipped with the course (same architecture): a fresh
# `UNet` starts with its output layer at zero (see the overfitting section), which would hide its change.

# %%
def relative_change(model, x, y, t1, t2):
    """For each layer: |output(t1) - output(t2)| / |output(t1)|, same x and y."""
    acts = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, n=n: acts.setdefault(n, []).append(o))
             for n, layer in top_layers(model) if not n.startswith(("time_", "label_emb"))]
    with torch.no_grad():
        model(x, t1, y)
        model(x, t2, y)
    for h in hooks:
        h.remove()
    return {n: ((a - b).norm() / (a.norm() + 1e-12)).item() for n, (a, b) in acts.items()}


x_one = torch.randn(1, 1, 28, 28)
trained_unet, _, _ = dl.load_pretrained("mnist_cfg")  # a UNet with trained weights (see the note above)
changes = {name: relative_change(model, x_one, torch.tensor([7]), 50, 900)
           for name, model in [("MinimalUNet", minimal), ("UNet", trained_unet)]}

fig, axes = plt.subplots(1, 2, figsize=(11, 3.2), gridspec_kw={"width_ratios": [1, 2]})
for ax, (name, change) in zip(axes, changes.items()):
    ax.bar(range(len(change)), list(change.values()), color="tab:purple")
    ax.set_xticks(range(len(change)), list(change), rotation=70, fontsize=7)
    ax.set_title(f"{name}: how much each layer's output depends on t", fontsize=10)
axes[0].set_ylabel("relative change of output\n(t=50 vs t=900)")
fig.tight_layout()
plt.show()

blind = {name: [n for n, v in change.items() if v < 1e-5] for name, change in changes.items()}
for name, layers in blind.items():
    print(f"{name}: layers whose output ignores t: {', '.join(layers)}")
assert blind["MinimalUNet"] == ["down1", "down2", "down3", "down4", "middle"]
assert "conv_in" in blind["UNet"] and "mid1" not in blind["UNet"] and "down.0" not in blind["UNet"]

# %% [markdown]
# In the minimal U-Net the whole down path, `down1` to `middle`, is blind to $t$: exactly zero change.
# The time and label arrive as one bias on the $7 \times 7$ features, and the up path must carry that
# information back out to full resolution. Worse, the skips feed it 28×28 and 14×14 features computed
# without knowing $t$. In the default U-Net the embedding goes into every residual block, so every
# resolution can adapt to the noise level directly. Only `conv_in`, which runs before any block, must
# ignore $t$ (and whatever the downsampling conv after it sees).
#
# ### Play: tell the networks a different $t$
#
# The bars compare two values of $t$; the viewer below sweeps it. One real digit, noised to
# $t = 500$, goes into both *trained* networks (the shipped `mnist_cfg` for ours, and
# `mnist_cfg_minimal`, the minimal U-Net trained for chapter 08's comparison), and the slider sets
# the $t$ we *tell* them; the input never changes. Each panel shows three feature maps of one layer,
# ours on the left, the minimal U-Net's on the right, each map on the same brightness scale at every
# $t$, so what changes on screen changed in the network. The last panel is each network's guess of
# the clean image, $\hat x_0$ (eq. 15), worked out with the $t$ it was told.

# %%
minimal_trained, _, _ = dl.load_pretrained("mnist_cfg_minimal")
told = [0, 50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999]
layers = {"first block (28×28)": ("down.0", "down1"), "middle (7×7)": ("mid2", "middle"),
          "last block (28×28)": ("up.7", "up3")}
linear = dl.make_schedule("linear", T)
src = dl.load_data("mnist", "train", limit=8, verbose=False)
x_in = dl.q_sample(src.images[:1], 500, linear, torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(5)))
y_in = src.labels[:1]


def activations(model, names, x, y, t_values):
    """{layer name: (len(t_values), channels, H, W)} and x0_hat (len(t_values), 1, 28, 28) for one input."""
    modules = dict(top_layers(model))
    acts = {n: [] for n in names}
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: acts[n].append(o[0])) for n in names]
    x0 = []
    with torch.no_grad():
        for tv in t_values:
            eps = model(x, torch.tensor([tv]), y)
            x0.append(dl.predict_x0(x, eps, tv, linear)[0])
    for h in hooks:
        h.remove()
    return {n: torch.stack(a) for n, a in acts.items()}, torch.stack(x0)


def as_frames(maps, channels=3):
    """(S, C, h, w) -> (S, channels, 1, 28, 28): the busiest channels, each scaled to [-1, 1] over all S."""
    pick = maps.std(dim=(2, 3)).mean(0).argsort(descending=True)[:channels]
    m = maps[:, pick]
    centre = m.mean(dim=(0, 2, 3), keepdim=True)
    m = (m - centre) / ((m - centre).abs().amax(dim=(0, 2, 3), keepdim=True) + 1e-8)
    return torch.nn.functional.interpolate(m, size=28, mode="nearest")[:, :, None]


ours_acts, ours_x0 = activations(trained_unet, [a for a, _ in layers.values()], x_in, y_in, told)
min_acts, min_x0 = activations(minimal_trained, [b for _, b in layers.values()], x_in, y_in, told)
panels = []
for ours_name, min_name in layers.values():
    a, b = as_frames(ours_acts[ours_name]), as_frames(min_acts[min_name])
    panels.append(torch.stack([a, b], dim=2).flatten(1, 2))  # interleaved: ours, minimal, ours, ...
panels.append(torch.stack([ours_x0, min_x0], dim=1))
for name, frames in zip(layers, panels):
    ours_change = (frames[:, 0::2] - frames[:1, 0::2]).abs().max().item()  # even images: ours
    minimal_change = (frames[:, 1::2] - frames[:1, 1::2]).abs().max().item()  # odd images: minimal
    print(f"{name:<20} largest change over t (on a scale of 0 to 2): ours {ours_change:.2f}, "
          f"minimal {minimal_change:.2f}")

# %%
# NBVAL_IGNORE_OUTPUT
slider = frame_scrubber(panels[0], told, description="t told", nrow=2, extra=panels[1:],
                        panel_titles=[*layers, "guess of x_0"], static_images=2,
                        title="same input (noised to t = 500), different t told; rows: ours, then minimal")

# %% [markdown]
# Slide from 0 to 999. The minimal U-Net's first block and middle stay frozen: they cannot see
# $t$ (printed above: no change at all), and only its last block moves. Every panel of ours moves.
# And both guesses of $x_0$ are best near the true $t = 500$: told a small $t$, a network takes the
# noise for ink and leaves it in; told a large one, it removes too much. The network *needs* to be
# told how noisy its input is.
#
# Why the network needs that: at small $t$ the noise to predict is fine, pixel-level speckle, and the
# right move is to leave the digit alone; at large $t$ the prediction is mostly "the input itself, minus
# a guess at a blurry digit". The high-resolution layers do very different work in these two cases. The
# same goes for the label $y$: classifier-free guidance (chapter 07) relies on the conditional and
# unconditional predictions being different, and in the minimal U-Net they can differ only through the
# 7×7 bottleneck. Injecting the embedding everywhere costs one small `Linear` per block: the
# "in the blocks" share printed above (the minimal U-Net has none; it adds the embeddings once).
#
# **A pitfall worth knowing (this course hit it).** An earlier version of our U-Net added the embedding as a
# plain per-channel bias *before* `norm2`, with 32 GroupNorm groups on 32 channels. Blocks like `down.0`
# then received $t$ and threw it away: a GroupNorm with one channel per group subtracts each channel's
# mean over the pixels, which removes any per-channel constant exactly:

# %%
gn = nn.GroupNorm(num_groups=32, num_channels=32)  # 32 groups for 32 channels: one channel per group
h, bias = torch.randn(2, 32, 28, 28), torch.randn(2, 32, 1, 1)
print("1 channel per group, output change from the bias:", f"{(gn(h + bias) - gn(h)).abs().max():.1e}")
gn8 = nn.GroupNorm(num_groups=8, num_channels=32)  # 4 channels per group
print("4 channels per group, output change from the bias:", f"{(gn8(h + bias) - gn8(h)).abs().max():.1e}")

# %% [markdown]
# With several channels per group only the group's average bias is removed and the differences between
# channels survive. Larger models (128+ channels, 32 groups) rarely hit this; small ones must choose their
# groups with care. Our U-Net now does both: 8 groups (4 channels each at 32 channels), and the embedding
# applied *after* the norm as a scale and shift, where no normalisation can undo it.
#
# Both designs can learn MNIST. The minimal one is easier to read; the default one gives (almost) every
# layer the information it needs. Train the minimal one yourself in chapter 04 and compare the samples.
#
# ## Sanity check: overfit one batch
#
# Before you spend minutes training a model, check that it *can* learn: take one small batch, fix its
# timesteps and its noise, and train on that batch only. A working model, loss and optimizer drive
# the loss (eq. 14) close to zero in a few dozen steps. If the loss stays flat, something is broken
# (wrong target, detached graph, shapes silently broadcasting) and no amount of real training will help.
#
# This is **not** training: real training draws new images, timesteps and noise at every step (chapter 04).

# %%
sched = dl.make_schedule("linear", T)
data = dl.load_data("mnist", "train", limit=16)
x0, labels = data.images, data.labels
eps = torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))
t_fixed = torch.randint(0, T, (len(x0),), generator=torch.Generator().manual_seed(1))
x_t = dl.q_sample(x0, t_fixed, sched, eps)

steps = dl.pick(default=60, fast=30)
curves = {}
for name, model in [("MinimalUNet", dl.MinimalUNet(28, 1, base_channels=32, num_classes=10)),
                    ("UNet", dl.UNet(28, 1, base_channels=32, num_classes=10))]:
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    curves[name] = []
    for _ in range(steps):
        loss = F.mse_loss(model(x_t, t_fixed, labels), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        curves[name].append(loss.item())
    assert curves[name][-1] < 0.2 * curves[name][0], f"{name} did not overfit one batch"

fig, ax = plt.subplots(figsize=(6, 3))
for name, losses in curves.items():
    ax.plot(losses, label=f"{name}: {losses[0]:.2f} -> {losses[-1]:.3f}")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel(r"MSE($\epsilon$, $\hat\epsilon$)")
ax.set_title("one fixed batch of 16 digits")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# Both losses fall by more than an order of magnitude. The default U-Net starts at about 1.0: its
# output layer is initialised to zero, so its first prediction is $\hat\epsilon = 0$, whose error is
# the variance of $\epsilon$. Predicting zero is a sensible, stable start.
#
# ## What to try next
#
# - In the overfitting cell, try `lr=2e-2` and `lr=2e-5` and compare the curves.
# - Replace the target `eps` by `x0` in the loss. Does the check notice? What does that tell you about
#   what this test can and cannot catch?
# - Build `dl.UNet(..., attention=False)` or `channel_mults=(1, 2)` and rerun the shape table.
# - `dl.UNet(..., time_embedding="middle")` gives the default U-Net Yu 2025's wiring (only the middle
#   blocks see $t$ and $y$). Rerun the "which layers know $t$" figure with it.
# - Draw the embedding figure with `dl.embeddings.timestep_embedding(ts, dim, max_period=100.0)`:
#   what happens to the similarity picture?
# - Next, **04 · Training**: the same loss, now with fresh data, timesteps and noise at every step.
