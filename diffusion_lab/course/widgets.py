"""Interactive viewers built from core ipywidgets (7.7, the version Colab runs, and 8), driven by
precomputed tensors so that moving a control only picks a frame (instant on a CPU).

One redraw mechanism, `_viewer`: each change draws a matplotlib figure, renders it to PNG bytes and
puts them into a `widgets.Image`, in place. No Output widget, no pyplot state, no inline backend, so
it behaves the same in JupyterLab, Notebook 7, VS Code and Colab. Rendered images are cached, so
going back to a setting is instant.

Where no kernel runs (the course website, GitHub's viewer, a PDF export) a widget cannot move, so
each viewer also
- draws a static figure first, which every front end shows;
- publishes its widget view together with an HTML fallback: front ends with a widget manager show the
  live widget, the others the fallback. For `frame_scrubber` the fallback is a kernel-free player
  (matplotlib's `Animation.to_jshtml`: the same frames, played by JavaScript in the page).

    frame_scrubber     a slider over the frames of a trajectory (t -> images), with optional panels beside
    sampler_controls   a steps slider and an eta slider over a precomputed table of DDIM results
    guidance_viewer    a class picker and a guidance-scale slider over precomputed guided samples
    sampler_viewer     a model-calls (NFE) slider with several samplers side by side (chapter 09)
    plot_picker        one control per setting over a plot drawn from precomputed numbers (curves, histograms)
    prompt_box         a text box: type a prompt, press Enter, see what a text-conditioned model draws
                       (computed live, once per prompt: the model samples a few images)
"""

from __future__ import annotations

import base64
import io
import re
import textwrap

import ipywidgets as W
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import torch
from IPython.display import display
from matplotlib.animation import FuncAnimation
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .plots import label_only, show_images, show_strip, table_figure

VIEWER_DPI = 80  # the live widget's image
PLAYER_DPI = 50  # the kernel-free player: every frame is a PNG stored in the notebook, so keep them small
PLAYER_FRAMES = 12  # at most, evenly spaced over the slider (first and last included)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"  # the MIME type of a widget view (ipywidgets 7 and 8)
NO_KERNEL_HTML = ("<p><em>An interactive viewer stands here: it needs a running Python kernel (Jupyter, "
                  "VS Code or Colab). The figure above shows what it shows.</em></p>")
# matplotlib's player draws its buttons with Font Awesome icons from a CDN; we stay offline and use
# plain characters instead (the buttons keep their titles, e.g. "Next frame").
_PLAYER_ICONS = {"fa fa-minus": "\u2212", "fa fa-fast-backward": "|\u25c0\u25c0", "fa fa-step-backward": "|\u25c0",
                 "fa fa-play fa-flip-horizontal": "\u25c0", "fa fa-pause": "\u275a\u275a",
                 "fa fa-play": "\u25b6", "fa fa-step-forward": "\u25b6|", "fa fa-fast-forward": "\u25b6\u25b6|",
                 "fa fa-plus": "+"}


def _figure(panels: int, width: float, dpi: int) -> tuple[Figure, list]:
    """A figure outside pyplot (nothing is shown or kept by the notebook) and its row of axes."""
    fig = Figure(figsize=(width * panels, width), dpi=dpi)
    return fig, list(fig.subplots(1, panels, squeeze=False)[0])


def _canvas(draw_into, panels: int, width: float, dpi: int):
    """One figure kept for all redraws; returns (figure, redraw, png): `redraw()` draws it again with
    `draw_into(axes)`, `png()` renders it to PNG bytes.

    The frame (what is cropped, like Jupyter's inline figures, so that no title is cut) is fitted
    once, on the first drawing, and kept: every image has the same size, and a redraw costs one render.
    """
    fig, axes = _figure(panels, width, dpi)
    FigureCanvasAgg(fig)

    def redraw():
        for ax in axes:
            ax.clear()
        draw_into(axes)
        for ax in axes:
            for im in ax.images:
                # one image pixel -> a block of screen pixels: sharp digits, and PNGs of noisy images
                # ~4x smaller than the smoothed default
                im.set_interpolation("nearest")

    redraw()
    fig.tight_layout()
    frame = fig.get_tightbbox(fig.canvas.get_renderer()).padded(0.05)

    def png() -> bytes:
        """8-bit grey PNG when every pixel is grey (a third of RGBA's size), else RGB."""
        buf = io.BytesIO()
        Figure.savefig(fig, buf, format="png", dpi=fig.dpi, bbox_inches=frame)
        img = PIL.Image.open(buf).convert("RGB")
        rgb = np.asarray(img)
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            img = img.convert("L")
        out = io.BytesIO()
        img.save(out, format="png", optimize=True)
        return out.getvalue()

    return fig, redraw, png


