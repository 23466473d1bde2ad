"""course.widgets.plot_picker: one control per setting, a static figure first, and a redraw with the
chosen values whenever a control moves (the viewers of chapters 04 and 08)."""

import matplotlib

matplotlib.use("Agg")

import ipywidgets as W  # noqa: E402

from diffusion_lab.course.widgets import plot_picker  # noqa: E402


def test_plot_picker_draws_the_static_figure_then_each_choice():
    calls, static = [], []
    controls = plot_picker({"weighting": ["simple", "min_snr"], "p_uncond": [0.0, 0.1, 0.5]},
                           lambda ax, **choice: calls.append(choice), static=lambda ax: static.append(ax))
    assert len(static) == 1
    weighting, p_uncond = controls
    assert isinstance(weighting, W.Dropdown) and isinstance(p_uncond, W.SelectionSlider)
    assert calls == [{"weighting": "simple", "p_uncond": 0.0}]  # the viewer's first frame
    p_uncond.value = 0.5
    weighting.value = "min_snr"
    assert calls[-2:] == [{"weighting": "simple", "p_uncond": 0.5}, {"weighting": "min_snr", "p_uncond": 0.5}]


def test_plot_picker_without_a_static_figure_draws_the_first_choice_twice():
    calls = []
    plot_picker({"n": [50, 100]}, lambda ax, n: calls.append(n))
    assert calls == [50, 50]  # the static figure, then the viewer
