"""Flow matching (paths.py and the linear path through training and sampling): the target table
against its closed forms, the linear-path samplers against diffusers' FlowMatchEuler/FlowMatchHeun
schedulers step for step in float64, straightness, the DiT, and the refusals."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from diffusion_lab import make_schedule, sample, samplers
from diffusion_lab.dit import DiT, position_embedding
from diffusion_lab.models import build_model, model_record
from diffusion_lab.paths import (
    TARGETS,
    flow_grid,
    linear_coefficients,
    linear_interpolate,
    sample_time,
    shift_time,
    step_to,
    straightness,
    target,
    to_x0_eps,
    vp_to_linear,
)
from diffusion_lab.samplers import SamplingConfig, ddim_step
from diffusion_lab.training import TrainConfig, flow_matching_loss

SHAPE = (4, 1, 8, 8)


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(SHAPE, generator=g, dtype=torch.float64), torch.randn(SHAPE, generator=g, dtype=torch.float64)


def _vp_coefficients(t=300):
    ab = make_schedule("linear", 1000).alpha_bar[t]
    return ab.sqrt(), (1 - ab).sqrt()


# ------------------------------------------------------------------ the table of targets


@pytest.mark.parametrize("kind", TARGETS)
@pytest.mark.parametrize("path", ["vp", "linear"])
def test_every_target_gives_back_the_pair_it_came_from(kind, path):
    x0, eps = _pair()
    if path == "linear":
        a, b, da, db = linear_coefficients(torch.tensor(0.3, dtype=torch.float64))
    else:  # the VP path's velocity needs a'_t, b'_t: any pair with a b' - b a' != 0 checks the row
        (a, b), (da, db) = _vp_coefficients(), (torch.tensor(-0.4, dtype=torch.float64), torch.tensor(0.9))
    x_t = a * x0 + b * eps
    pred = target(kind, x0, eps, a, b, da, db)
    x0_back, eps_back = to_x0_eps(pred, kind, x_t, a, b, da, db)
    assert (x0_back - x0).abs().max() < 1e-12 and (eps_back - eps).abs().max() < 1e-12


def test_the_velocity_is_the_time_derivative_of_the_linear_path():
    x0, eps = _pair()
    t, h = torch.full((SHAPE[0],), 0.37, dtype=torch.float64), 1e-6
    numeric = (linear_interpolate(x0, eps, t + h) - linear_interpolate(x0, eps, t - h)) / (2 * h)
    a, b, da, db = linear_coefficients(torch.tensor(0.37, dtype=torch.float64))
    assert (numeric - target("velocity", x0, eps, a, b, da, db)).abs().max() < 1e-8
    assert (numeric - (eps - x0)).abs().max() < 1e-8


def test_v_on_the_vp_path_is_salimans_and_hos():
    x0, eps = _pair()
    a, b = _vp_coefficients()
    assert (target("v", x0, eps, a, b) - (a * eps - b * x0)).abs().max() == 0


def test_unknown_target_names_the_choices():
    x0, eps = _pair()
    with pytest.raises(ValueError, match="unknown prediction target 'noise'; choose one of eps, x0, v, velocity"):
        target("noise", x0, eps, 1.0, 0.0)
    with pytest.raises(ValueError, match="unknown prediction target"):
        to_x0_eps(x0, "score", x0, 1.0, 0.0)


def test_ddim_on_the_vp_path_and_euler_on_the_linear_path_are_the_same_line():
    x0, eps = _pair()
    schedule = make_schedule("linear", 1000)
    x_t = schedule.sqrt_alpha_bar[500] * x0 + schedule.sqrt_one_minus_alpha_bar[500] * eps
    ddim, _ = ddim_step(x_t, eps, 500, 300, schedule)
    a_s, b_s = schedule.sqrt_alpha_bar[300], schedule.sqrt_one_minus_alpha_bar[300]
    assert (ddim - step_to(x0, eps, a_s, b_s)).abs().max() < 1e-12
    t, s = 0.6, 0.25  # Euler: x_s = x_t + (s - t) u, with u = eps - x0
    x_t = (1 - t) * x0 + t * eps
    assert ((x_t + (s - t) * (eps - x0)) - step_to(x0, eps, 1 - s, s)).abs().max() < 1e-12


def test_vp_states_map_onto_the_linear_path_at_the_same_signal_to_noise_ratio():
    x0, eps = _pair()
    ab = float(make_schedule("linear", 1000).alpha_bar[400])
    x_lin, s = vp_to_linear(math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps, ab)
    assert (x_lin - ((1 - s) * x0 + s * eps)).abs().max() < 1e-12
    assert math.isclose((1 - s) / s, math.sqrt(ab / (1 - ab)), rel_tol=1e-12)  # a/b kept


# ------------------------------------------------------------------ time: training draws, grids, shift


def test_training_times_lie_in_0_1_and_logit_normal_crowds_the_middle():
    g = torch.Generator().manual_seed(0)
    uniform, logit = sample_time(20000, "uniform", g), sample_time(20000, "logit_normal", g)
    assert 0 < uniform.min() and uniform.max() < 1 and 0 < logit.min() and logit.max() < 1
    middle = lambda t: float(((t > 0.25) & (t < 0.75)).double().mean())  # noqa: E731
    assert abs(middle(uniform) - 0.5) < 0.02 and middle(logit) > 0.65  # N(0,1) in logit: P = 0.73
    with pytest.raises(ValueError, match="unknown time sampling 'beta'; choose one of uniform, logit_normal"):
        sample_time(3, "beta")


def test_shift_is_esser_et_als_eq_23_and_refuses_nonsense():
    t = np.linspace(0, 1, 11)
    assert np.allclose(shift_time(t, 3.0), 3 * t / (1 + 2 * t)) and np.allclose(shift_time(t, 1.0), t)
    assert shift_time(0.5, 3.0) == 0.75
    with pytest.raises(ValueError, match="shift must be a positive number"):
        shift_time(t, 0.0)
    with pytest.raises(ValueError, match="shift must be a positive number"):
        SamplingConfig(shift=-1.0)


# ------------------------------------------------------------------ the loss


class Oracle(nn.Module):
    """The exact marginal velocity when the data is one image x_star: u(x_t, t) = (x_t - x_star) / t."""

    in_channels, image_size, num_classes = 1, 8, None

    def __init__(self, x_star):
        super().__init__()
        self.x_star = x_star
        self.config = {"prediction": "velocity", "path": "linear"}
        self.anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.calls = 0

    def forward(self, x, t, y=None):
        self.calls += 1
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1) / 1000
        return (x - self.x_star) / t


def test_flow_matching_loss_is_zero_for_the_exact_velocity_and_its_closed_form_otherwise():
    x_star, eps = _pair()
    x0 = x_star[:1].expand(SHAPE)
    t = torch.tensor([0.1, 0.4, 0.7, 0.95], dtype=torch.float64)
    assert flow_matching_loss(Oracle(x_star[:1]), x0, t, eps) < 1e-12  # float32 rounding of the error
    zero = Oracle(x_star[:1])
    zero.forward = lambda x, t, y=None: torch.zeros_like(x)
    assert math.isclose(float(flow_matching_loss(zero, x0, t, eps)), float((eps - x0).pow(2).mean()), rel_tol=1e-6)


def test_one_euler_step_of_a_straight_flow_is_exact():
    """The one-image data set: every path is straight, so one Euler step lands on the image."""
    x_star, x_T = _pair(1)
    oracle = Oracle(x_star[:1])
    out = sample(oracle, make_schedule("linear", 1000), x_T=x_T, steps=1, progress=False)
    assert (out - x_star[:1]).abs().max() < 1e-12 and oracle.calls == 1


# ------------------------------------------------------------------ against diffusers, step for step

diffusers = pytest.importorskip("diffusers")
from diffusers.schedulers import (  # noqa: E402
    scheduling_flow_match_euler_discrete,
    scheduling_flow_match_heun_discrete,
)


class _As64:
    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, "float64" if name == "float32" else name)


@pytest.fixture
def float64_diffusers(monkeypatch):
    """diffusers builds its tables in float32 and casts the sample to float32; inside these two modules
    float32 means float64 here (the formulas are untouched), so whole chains compare to 1e-12."""
    for module in (scheduling_flow_match_euler_discrete, scheduling_flow_match_heun_discrete):
        monkeypatch.setattr(module, "torch", _As64(torch))
        monkeypatch.setattr(module, "np", _As64(np))


class Toy(nn.Module):
    """A smooth stand-in for a trained linear-path network, depending on x and the real t."""

    in_channels, image_size, num_classes = 1, 8, None

    def __init__(self):
        super().__init__()
        self.config = {"prediction": "velocity", "path": "linear"}
        self.anchor = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x, t, y=None):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1) / 1000
        return torch.tanh(0.8 * x - t) + 0.2 * torch.sin(3 * x * t)


def _theirs(scheduler, x_T, steps, **set_timesteps):
    scheduler.set_timesteps(steps, **set_timesteps)
    x, states, model = x_T.clone(), [], Toy()
    for t in scheduler.timesteps:
        x = scheduler.step(model(x, t.expand(len(x))), t, x).prev_sample
        states.append(x)
    return x, states


@pytest.mark.parametrize("steps", [1, 2, 4, 10, 50])
@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_euler_matches_flow_match_euler_discrete_float64(float64_diffusers, steps, shift):
    x_T = _pair(2)[1]
    ours, traj = sample(Toy(), make_schedule("linear", 1000), x_T=x_T, sampler="euler", steps=steps, shift=shift,
                        return_trajectory=True, progress=False)
    ref = diffusers.FlowMatchEulerDiscreteScheduler(shift=shift)
    theirs, states = _theirs(ref, x_T, None, sigmas=np.linspace(1.0, 1.0 / steps, steps))  # our N equal steps
    np.testing.assert_allclose(flow_grid(steps, shift), ref.sigmas.numpy(), rtol=0, atol=1e-12)
    for i, state in enumerate(states):
        assert (traj["x_t"][i + 1] - state).abs().max() < 1e-12, f"step {i}"
    assert (ours - theirs).abs().max() < 1e-12


@pytest.mark.parametrize("steps", [1, 3, 10])
def test_heun_matches_flow_match_heun_discrete_float64(float64_diffusers, steps):
    """FlowMatchHeunDiscreteScheduler takes no times of ours, so our Heun walks its grid here."""
    x_T = _pair(3)[1]
    ref = diffusers.FlowMatchHeunDiscreteScheduler()
    theirs, _ = _theirs(ref, x_T, steps)
    assert len(ref.timesteps) == 2 * steps - 1  # no correction on the last step, to t = 0
    their_grid = np.append(np.linspace(1.0, 1e-3, steps), 0.0)
    np.testing.assert_allclose(their_grid, np.append(ref.sigmas.numpy()[::2], 0.0), atol=1e-12)  # inner points twice
    model = Toy()
    ours = samplers.flow_sample(lambda x, t: model(x, torch.full((len(x),), t * 1000, dtype=x.dtype)), x_T,
                                their_grid, "heun")
    assert (ours - theirs).abs().max() < 1e-12


def test_our_grid_takes_n_equal_steps_where_diffusers_default_wastes_one():
    """diffusers' default N times run from 1 to 1/1000: 2 steps go 1 -> 0.001 -> 0, sampling like 1 step."""
    np.testing.assert_allclose(flow_grid(4), [1.0, 0.75, 0.5, 0.25, 0.0], atol=1e-15)
    ref = diffusers.FlowMatchEulerDiscreteScheduler()
    ref.set_timesteps(2)
    np.testing.assert_allclose(ref.sigmas.double().numpy(), [1.0, 1e-3, 0.0], atol=1e-6)
    assert np.allclose(flow_grid(3, shift=3.0)[:-1], shift_time(np.array([1.0, 2 / 3, 1 / 3]), 3.0))


