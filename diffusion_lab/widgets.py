"""Interactive viewers built from core ipywidgets, driven by precomputed tensors so that moving
a slider only picks a frame (instant on a CPU).

Each viewer also draws a static figure first, so the cell still says something where no widget
front end runs (GitHub's notebook viewer, nbval, a PDF export).
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from .plots import show_images, show_strip


def frame_scrubber(
    frames: torch.Tensor,
    values,
    description: str = "t",
    title=None,
    nrow: int = 8,
    static_columns: int = 8,
    extra=None,
):
    """Scrub through frames (S, N, C, H, W) with a slider over `values` (one per frame).

    extra: optional list of (S, N, C, H, W) tensors shown beside (e.g. the predicted x_0).
    Returns the slider (tests and the notebooks can set .value).
    """
    values = list(values)
    s = len(values)
    cols = sorted(set(round(i * (s - 1) / max(1, static_columns - 1)) for i in range(static_columns)))
    show_strip(frames[cols, : min(4, frames.shape[1])], [f"{description}={values[i]}" for i in cols],
               title=title)
    plt.show()

    slider = W.SelectionSlider(options=[(str(v), i) for i, v in enumerate(values)], value=0,
                               description=description, continuous_update=True,
                               layout=W.Layout(width="90%"))
    out = W.Output()
    panels = [frames] + list(extra or [])

    def draw(change=None):
        i = slider.value
        with out:
            out.clear_output(wait=True)
            fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 4), squeeze=False)
            for ax, p in zip(axes[0], panels):
                show_images(p[i], nrow=nrow, ax=ax)
            axes[0, 0].set_title(f"{description} = {values[i]}")
            plt.show()

    slider.observe(draw, names="value")
    draw()
    display(W.VBox([slider, out]))
    return slider
