"""Chapter 09's course helpers: the NFE viewer and the Euler-step check that names the mistake."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from diffusion_lab.course import check, widgets  # noqa: E402


def test_sampler_viewer_redraws_every_sampler_at_the_chosen_nfe(monkeypatch):
    samplers, nfes = ["ddim", "dpmpp2m"], [5, 10]
    keys = [(s, n) for s in samplers for n in nfes]
    images = {key: torch.full((4, 1, 8, 8), i / 4) for i, key in enumerate(keys)}
    shown = []
    slider = widgets.sampler_viewer(images, samplers, nfes, static_per_cell=2)
    monkeypatch.setattr(widgets, "show_images", lambda x, **kw: shown.append(x))
    slider.value = 10
    assert shown == [images[("ddim", 10)], images[("dpmpp2m", 10)]]


def test_euler_check_accepts_the_step_and_names_each_mistake(capsys):
    assert check.euler_step(lambda x, eps, s, s_next: x + (s_next - s) * eps)
    for name, wrong, why in check.EULER_STEP_MISTAKES:
        assert not check.euler_step(wrong)
        out = capsys.readouterr().out
        assert name in out and why in out
    assert not check.euler_step(lambda x, eps, s: x)  # a wrong signature is reported, not raised
    assert "TypeError" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["euler_step"])
def test_solution_prints_the_package_step(name, capsys):
    check.solution(name)
    assert "sigma_next - sigma" in capsys.readouterr().out
