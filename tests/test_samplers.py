"""Samplers: determinism, reproducibility, trajectories, guidance identities, the DDIM grid."""

import pytest
import torch

from diffusion_lab import UNet, ddim_timesteps, make_schedule, sample
from diffusion_lab.guidance import guided_eps


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = UNet(image_size=8, in_channels=1, base_channels=8, channel_mults=(1, 2), num_classes=3)
    for p in model.parameters():  # give the zero-initialised output layer something to say
        torch.nn.init.normal_(p, std=0.1)
    return model.eval(), make_schedule("linear", 50)


def test_ddim_eta0_is_deterministic_given_x_T(tiny):
    model, s = tiny
    x_T = torch.randn(3, 1, 8, 8)
    a = sample(model, s, 3, sampler="ddim", steps=10, eta=0.0, x_T=x_T, seed=1, progress=False)
    b = sample(model, s, 3, sampler="ddim", steps=10, eta=0.0, x_T=x_T, seed=2, progress=False)
    assert torch.equal(a, b)
    c = sample(model, s, 3, sampler="ddim", steps=10, eta=1.0, x_T=x_T, seed=2, progress=False)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
def test_seeded_runs_reproduce(tiny, sampler):
    model, s = tiny
    kw = dict(sampler=sampler, steps=7, eta=0.5, y=[0, 1, 2], guidance=2.0, progress=False)
    a, b = sample(model, s, 3, seed=5, **kw), sample(model, s, 3, seed=5, **kw)
    assert torch.equal(a, b) and not torch.equal(a, sample(model, s, 3, seed=6, **kw))


def test_trajectory_shapes(tiny):
    model, s = tiny
    x, traj = sample(model, s, 2, sampler="ddim", steps=5, return_trajectory=True, progress=False)
    assert traj["t"] == ddim_timesteps(50, 5)
    assert traj["x_t"].shape == (6, 2, 1, 8, 8) and traj["x0"].shape == (5, 2, 1, 8, 8)
    assert torch.equal(traj["x_t"][-1], x)
    _, traj = sample(model, s, 2, sampler="ddpm", return_trajectory=True, progress=False)
    assert traj["t"] == list(range(49, -1, -1)) and traj["x_t"].shape[0] == 51


def test_guidance_identities(tiny):
    model, _ = tiny
    x, t, y = torch.randn(4, 1, 8, 8), torch.tensor([3, 10, 20, 40]), torch.tensor([0, 1, 2, 1])
    eps_c, eps_u = model(x, t, y), model(x, t, None)
    torch.testing.assert_close(guided_eps(model, x, t, y, 1.0), eps_c, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(guided_eps(model, x, t, y, 0.0), eps_u, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(guided_eps(model, x, t, y, 3.0), eps_u + 3 * (eps_c - eps_u), atol=1e-5, rtol=1e-5)
    # the paper's form (1 + w) eps_c - w eps_u with s = 1 + w
    torch.testing.assert_close(guided_eps(model, x, t, y, 3.0), 3 * eps_c - 2 * eps_u, atol=1e-5, rtol=1e-5)


def test_guidance_is_one_batched_forward_pass(tiny):
    model, _ = tiny
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    guided_eps(model, torch.randn(4, 1, 8, 8), 5, torch.tensor([0, 1, 2, 0]), 2.5)
    handle.remove()
    assert calls == [8]


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [1, 3, 7, 10, 33, 999, 1000])
def test_ddim_grid_any_step_count(spacing, steps):
    ts = ddim_timesteps(1000, steps, spacing)
    assert len(ts) == steps and len(set(ts)) == steps
    assert all(a > b for a, b in zip(ts, ts[1:])) and 0 <= ts[-1] and ts[0] <= 999
    if spacing == "trailing":
        assert ts[0] == 999


def test_sampling_ends_in_image_range_for_a_pretrained_like_model(tiny):
    model, s = tiny
    x = sample(model, s, 2, sampler="ddpm", clip_x0=True, progress=False)
    assert x.shape == (2, 1, 8, 8) and torch.isfinite(x).all()
    assert x.abs().max() <= 1.0, "the last step returns the clipped x0 prediction"