# ------------------------------------------------------------------ straightness


def test_straightness_is_zero_on_straight_paths_and_one_third_on_a_parabola():
    x0, x1 = _pair(4)
    t = torch.linspace(1, 0, 101, dtype=torch.float64)
    straight = torch.stack([(1 - s) * x0 + s * x1 for s in t])
    assert straightness(t, straight) < 1e-20
    fine = torch.linspace(1, 0, 2001, dtype=torch.float64)
    curved = torch.stack([x0 + s**2 * (x1 - x0) for s in fine])  # dx/dt = 2t (x1 - x0): S = E|x1 - x0|^2 / 3
    expected = (x1 - x0).pow(2).mean().item() / 3
    assert math.isclose(straightness(fine, curved), expected, rel_tol=1e-3)
    with pytest.raises(ValueError, match="times must decrease strictly"):
        straightness(torch.tensor([0.0, 1.0]), straight[:2])


# ------------------------------------------------------------------ the DiT


def test_dit_starts_at_zero_is_recorded_and_rebuilt():
    model = DiT(image_size=8, patch_size=2, base_channels=32, depth=2, heads=4, num_classes=3)
    x = torch.randn(2, 1, 8, 8)
    assert model(x, torch.tensor([5, 900]), torch.tensor([0, 3])).abs().max() == 0  # adaLN-Zero, zero final
    record = model_record(model)
    assert record["name"] == "dit" and record["kwargs"]["path"] == "vp"
    again = build_model("dit", **record["kwargs"])
    again.load_state_dict(model.state_dict())


