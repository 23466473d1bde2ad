"""The course's viewers, driven from Python as a learner's front end would drive them: set a control's
value, and the image the widget shows must change (and come back when the control does).

Runs under whichever ipywidgets is installed: `make test` uses 8, `make test-ipywidgets7` runs this
file again under 7.7.1, the version Colab ships. The browser test (tests/browser) drives the same
viewers through real front ends."""

import io

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import PIL.Image
import pytest
import torch

from diffusion_lab.course import widgets


@pytest.fixture
def shown(monkeypatch):
    """What the viewers display (their output bundles) and the boxes `_viewer` built, in order."""
    record = {"bundles": [], "boxes": []}
    monkeypatch.setattr(widgets, "display", lambda obj, raw=False: record["bundles"].append(obj))
    monkeypatch.setattr(widgets.plt, "show", lambda: None)
    viewer = widgets._viewer

    def spy(*args, **kwargs):
        box = viewer(*args, **kwargs)
        record["boxes"].append(box)
        return box

    monkeypatch.setattr(widgets, "_viewer", spy)
    yield record
    widgets.plt.close("all")


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(PIL.Image.open(io.BytesIO(png)).convert("L"), dtype=np.int16)


def changed_fraction(a: bytes, b: bytes) -> float:
    x, y = pixels(a), pixels(b)
    assert x.shape == y.shape, "the image changed size between two settings"
    return float((np.abs(x - y) > 8).mean())


def image_of(box) -> bytes:
    image = box.children[-1]
    assert isinstance(image, ipywidgets.Image)
    return bytes(image.value)


def each_change_redraws(box, changes) -> None:
    """Set each (control, value) in turn; the image must change visibly every time."""
    for control, value in changes:
        before = image_of(box)
        control.value = value
        assert changed_fraction(before, image_of(box)) > 0.05, f"{control.description} = {value}: no redraw"


def distinct_frames(s=6, n=4):
    """Frames that differ clearly from each other: frame i has brightness -1 + 2 i / (s - 1)."""
    levels = torch.linspace(-1, 1, s)[:, None, None, None, None]
    pattern = torch.rand(1, n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 0.2
    return (levels + pattern).clamp(-1, 1)


def test_ipywidgets_version_is_one_we_support():
    major, minor = (int(p) for p in ipywidgets.__version__.split(".")[:2])
    assert (major, minor) >= (7, 7), f"ipywidgets {ipywidgets.__version__}: the course needs >= 7.7"


def test_frame_scrubber_redraws_on_every_slider_value(shown):
    frames = distinct_frames()
    slider = widgets.frame_scrubber(frames, [0, 200, 400, 600, 800, 999], nrow=2, extra=[-frames],
                                    panel_titles=["x_t", "minus x_t"])
    (box,) = shown["boxes"]
    first = image_of(box)
    seen = [first]
    for i in range(1, 6):
        slider.value = i
        now = image_of(box)
        assert changed_fraction(seen[-1], now) > 0.05, f"the image did not change when t moved to step {i}"
        seen.append(now)
    slider.value = 0
    assert image_of(box) == first, "going back to the first frame must show the first image again"


def test_viewer_output_offers_widget_and_kernel_free_fallback(shown):
    frames = distinct_frames(s=40)
    widgets.frame_scrubber(frames, range(40))
    (bundle,) = shown["bundles"]
    (box,) = shown["boxes"]
    assert bundle[widgets.WIDGET_VIEW]["model_id"] == box.model_id
    assert "dl-viewer" in box._dom_classes
    player = bundle["text/html"]
    assert 'class="animation"' in player
    assert player.count("data:image/png;base64") == widgets.PLAYER_FRAMES, "player frames: evenly spaced, capped"
    assert "http" not in player and "fa fa-" not in player, "the player must not need the network (icons)"


def test_player_leaves_the_slider_where_it_was(shown):
    """The player sweeps the slider through every frame; the widget must still start at frame 0."""
    slider = widgets.frame_scrubber(distinct_frames(), range(6))
    (box,) = shown["boxes"]
    first = image_of(box)
    assert slider.value == 0
    slider.value = 5
    slider.value = 0
    assert image_of(box) == first


def test_sampler_controls_both_sliders_redraw(shown):
    steps, etas = [5, 10, 20], [0.0, 1.0]
    images = {(s, e): torch.full((4, 1, 28, 28), -1 + s / 20 + e / 2) for s in steps for e in etas}
    s_slider, e_slider = widgets.sampler_controls(images, steps, etas, nrow=2,
                                                  captions={(5, 0.0): "0.1 s for 4 images"})
    (box,) = shown["boxes"]
    (bundle,) = shown["bundles"]
    assert bundle["text/html"] == widgets.NO_KERNEL_HTML
    each_change_redraws(box, [(s_slider, 20), (e_slider, 1.0)])


def test_guidance_viewer_dropdown_and_slider_redraw(shown):
    scales = [0.0, 3.0]
    images = {(c, s): torch.full((2, 1, 28, 28), -1.0 + 0.4 * c + 0.3 * s).clamp(-1, 1)
              for c in range(3) for s in scales}
    dropdown, slider = widgets.guidance_viewer(images, ["zero", "one", "two"], scales, nrow=2)
    (box,) = shown["boxes"]
    each_change_redraws(box, [(dropdown, 2), (slider, 3.0)])


def test_grey_figures_are_stored_as_grey_pngs(shown):
    widgets.frame_scrubber(distinct_frames(), range(6))
    (box,) = shown["boxes"]
    assert PIL.Image.open(io.BytesIO(image_of(box))).mode == "L"


def test_frame_scrubber_rejects_wrong_panel_titles(shown):
    with pytest.raises(ValueError, match="2 panel titles for 1 panels"):
        widgets.frame_scrubber(distinct_frames(), range(6), panel_titles=["a", "b"])


def test_prompt_box_samples_once_per_prompt_and_shows_errors(shown):
    """Each new prompt redraws (generate runs once for it); an unknown word draws its message instead
    of raising, and the box keeps working after it."""
    from diffusion_lab.text import Tokenizer, vocabulary

    tok, calls = Tokenizer(vocabulary("mnist")), []

    def generate(prompt):
        tokens = tok.encode(prompt)  # raises ValueError for an unknown word
        calls.append(prompt)
        return lambda axes: widgets.show_images(torch.full((2, 1, 28, 28), -1.0 + 0.2 * int(tokens.sum() % 10)),
                                                ax=axes[0])

    figures_before = len(plt.get_fignums())
    box_text = widgets.prompt_box(generate, "a seven")
    (box,) = shown["boxes"]
    assert calls == ["a seven"]
    # One figure only, the viewer's: its first image is also the kernel-free fallback, so a live kernel
    # shows no stale copy above the box.
    assert len(plt.get_fignums()) == figures_before
    assert "data:image/png;base64," in shown["bundles"][-1]["text/html"]
    each_change_redraws(box, [(box_text, "a purple seven"), (box_text, "digit 7")])
    assert calls == ["a seven", "digit 7"]
    box_text.value = "a seven"  # back to a prompt already drawn: not sampled again
    assert calls == ["a seven", "digit 7"]
