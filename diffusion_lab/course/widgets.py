"""Interactive viewers built from core ipywidgets, driven by precomputed tensors so that moving
a slider only picks a frame (instant on a CPU).

Each viewer also draws a static figure first, so the cell still says something where no widget
front end runs (GitHub's notebook viewer, nbval, a PDF export).

    frame_scrubber     a slider over the frames of a trajectory (t -> images), with optional panels beside
    sampler_controls   a steps slider and an eta slider over a precomputed table of DDIM results
    guidance_viewer    a class picker and a guidance-scale slider over precomputed guided samples
    sampler_viewer     a model-calls (NFE) slider with several samplers side by side (chapter 09)
"""

from __future__ import annotations

import ipywidgets as W
import matplotlib.pyplot as plt
import torch
from IPython.display import display

from .plots import label_only, show_images, show_strip, table_figure


def _viewer(controls, draw_into, panels: int = 1, width: float = 4.0):
    """Wire `controls` to an Output that redraws `draw_into(axes)` whenever one of them changes."""
    out = W.Output()

    def draw(change=None):
        with out:
            out.clear_output(wait=True)
            fig, axes = plt.subplots(1, panels, figsize=(width * panels, width), squeeze=False)
            draw_into(axes[0])
            fig.tight_layout()
            plt.show()

    for c in controls:
        c.observe(draw, names="value")
    draw()
    display(W.VBox([W.HBox(controls) if len(controls) > 1 else controls[0], out]))