def test_dit_sees_the_time_the_label_and_every_patch():
    torch.manual_seed(0)
    model = DiT(image_size=8, patch_size=2, base_channels=32, depth=2, heads=4, num_classes=3)
    for p in model.parameters():  # away from the zero start, so every input matters
        nn.init.normal_(p, std=0.2)
    x = torch.randn(1, 1, 8, 8)
    base = model(x, torch.tensor([100.0]), torch.tensor([1]))
    assert (model(x, torch.tensor([700.0]), torch.tensor([1])) - base).abs().max() > 1e-3
    assert (model(x, torch.tensor([100.0]), torch.tensor([2])) - base).abs().max() > 1e-3
    x2 = x.clone()
    x2[..., 7, 7] += 1.0  # the last patch's pixel changes the first patch's output: attention mixes them
    assert (model(x2, torch.tensor([100.0]), torch.tensor([1])) - base)[..., :2, :2].abs().max() > 1e-4


def test_dit_position_embedding_and_sizes_are_checked():
    pos = position_embedding(32, 4)
    assert pos.shape == (16, 32) and torch.unique(pos, dim=0).shape[0] == 16  # every patch its own position
    with pytest.raises(ValueError, match="image_size must be a multiple of 3"):
        DiT(image_size=28, patch_size=3)
    with pytest.raises(ValueError, match="must divide into heads=5"):
        DiT(base_channels=32, heads=5)
    with pytest.raises(ValueError, match="multiple of 4"):
        DiT(base_channels=18, heads=2)


