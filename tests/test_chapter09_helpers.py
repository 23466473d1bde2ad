"""Chapter 09's course helpers: the NFE viewer and the sweep's table, figure and targets (the Euler-step
exercise is checked with the others in tests/test_check.py)."""

import matplotlib
import torch

matplotlib.use("Agg")

from diffusion_lab.course import widgets  # noqa: E402


def test_sampler_viewer_redraws_every_sampler_at_the_chosen_nfe(monkeypatch):
    samplers, nfes = ["ddim", "dpmpp2m"], [5, 10]
    keys = [(s, n) for s in samplers for n in nfes]
    images = {key: torch.full((4, 1, 8, 8), i / 4) for i, key in enumerate(keys)}
    shown = []
    slider = widgets.sampler_viewer(images, samplers, nfes, static_per_cell=2)
    monkeypatch.setattr(widgets, "show_images", lambda x, **kw: shown.append(x))
    slider.value = 10
    assert shown == [images[("ddim", 10)], images[("dpmpp2m", 10)]]


def _row(dataset, sampler, nfe, fd, **extra):
    return {"dataset": dataset, "sampler": sampler, "nfe": nfe, "num": 1000, "guidance": 1.0, "fd": fd,
            "fd_real_floor": 2.0, "precision": 0.8, "precision_real": 0.9, "recall": 0.7, "recall_real": 0.9,
            "class_accuracy": 0.95, "sample_seconds": 30.0, "command": f"evaluate {sampler} {nfe}", **extra}


def test_sweep_targets_say_met_not_met_and_missing():
    """'No worse' by chapter 08's rule: a gap within twice the combined spread is no measured difference."""
    from diffusion_lab.course import sampler_sweep as sweep

    rows = [_row("mnist", "dpmpp2m", 10, 5.0, fd_std=0.5), _row("mnist", "ddim", 20, 6.0, fd_std=0.5)]
    assert "no measured difference, so 'no worse' is met" in sweep.targets(rows)
    assert "DDPM with all its steps not measured" in sweep.targets(rows)
    assert "within 10%, met" in sweep.targets(rows + [_row("mnist", "ddpm", 1000, 4.6, fd_std=0.5)])
    assert "(+25%): within 10%, not met" in sweep.targets(rows + [_row("mnist", "ddpm", 1000, 4.0, fd_std=0.5)])
    worse = [_row("mnist", "dpmpp2m", 10, 9.0, fd_std=0.5), _row("mnist", "ddim", 20, 6.0, fd_std=0.5)]
    assert "measurably worse, so 'no worse' is not met" in sweep.targets(worse)
    assert "better, so 'no worse' is met" in sweep.targets([_row("mnist", "dpmpp2m", 10, 3.0, fd_std=0.5), rows[1]])
    assert "cannot be judged" in sweep.targets([_row("mnist", "dpmpp2m", 10, 5.0), _row("mnist", "ddim", 20, 6.0)])
    assert "not measured yet" in sweep.targets(rows, "fashion_mnist")


def test_sweep_table_orders_rows_and_shows_fd_std_where_present():
    from diffusion_lab.course import sampler_sweep as sweep

    rows = [_row("fashion_mnist", "ddim", 5, 9.0), _row("mnist", "ddpm", 1000, 4.0),
            _row("mnist", "dpmpp2m", 10, 5.0, fd_std=0.25), _row("mnist", "ddim", 20, 6.0)]
    lines = sweep.table(rows)
    assert [line.split(" | ")[1:3] for line in lines[2:]] == [
        ["ddim", "20"], ["dpmpp2m", "10"], ["ddpm", "1000"], ["ddim", "5"]]
    assert "5.00 ± 0.25 (bootstrap) (2.00)" in lines[3] and "6.00, no spread (2.00)" in lines[2]
    half = sweep.table([_row("mnist", "ddim", 20, 6.0, fd_std=0.5, fd_spread="half-sampling")])
    assert "6.00 ± 0.50 (2.00)" in half[2]
    assert "`evaluate ddim 20`" in lines[2] and "evaluate" not in sweep.table(rows, commands=False)[2]
    fig = sweep.figure(rows)
    assert len(fig.axes) == 2 * len(sweep.METRICS)
