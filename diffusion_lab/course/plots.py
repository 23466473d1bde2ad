"""Figures the notebooks share: image grids, strips over t, schedule curves, tables of image grids."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch
from torchvision.utils import make_grid


def to_display(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images (N, C, H, W) -> [0, 1], clipped for display only."""
    return ((images.detach().float().cpu() + 1) / 2).clamp(0, 1)


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> torch.Tensor:
    """A (H, W, C) array in [0, 1] tiling the images row by row (torchvision.utils.make_grid)."""
    grid = make_grid(to_display(images), nrow=nrow, padding=padding, pad_value=1.0)
    return grid.permute(1, 2, 0)


def show_images(images, nrow=8, title=None, ax=None, size=None):
    """Show (N, C, H, W) images in [-1, 1] as one grid."""
    grid = image_grid(images, nrow=nrow)
    if ax is None:
        rows = -(-len(images) // nrow)
        w = size or min(1.1 * nrow, 12)
        _, ax = plt.subplots(figsize=(w, w * rows / nrow + (0.4 if title else 0)))
    ax.imshow(grid.squeeze(-1) if grid.shape[-1] == 1 else grid, cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def show_strip(frames: torch.Tensor, labels, title=None, rows_label=None, size=1.3):
    """frames: (S, N, C, H, W) -> N rows of S images, each column titled by labels[s]."""
    s, n = frames.shape[:2]
    fig, axes = plt.subplots(n, s, figsize=(size * s, size * n + 0.3), squeeze=False)
    for j in range(s):
        for i in range(n):
            img = to_display(frames[j, i])
            axes[i, j].imshow(img.permute(1, 2, 0).squeeze(-1), cmap="gray", vmin=0, vmax=1)
            axes[i, j].set_xticks([])
            axes[i, j].set_yticks([])
        axes[0, j].set_title(str(labels[j]), fontsize=9)
    if rows_label:
        axes[0, 0].set_ylabel(rows_label)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_schedules(schedules: dict, quantities=("betas", "alpha_bar", "log_snr")):
    """One panel per quantity, one line per schedule (t on the x axis)."""
    fig, axes = plt.subplots(1, len(quantities), figsize=(4.2 * len(quantities), 3.2))
    for ax, q in zip(axes, quantities):
        for name, sched in schedules.items():
            ax.plot(getattr(sched, q).numpy(), label=name)
        ax.set_title(q)
        ax.set_xlabel("t")
    axes[0].legend()
    fig.tight_layout()
    return fig


def plot_losses(losses, ax=None, smooth: int = 50, title="training loss", ylabel="MSE(eps, eps_hat)"):
    """Raw loss per step (faint) and its running mean. ylabel: say what the loss is (e.g. weighted)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    losses = torch.as_tensor(losses, dtype=torch.float32)
    ax.plot(losses.numpy(), alpha=0.3, label="per step")
    if len(losses) >= smooth:
        kernel = torch.ones(smooth) / smooth
        mean = torch.conv1d(losses[None, None], kernel[None, None]).flatten()
        ax.plot(range(smooth - 1, len(losses)), mean.numpy(), label=f"mean of {smooth}")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return ax


def label_only(ax, ylabel=None, title=None, fontsize=9):
    """Keep an image axis clean (no ticks, no frame) but let it carry a y label and a title."""
    ax.set_axis_on()
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)
    if ylabel is not None:
        ax.set_ylabel(ylabel, fontsize=fontsize)
    if title is not None:
        ax.set_title(title, fontsize=fontsize)


def table_figure(
    images: dict,
    rows,
    cols,
    row_name: str,
    col_name: str,
    per_cell: int = 4,
    nrow: int | None = None,
    title=None,
    cell_size: float = 0.55,
    row_fmt=str,
    col_fmt=str,
):
    """One small image grid per setting: images[(r, c)] is (N, C, H, W); cell (r, c) shows its first
    `per_cell` images in rows of `nrow` (default all in one row). Rows are labelled on the left
    ("row_name = r"), columns on top ("col_name = c"; no column titles when col_name is empty).
    Returns the figure."""
    rows, cols = list(rows), list(cols)
    nrow = nrow or per_cell
    cell_w, cell_h = cell_size * nrow, cell_size * -(-per_cell // nrow)
    gap_w, gap_h = 0.15, (0.3 if col_name else 0.1)
    left = 0.12 + 0.075 * max(len(f"{row_name} = {row_fmt(r)}") for r in rows)
    top = (0.3 if col_name else 0.05) + (0.35 if title else 0.0)
    width = left + len(cols) * cell_w + (len(cols) - 1) * gap_w + 0.1
    height = top + len(rows) * cell_h + (len(rows) - 1) * gap_h + 0.1
    fig, axes = plt.subplots(len(rows), len(cols), squeeze=False, figsize=(width, height))
    fig.subplots_adjust(left=left / width, right=1 - 0.1 / width, top=1 - top / height,
                        bottom=0.1 / height, wspace=gap_w / cell_w, hspace=gap_h / cell_h)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            ax = axes[i, j]
            show_images(images[(r, c)][:per_cell], nrow=nrow, ax=ax)
            label_only(ax, title=f"{col_name} = {col_fmt(c)}" if (i == 0 and col_name) else None)
            if j == 0:
                ax.set_ylabel(f"{row_name} = {row_fmt(r)}", rotation=0, ha="right", va="center", fontsize=9)
    if title:
        fig.suptitle(title, y=1 - 0.05 / height, va="top", fontsize=11)
    return fig


def latent_as_image(z: torch.Tensor, size: int | None = None, spread: float = 3.0) -> torch.Tensor:
    """Show 4-channel latents (N, 4, h, w) as grey images: the channels tiled 2x2 into (N, 1, 2h, 2w),
    divided by `spread` (unit-variance latents: +-3 std maps to black/white), then enlarged to
    size x size (nearest) so they sit beside the images they stand for."""
    n, c, h, w = z.shape
    if c != 4:
        raise ValueError(f"latent_as_image tiles 4 channels 2x2; got {c}.")
    tiles = z.reshape(n, 2, 2, h, w).permute(0, 1, 3, 2, 4).reshape(n, 1, 2 * h, 2 * w) / spread
    if size is not None:
        tiles = torch.nn.functional.interpolate(tiles.float(), size=(size, size), mode="nearest")
    return tiles