# ------------------------------------------------------------------ what is refused, in one line


def test_a_network_records_a_prediction_that_goes_with_its_path():
    with pytest.raises(ValueError, match="prediction 'eps' does not go with the linear path; choose 'velocity'"):
        build_model("unet", prediction="eps", path="linear")
    with pytest.raises(ValueError, match="prediction 'velocity' does not go with the vp path"):
        build_model("minimal", prediction="velocity")
    with pytest.raises(ValueError, match="unknown path 'straight'; choose one of vp, linear"):
        DiT(path="straight")


def test_the_training_recipe_follows_the_path():
    cfg = TrainConfig(path="linear", steps=1)
    assert (cfg.prediction, cfg.loss_weighting) == ("velocity", "simple")
    assert (TrainConfig(steps=1).prediction, TrainConfig(steps=1).loss_weighting) == ("eps", "min_snr")
    for bad, match in ((dict(path="linear", loss_weighting="min_snr"), "loss_weighting must be 'simple' on the linear"),
                       (dict(path="linear", prediction="v"), "prediction must be 'velocity' on the linear path"),
                       (dict(prediction="velocity"), "prediction must be 'eps' or 'v' on the vp path"),
                       (dict(time_sampling="logit_normal"), "time_sampling must be 'uniform' on the vp path")):
        with pytest.raises(ValueError, match=match):
            TrainConfig(steps=1, **bad).validate()


def test_samplers_and_options_of_the_other_path_are_refused():
    schedule, flow = make_schedule("linear", 1000), Toy()
    for options, match in ((dict(sampler="ddim"), "sampler ddim walks the VP path; .* use euler or heun"),
                           (dict(sampler="dpmpp2m"), "sampler dpmpp2m walks the VP path"),
                           (dict(sampler="euler", karras=True), "karras is an option of the VP path's samplers"),
                           (dict(sampler="heun", spacing="trailing"), "spacing is an option of the VP path")):
        with pytest.raises(ValueError, match=match):
            sample(flow, schedule, 2, progress=False, **options)
    vp = build_model("unet", image_size=8, base_channels=8, channel_mults=(1,), attention=False)
    with pytest.raises(ValueError, match="shift is an option of the linear path's samplers; .* vp path"):
        sample(vp, schedule, 2, sampler="euler", shift=3.0, progress=False)
    assert SamplingConfig().for_path("linear").sampler == "euler"
    assert SamplingConfig().for_path("vp").sampler == "ddim"


# ------------------------------------------------------------------ the command line


def _cli(capsys, *argv):
    from diffusion_lab.cli import main

    rc = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return rc, captured.err.strip().splitlines(), captured.out


@pytest.fixture(scope="module")
def flow_checkpoint(tmp_path_factory):
    """A tiny class-conditional DiT trained for 2 steps on the linear path, through the command line."""
    from diffusion_lab.cli import main

    out = tmp_path_factory.mktemp("flow") / "flow.safetensors"
    rc = main(["train", "--path", "linear", "--model", "dit", "--base-channels", "16", "--steps", "2",
               "--data-limit", "64", "--batch-size", "8", "--out", str(out)])
    assert rc == 0 and out.exists()
    return out