def _player_html(control, values, draw_into, panels: int, width: float) -> str:
    """A kernel-free animation of `draw_into` with `control` set to each of `values` in turn
    (matplotlib's `to_jshtml`; at most PLAYER_FRAMES frames, evenly spaced, first and last included).
    `control` is left as found."""
    start = control.value
    n = len(values)
    picks = sorted({round(i * (n - 1) / max(1, PLAYER_FRAMES - 1)) for i in range(min(n, PLAYER_FRAMES))})
    control.value = values[picks[0]]
    fig, redraw, png = _canvas(draw_into, panels, width, PLAYER_DPI)
    # The player stores each frame as the PNG fig.savefig writes; write ours (cropped, grey) instead.
    fig.savefig = lambda f, **kwargs: f.write(png())

    def frame(k):
        control.value = values[picks[k]]
        redraw()
        return []

    anim = FuncAnimation(fig, frame, frames=len(picks), interval=400, repeat=False)
    with matplotlib.rc_context({"animation.frame_format": "png"}):
        html = anim.to_jshtml(default_mode="once")
    control.value = start
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", html)
    for icon, text in _PLAYER_ICONS.items():
        html = html.replace(f'<i class="{icon}"></i>', text)
    return html


def _viewer(controls, draw_into, panels: int = 1, width: float = 4.0, player=None, still: bool = False):
    """Show `controls` above an image of `draw_into(axes)` (a row of `panels` axes), redrawn whenever
    one of the controls changes; return the box (a VBox with the CSS class `dl-viewer`).

    player: optional (control, values): where no kernel runs, a player animates the figure over
        those values of that control. Without it the fallback is a line of text (NO_KERNEL_HTML).
    still: the fallback is the viewer's first image itself (for a viewer whose static figure would be
        that very image: drawn twice, a live kernel would show a stale copy above the widget).
    """
    html = _player_html(*player, draw_into, panels, width) if player is not None else NO_KERNEL_HTML
    _, redraw, png = _canvas(draw_into, panels, width, VIEWER_DPI)
    first = png()  # _canvas has drawn the current values already
    cache = {tuple(c.value for c in controls): first}
    if still:
        html = (f'<img src="data:image/png;base64,{base64.b64encode(first).decode()}" style="max-width:100%"/>'
                "<p><em>With a running Python kernel, a box to type in stands here.</em></p>")

    def render() -> bytes:
        key = tuple(c.value for c in controls)
        if key not in cache:
            redraw()
            cache[key] = png()
        return cache[key]

    # At its own pixel width (a stretched image blurs), narrower only when the page is.
    width = PIL.Image.open(io.BytesIO(first)).size[0]
    image = W.Image(value=first, format="png", layout=W.Layout(width=f"{width}px", max_width="100%"))

    def update(change=None):
        image.value = render()

    for c in controls:
        c.observe(update, names="value")
    box = W.VBox([W.HBox(controls) if len(controls) > 1 else controls[0], image])
    box.add_class("dl-viewer")
    # The widget view and its fallback in one output: each front end shows the richest it can render.
    display({"text/plain": f"interactive viewer ({', '.join(c.description for c in controls)})",
             "text/html": html,
             WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": box.model_id}}, raw=True)
    return box


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
    Where no kernel runs, a player animates the frames instead of the slider.
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

    _viewer([slider], draw_into, panels=len(panels), player=(slider, list(range(s))))
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


def plot_picker(options: dict, draw, static=None, title=None, width: float = 5.0):
    """A control per setting, and a plot redrawn by `draw(ax, **choice)` whenever one changes.

    options: setting name -> its values: a slider when they are all numbers, a dropdown otherwise.
    draw(ax, **choice): draws the chosen setting's plot from precomputed numbers (no computing here,
        so moving a control is instant).
    static(ax): the figure drawn first for readers without a widget front end (default: the first
        value of every setting, through `draw`).
    Returns the controls, in the order of `options`.
    """
    names = list(options)
    first = {n: options[n][0] for n in names}
    fig, ax = plt.subplots(figsize=(width * 1.4, width * 0.75))
    (static or (lambda a: draw(a, **first)))(ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    plt.show()
    controls = []
    for n in names:
        values = list(options[n])
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            controls.append(W.SelectionSlider(options=[(f"{v:g}", v) for v in values], value=values[0],
                                              description=n, continuous_update=True))
        else:
            controls.append(W.Dropdown(options=values, value=values[0], description=n))

    def draw_into(axes):
        draw(axes[0], **{n: c.value for n, c in zip(names, controls)})

    _viewer(controls, draw_into, width=width)
    return controls


def prompt_box(generate, prompt: str, panels: int = 1, width: float = 5.0):
    """A text box over `generate(prompt) -> draw_into(axes)`; Enter (or leaving the box) redraws.

    `generate` runs once per prompt (it samples: seconds), the viewer only redraws what it returned.
    It raises ValueError for a prompt it cannot take (an unknown word): its message is shown in place
    of the figure, so the learner reads the vocabulary instead of a traceback.
    Returns the Text widget (tests and the notebooks can set .value).
    """
    box = W.Text(value=prompt, description="prompt", continuous_update=False, layout=W.Layout(width="60%"))
    drawers = {}

    def message(err):
        def draw(axes):
            for ax in axes:
                ax.set_axis_off()
            axes[0].text(0, 0.5, textwrap.fill(str(err), 60), fontsize=9, va="center", family="monospace")
        return draw

    def draw_into(axes):
        if box.value not in drawers:
            try:
                drawers[box.value] = generate(box.value)
            except ValueError as err:
                drawers[box.value] = message(err)
        drawers[box.value](axes)

    # No separate static figure: the viewer's own first image is its kernel-free fallback (still=True).
    _viewer([box], draw_into, panels=panels, width=width, still=True)
    return box
