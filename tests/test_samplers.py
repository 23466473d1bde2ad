"""Samplers: determinism, reproducibility, trajectories, guidance identities, the DDIM grid."""

import math

import pytest
import torch

import diffusion_lab as dl
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
    kw = dict(sampler=sampler, y=[0, 1, 2], guidance=2.0, progress=False,
              **({"steps": 7, "eta": 0.5} if sampler == "ddim" else {}))
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


def test_euler_is_ddim_in_sigma_space(tiny):
    """Deterministic DDIM (eq. 12, eta = 0) and the Euler step of dx~/dsigma = eps, on the same grid,
    are one update: x~' = x0_hat + sigma' eps. With clipping both step with the eps the clipped x_0 implies."""
    model, _ = tiny
    s = make_schedule("linear", 1000)
    model = model.double()
    try:
        x_T = torch.randn(3, 1, 8, 8, dtype=torch.float64)
        for spacing in ("leading", "trailing"):
            for clip in (False, True):
                kw = dict(steps=10, spacing=spacing, clip_x0=clip, x_T=3 * x_T, y=[0, 1, 2], guidance=2.0,
                          progress=False)
                ddim, euler = sample(model, s, sampler="ddim", **kw), sample(model, s, sampler="euler", **kw)
                assert (ddim - euler).abs().max() < 1e-9, (spacing, clip)
    finally:
        model.float()


def test_one_step_of_each_formula_by_hand():
    from diffusion_lab.samplers import ddim_step
    from diffusion_lab.solvers import dpmpp_2m_step, euler_step, heun_step, sigmas_of

    s = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(0)
    x, eps, eps2, x0p = (torch.randn(2, 1, 4, 4, generator=g, dtype=torch.float64) for _ in range(4))
    sig = sigmas_of(s)
    t, t_prev = 600, 500
    # Euler on x~ = x_t sqrt(1 + sigma^2) is DDIM on x_t
    ddim, _ = ddim_step(x, eps, t, t_prev, s)
    euler = euler_step(x * (1 + sig[t] ** 2) ** 0.5, eps, sig[t], sig[t_prev]) / (1 + sig[t_prev] ** 2) ** 0.5
    torch.testing.assert_close(euler, ddim, rtol=0, atol=1e-12)
    # Heun with equal slopes is Euler
    torch.testing.assert_close(heun_step(x, eps, eps, 2.0, 1.0), euler_step(x, eps, 2.0, 1.0))
    # DPM-Solver++ 2M: first order is DDIM (x~' = (s'/s) x~ + (1 - s'/s) x0); with equal log-sigma
    # steps (r = 1) the data prediction is extrapolated as 1.5 x0 - 0.5 x0_prev
    x0 = x - 2.0 * eps
    torch.testing.assert_close(dpmpp_2m_step(x, x0, None, None, 2.0, 1.0), euler_step(x, eps, 2.0, 1.0))
    torch.testing.assert_close(dpmpp_2m_step(x, x0, x0p, 4.0, 2.0, 1.0), 0.5 * x + 0.5 * (1.5 * x0 - 0.5 * x0p))


def test_guidance_scale_one_is_a_single_conditional_pass(tiny):
    model, _ = tiny
    calls = []
    handle = model.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    x, t, y = torch.randn(4, 1, 8, 8), 5, torch.tensor([0, 1, 2, 0])
    out = guided_eps(model, x, t, y, 1.0)
    handle.remove()
    assert calls == [4]  # eps_u + 1 * (eps_c - eps_u) = eps_c: no unconditional half
    torch.testing.assert_close(out, model(x, t, y))


def test_samples_are_ordinary_tensors_and_amp_follows_the_hardware(tiny, monkeypatch):
    from diffusion_lab import samplers

    model, s = tiny
    x = sample(model, s, 2, steps=3, progress=False)
    x.add_(1)  # made under inference mode, returned as a normal tensor: in-place edits work
    dtypes = []
    monkeypatch.setattr(samplers, "autocast_dtype", lambda device: torch.bfloat16)
    handle = model.conv_out.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
    y = sample(model, s, 2, steps=3, amp=True, progress=False)
    handle.remove()
    assert set(dtypes) == {torch.bfloat16} and y.dtype == torch.float32
    monkeypatch.setattr(samplers, "autocast_dtype", lambda device: None)  # no native bf16: float32
    z = sample(model, s, 2, steps=3, amp=True, progress=False)
    assert torch.equal(z, sample(model, s, 2, steps=3, progress=False))


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp2m"])
def test_ode_samplers_reproduce_and_trace(tiny, sampler):
    model, s = tiny
    kw = dict(sampler=sampler, steps=4, y=[0, 1], guidance=2.0, progress=False)
    x, traj = sample(model, s, 2, return_trajectory=True, seed=3, **kw)
    assert torch.equal(x, sample(model, s, 2, seed=3, **kw))
    assert traj["x_t"].shape == (5, 2, 1, 8, 8) and traj["x0"].shape == (4, 2, 1, 8, 8) and len(traj["t"]) == 4
    torch.testing.assert_close(traj["x_t"][-1], x)  # final sigma zero: the VP state is the image