def test_a_linear_path_checkpoint_records_its_path_and_samples_with_euler(flow_checkpoint, capsys, tmp_path):
    from diffusion_lab.checkpoints import load_checkpoint, read_config

    config = read_config(flow_checkpoint)
    assert config["model"]["kwargs"]["path"] == "linear" and config["model"]["kwargs"]["prediction"] == "velocity"
    assert config["training"]["path"] == "linear" and config["sampling"]["sampler"] == "euler"
    model, _, _ = load_checkpoint(flow_checkpoint)
    assert model.config["path"] == "linear"
    rc, err, out = _cli(capsys, "sample", "--checkpoint", flow_checkpoint, "--per-class", 1, "--steps", 2,
                        "--shift", 3, "--out", tmp_path / "grid.png")
    assert rc == 0 and (tmp_path / "grid.png").exists(), err
    rc, err, _ = _cli(capsys, "sample", "--checkpoint", flow_checkpoint, "--labels", "1", "--sampler", "heun",
                      "--steps", 2, "--out", tmp_path / "one.npz")
    assert rc == 0 and (tmp_path / "one.npz").exists(), err


@pytest.mark.parametrize("flags,match", [
    (("--sampler", "ddim"), "sampler ddim walks the VP path; this model was trained on the linear path"),
    (("--sampler", "ddpm"), "sampler ddpm walks the VP path"),
    (("--sampler", "euler", "--karras"), "karras is an option of the VP path's samplers"),
])
def test_the_command_line_refuses_vp_sampling_on_a_linear_checkpoint(flow_checkpoint, capsys, tmp_path, flags, match):
    rc, err, _ = _cli(capsys, "sample", "--checkpoint", flow_checkpoint, "--labels", "1", *flags,
                      "--out", tmp_path / "x.png")
    assert rc == 2 and len(err) == 1 and "Traceback" not in err[0] and match in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_the_command_line_refuses_a_shift_on_a_vp_checkpoint(capsys, tmp_path):
    rc, err, _ = _cli(capsys, "sample", "--checkpoint", "mnist_cfg", "--sampler", "euler", "--shift", "3",
                      "--labels", "1", "--out", tmp_path / "x.png")
    assert rc == 2 and len(err) == 1 and "shift is an option of the linear path's samplers" in err[0], err


@pytest.mark.parametrize("flags,match", [
    (("--path", "linear", "--loss-weighting", "min_snr"), "loss_weighting must be 'simple' on the linear path"),
    (("--path", "linear", "--prediction", "eps"), "prediction must be 'velocity' on the linear path"),
    (("--time-sampling", "logit_normal",), "time_sampling must be 'uniform' on the vp path"),
])
def test_the_command_line_refuses_a_recipe_of_the_other_path(capsys, tmp_path, flags, match):
    rc, err, _ = _cli(capsys, "train", *flags, "--steps", "1", "--out", tmp_path / "x.safetensors")
    assert rc == 2 and len(err) == 1 and match in err[0], err
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ chapter 13's 2-D world


def test_the_exact_marginal_velocity_of_one_point_is_its_straight_line_and_of_two_an_average():
    from diffusion_lab.course import toy2d

    x = torch.randn(50, 2, generator=torch.Generator().manual_seed(0))
    one = torch.tensor([[0.5, -0.2]])
    assert torch.allclose(toy2d.exact_velocity(x, one, 0.4), (x - one) / 0.4, atol=1e-6)
    two = torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    on_axis = torch.tensor([[0.0, 0.3]])  # equally far from both: the average of their lines, no x component
    u = toy2d.exact_velocity(on_axis, two, 0.5)
    assert abs(float(u[0, 0])) < 1e-6 and math.isclose(float(u[0, 1]), 0.3 / 0.5, rel_tol=1e-6)


def test_the_toy_trains_on_both_paths_and_samples_on_one_clock():
    from diffusion_lab.course import toy2d

    moons = toy2d.two_moons(500)
    assert moons.shape == (500, 2) and moons.abs().max() < 2
    for path in ("vp", "linear"):
        net, losses = toy2d.train_toy(path, moons, steps=150)
        assert sum(losses[-20:]) < sum(losses[:20]), path
        times, states = toy2d.trajectories(net, path, n=20, steps=5)
        assert states.shape == (6, 20, 2) and times[-1] == 0 and 0.99 < times[0] <= 1
        assert all(a > b for a, b in zip(times, times[1:]))
    with pytest.raises(ValueError, match="unknown path"):
        toy2d.train_toy("curved", moons, steps=1)