def frame_scrubber(
    frames: torch.Tensor,
    values,
    description: str = "t",
    title=None,
    nrow: int = 8,
    static_columns: int = 8,
    extra=None,
    panel_titles=None,
    static_images: int = 2,
):
    """Scrub through frames (S, N, C, H, W) with a slider over `values` (one per frame).

    extra: optional list of (S, N, C, H, W) tensors shown beside (e.g. the predicted x_0).
    panel_titles: one name per panel (frames first, then each extra). When given, the viewer titles
        each panel and the static figure shows every panel too: `static_images` images of each, one
        row per image, labelled with its panel's name. Without it the static figure shows only
        `frames` (its first 4 images).
    Returns the slider (tests and the notebooks can set .value).
    """
    values = list(values)
    s = len(values)
    panels = [frames] + list(extra or [])
    if panel_titles is not None and len(panel_titles) != len(panels):
        raise ValueError(f"got {len(panel_titles)} panel titles for {len(panels)} panels.")
    cols = sorted(set(round(i * (s - 1) / max(1, static_columns - 1)) for i in range(static_columns)))
    labels = [f"{description}={values[i]}" for i in cols]
    if panel_titles is None:
        show_strip(frames[cols, : min(4, frames.shape[1])], labels, title=title)
    else:
        k = min(static_images, frames.shape[1])
        stacked = torch.cat([p[cols, :k] for p in panels], dim=1)  # rows: panel 0 images, panel 1 ...
        fig = show_strip(stacked, labels, title=title)
        for r in range(stacked.shape[1]):
            label_only(fig.axes[r * len(cols)], ylabel=panel_titles[r // k])
        fig.tight_layout()
    plt.show()

    slider = W.SelectionSlider(options=[(str(v), i) for i, v in enumerate(values)], value=0,
                               description=description, continuous_update=True,
                               layout=W.Layout(width="90%"))

    def draw_into(axes):
        i = slider.value
        for k, (ax, p) in enumerate(zip(axes, panels)):
            show_images(p[i], nrow=nrow, ax=ax)
            name = panel_titles[k] if panel_titles is not None else None
            if k == 0:
                name = f"{description} = {values[i]}" + (f": {name}" if name else "")
            if name:
                ax.set_title(name)

    _viewer([slider], draw_into, panels=len(panels))
    return slider


def sampler_controls(
    images: dict,
    steps,
    etas,
    nrow: int = 8,
    static_per_cell: int = 4,
    title=None,
    captions: dict | None = None,
):
    """A steps slider and an eta slider over precomputed DDIM samples images[(steps, eta)].

    The static figure is the whole table (rows: steps, columns: eta; `static_per_cell` images each).
    captions: optional text per (steps, eta), shown under the sliders' image (e.g. the wall time).
    Returns (steps_slider, eta_slider).
    """
    steps, etas = list(steps), list(etas)
    table_figure(images, steps, etas, "steps", "eta", per_cell=static_per_cell, title=title)
    plt.show()
    s_slider = W.SelectionSlider(options=[(str(s), s) for s in steps], value=steps[0],
                                 description="steps", continuous_update=True)
    e_slider = W.SelectionSlider(options=[(f"{e:g}", e) for e in etas], value=etas[0],
                                 description="eta", continuous_update=True)

    def draw_into(axes):
        key = (s_slider.value, e_slider.value)
        show_images(images[key], nrow=nrow, ax=axes[0])
        text = f"DDIM, {key[0]} steps, eta = {key[1]:g}"
        if captions and key in captions:
            text += f"  ({captions[key]})"
        axes[0].set_title(text, fontsize=10)

    _viewer([s_slider, e_slider], draw_into, width=5.0)
    return s_slider, e_slider


def guidance_viewer(
    images: dict,
    classes,
    scales,
    nrow: int = 8,
    static_per_cell: int = 1,
    title=None,
):
    """A class Dropdown and a guidance-scale slider over precomputed samples images[(class, scale)].

    classes: the class names, in label order (images are keyed by the label index).
    The static figure is the table (rows: scale, columns: class; `static_per_cell` images each).
    Returns (class_dropdown, scale_slider).
    """
    classes, scales = list(classes), list(scales)
    labels = sorted({k[0] for k in images})
    by_scale = {(s, c): x for (c, s), x in images.items()}
    table_figure(by_scale, scales, labels, "s", "class", per_cell=static_per_cell, title=title,
                 cell_size=0.75, row_fmt=lambda v: f"{v:g}", col_fmt=lambda c: classes[c])
    plt.show()
    dropdown = W.Dropdown(options=[(classes[c], c) for c in labels], value=labels[0],
                          description="class")
    slider = W.SelectionSlider(options=[(f"{s:g}", s) for s in scales], value=scales[0],
                               description="scale s", continuous_update=True)

    def draw_into(axes):
        c, s = dropdown.value, slider.value
        show_images(images[(c, s)], nrow=nrow, ax=axes[0])
        axes[0].set_title(f"class {classes[c]}, guidance scale s = {s:g}", fontsize=10)

    _viewer([dropdown, slider], draw_into, width=5.0)
    return dropdown, slider


def sampler_viewer(
    images: dict,
    samplers,
    nfes,
    nrow: int = 5,
    static_per_cell: int = 5,
    title=None,
    captions: dict | None = None,
):
    """A slider over the number of model calls (NFE), with the samplers side by side: images[(sampler,
    nfe)] are precomputed samples, the same seeds and labels in every cell, so only the sampler and
    its budget differ. The static figure is the table (rows: NFE, columns: sampler).
    captions: optional text per (sampler, nfe) under its panel's title (e.g. the calls actually made).
    Returns the slider.
    """
    samplers, nfes = list(samplers), list(nfes)
    by_nfe = {(n, s): x for (s, n), x in images.items()}
    table_figure(by_nfe, nfes, samplers, "NFE", "sampler", per_cell=static_per_cell, title=title)
    plt.show()
    slider = W.SelectionSlider(options=[(str(n), n) for n in nfes], value=nfes[0],
                               description="model calls", continuous_update=True,
                               style={"description_width": "initial"}, layout=W.Layout(width="60%"))

    def draw_into(axes):
        for ax, name in zip(axes, samplers):
            show_images(images[(name, slider.value)], nrow=nrow, ax=ax)
            text = f"{name}, {slider.value} calls"
            if captions and (name, slider.value) in captions:
                text += f"\n{captions[(name, slider.value)]}"
            ax.set_title(text, fontsize=10)

    _viewer([slider], draw_into, panels=len(samplers), width=3.2)
    return slider
