"""The score, the reverse SDE and the stochastic samplers (chapter 14): closed forms, and Euler ancestral
step for step against diffusers' EulerAncestralDiscreteScheduler with the same injected noise in float64."""

import math

import numpy as np
import pytest
import torch

from diffusion_lab import make_schedule, sample, sde, solvers
from diffusion_lab.course import toy2d
from diffusion_lab.forward import eps_from_score, score_from_eps

T = 1000


def _gaussian_score(x, alpha_bar, s):
    """Data N(0, s^2 I): p_t = N(0, (ab s^2 + 1 - ab) I), whose score is -x / (ab s^2 + 1 - ab)."""
    return -x / (alpha_bar * s**2 + 1 - alpha_bar)


def test_the_best_noise_prediction_is_the_score():
    # For data N(0, s^2), E[eps | x_t] = sqrt(1 - ab) x_t / (ab s^2 + 1 - ab): its score_from_eps is p_t's score.
    s, x = 0.5, torch.randn(1000, dtype=torch.float64)
    for ab in (0.999, 0.5, 0.01):
        eps = math.sqrt(1 - ab) * x / (ab * s**2 + 1 - ab)
        torch.testing.assert_close(score_from_eps(eps, ab), _gaussian_score(x, ab, s))
        torch.testing.assert_close(eps_from_score(score_from_eps(eps, ab), ab), eps)


def test_exact_score_of_the_toy_is_the_gradient_of_its_log_density():
    data, x = toy2d.two_moons(50, seed=3).double(), torch.randn(20, 2, dtype=torch.float64, requires_grad=True)
    t = 200
    ab = float(toy2d.SCHEDULE.alpha_bar[t])
    log_p = torch.logsumexp(-(x[:, None] - ab**0.5 * data[None]).pow(2).sum(-1) / (2 * (1 - ab)), dim=1).sum()
    (grad,) = torch.autograd.grad(log_p, x)
    torch.testing.assert_close(toy2d.exact_score(x.detach(), data, t), grad)


@pytest.mark.parametrize("stochastic", [True, False])
def test_both_roads_reach_the_data_distribution(stochastic):
    # Data N(0, 0.5^2): with the exact score, 4000 particles from N(0, 1) end with std 0.5 on either road.
    schedule = make_schedule("linear", T)
    s = 0.5
    score_at = lambda x, t: _gaussian_score(x, float(schedule.alpha_bar[t]), s)
    x_T = torch.randn(4000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    end = sde.walk(score_at, x_T, schedule.betas, stochastic, torch.Generator().manual_seed(1))
    assert abs(end.std().item() - s) < 0.03, end.std()


def test_a_wrong_drift_sign_is_caught():  # the test above can fail
    schedule = make_schedule("linear", T)
    score_at = lambda x, t: -_gaussian_score(x, float(schedule.alpha_bar[t]), 0.5)  # the score turned round
    x_T = torch.randn(2000, 1, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    end = sde.walk(score_at, x_T, schedule.betas, True, torch.Generator().manual_seed(1))
    assert abs(end.std().item() - 0.5) > 0.3


def test_the_sde_step_adds_no_noise_when_told_none():
    x, score = torch.randn(5, 2), torch.randn(5, 2)
    torch.testing.assert_close(sde.reverse_sde_step(x, score, 0.01, None), x + 0.005 * x + 0.01 * score)
    torch.testing.assert_close(sde.probability_flow_step(x, score, 0.01), x + 0.005 * x + 0.005 * score)


def test_ancestral_split_keeps_the_target_variance():
    for sigma, nxt in ((80.0, 10.0), (2.0, 1.5), (0.5, 0.0)):
        down, up = solvers.ancestral_sigmas(sigma, nxt)
        assert down**2 + up**2 == pytest.approx(nxt**2)
        assert down <= nxt


class Toy(torch.nn.Module):
    in_channels, image_size, num_classes = 1, 8, None

    def __init__(self):
        super().__init__()
        self.config = {"prediction": "eps"}
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x, t, y=None):
        t = torch.as_tensor(t, dtype=x.dtype).reshape(-1, 1, 1, 1)
        return torch.tanh(0.7 * x + 0.001 * t) + 0.1 * torch.sin(3 * x)


def test_same_seed_same_images_other_seed_other_images():
    schedule = make_schedule("linear", T)
    a, b, c = (sample(Toy(), schedule, 4, sampler="euler_ancestral", steps=10, seed=s, progress=False)
               for s in (0, 0, 1))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().max() > 0.1
    ode = sample(Toy(), schedule, 4, sampler="euler", steps=10, seed=0, progress=False)
    assert (a - ode).abs().max() > 0.1  # the noise changes the images: it is used


diffusers = pytest.importorskip("diffusers")
from diffusers.schedulers import scheduling_euler_ancestral_discrete as ea  # noqa: E402

from diffusion_lab.bridge import to_diffusers  # noqa: E402


class _As64:
    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, "float64" if name == "float32" else name)


@pytest.mark.parametrize("spacing", ["leading", "trailing", "linspace"])
@pytest.mark.parametrize("steps", [7, 20])
def test_euler_ancestral_matches_diffusers_step_for_step_float64(monkeypatch, spacing, steps):
    monkeypatch.setattr(ea, "torch", _As64(torch))
    monkeypatch.setattr(ea, "np", _As64(np))
    g = torch.Generator().manual_seed(5)
    shape = (3, 1, 8, 8)
    noises = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(steps)]
    theirs_noise = iter(noises)
    monkeypatch.setattr(ea, "randn_tensor", lambda *a, **k: next(theirs_noise))
    schedule, model = make_schedule("linear", T), Toy()
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    ref = to_diffusers(schedule, "euler_ancestral", spacing=spacing)
    ref.set_timesteps(steps)
    x, theirs = x_T * (1 + ref.sigmas[0] ** 2).sqrt(), []
    for t in ref.timesteps:
        x = ref.step(model(ref.scale_model_input(x, t), t), t, x).prev_sample
        theirs.append(x / (1 + ref.sigmas[len(theirs) + 1] ** 2).sqrt())

    ours_noise = iter(noises)
    ts, sigmas = solvers.sigma_grid(schedule, steps, "euler_ancestral", spacing)
    np.testing.assert_allclose(sigmas, ref.sigmas.double().numpy(), rtol=1e-12)
    mine = []
    solvers.ode_sample(lambda x_t, t, sigma: model(x_t, torch.full((len(x_t),), t, dtype=torch.float64)), x_T, ts,
                       sigmas, "euler_ancestral", on_step=lambda i, x_t, x0: mine.append(x_t),
                       noise=lambda shape: next(ours_noise))
    for i, (a, b) in enumerate(zip(mine, theirs)):
        assert (a - b).abs().max() < 1e-9, f"step {i}"


def test_euler_ancestral_options_diffusers_lacks_are_refused():
    with pytest.raises(ValueError, match="no equivalent"):
        to_diffusers(make_schedule("linear", T), "euler_ancestral", karras=True)