def test_one_sampling_config_says_which_option_goes_with_which_sampler(tiny):
    """SamplingConfig is what sample(), evaluate, the command line and the bridge share; an option
    a sampler has no use for is refused with the reason, and keyword options replace its fields."""
    from diffusion_lab.samplers import ONLY_FOR, SAMPLERS, SamplingConfig

    for name, (samplers, why) in ONLY_FOR.items():
        value = {"steps": 5, "eta": 0.5, "spacing": "trailing", "karras": True, "final_sigma": "sigma_min",
                 "variance": "beta", "shift": 3.0, "churn": 5.0}[name]
        for sampler in SAMPLERS:
            if sampler in samplers:
                assert getattr(SamplingConfig(sampler=sampler, **{name: value}), name) == value
            else:
                with pytest.raises(ValueError, match=f"{name} does not apply to {sampler}: {why}"):
                    SamplingConfig(sampler=sampler, **{name: value})
    model, s = tiny
    cfg = SamplingConfig(sampler="ddim", steps=3, guidance=2.0)
    a = sample(model, s, 2, cfg, y=[0, 1], progress=False)
    b = sample(model, s, 2, sampler="ddim", steps=3, guidance=2.0, y=[0, 1], progress=False)
    c = sample(model, s, 2, SamplingConfig(sampler="ddim", steps=9), steps=3, guidance=2.0, y=[0, 1], progress=False)
    assert torch.equal(a, b) and torch.equal(a, c)
    with pytest.raises(ValueError, match="unknown sampler"):
        SamplingConfig(sampler="plms")


def test_guidance_interval_guides_inside_and_not_outside():
    from diffusion_lab.guidance import check_guidance_interval, scale_at
    assert scale_at(3.0, 2.0, (0.3, 5.0)) == 3.0 and scale_at(3.0, 9.0, (0.3, 5.0)) == 1.0
    assert scale_at(3.0, 0.1, (0.3, 5.0)) == 1.0 and scale_at(3.0, 0.1, None) == 3.0
    assert scale_at(None, 1, (0, 1)) is None
    assert check_guidance_interval(("0.3", "inf")) == (0.3, math.inf)
    for bad in ((1, 1), (-1, 2), (2, 1), (math.nan, 1), (math.inf, math.inf), "ab", (1,)):
        with pytest.raises(ValueError, match="guidance interval must be"):
            check_guidance_interval(bad)
    torch.manual_seed(0)
    model = UNet(image_size=8, base_channels=8, channel_mults=(1, 2), num_classes=3)
    with torch.no_grad():  # out of its zero-initialised output layer, so the label changes the prediction
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    schedule = make_schedule("linear", 50)
    for sampler in ("ddim", "dpmpp2m", "ddpm"):
        kw = dict(y=[0, 1], sampler=sampler, steps=None if sampler == "ddpm" else 6, seed=0, progress=False)
        guided, plain = (dl.sample(model, schedule, guidance=s, **kw) for s in (3.0, 1.0))
        everywhere = dl.sample(model, schedule, guidance=3.0, guidance_interval=(0, math.inf), **kw)
        nowhere = dl.sample(model, schedule, guidance=3.0, guidance_interval=(1e6, 1e7), **kw)
        part = dl.sample(model, schedule, guidance=3.0, guidance_interval=(0.3, 10.0), **kw)
        torch.testing.assert_close(everywhere, guided, rtol=0, atol=0)
        torch.testing.assert_close(nowhere, plain, rtol=0, atol=0)
        assert (part - guided).abs().max() > 1e-4 and (part - plain).abs().max() > 1e-4, sampler
    with pytest.raises(ValueError, match="give a guidance scale too"):
        dl.samplers.SamplingConfig(guidance_interval=(0.3, 5))
