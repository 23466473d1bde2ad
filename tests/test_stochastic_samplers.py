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


from diffusers.schedulers import scheduling_dpmsolver_multistep as dpm  # noqa: E402


@pytest.mark.parametrize("spacing,karras,final", [("leading", False, "zero"), ("trailing", True, "zero"),
                                                  ("linspace", False, "sigma_min"), ("trailing", False, "sigma_min")])
@pytest.mark.parametrize("steps", [7, 20])
def test_dpmpp2m_sde_matches_diffusers_step_for_step_float64(monkeypatch, spacing, karras, final, steps):
    monkeypatch.setattr(dpm, "torch", _As64(torch))
    monkeypatch.setattr(dpm, "np", _As64(np))
    g = torch.Generator().manual_seed(6)
    shape = (3, 1, 8, 8)
    noises = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(steps)]
    schedule, model = make_schedule("linear", T), Toy()
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)

    ref = to_diffusers(schedule, "dpmpp2m_sde", spacing=spacing, karras=karras, final_sigma=final)
    assert ref.config.algorithm_type == "sde-dpmsolver++"
    ref.set_timesteps(steps)
    x, theirs = x_T.clone(), []  # DPM-Solver keeps the VP x_t
    for i, t in enumerate(ref.timesteps):
        x = ref.step(model(x, t), t, x, variance_noise=noises[i]).prev_sample
        theirs.append(x)

    ours_noise = iter(noises)
    ts, sigmas = solvers.sigma_grid(schedule, steps, "dpmpp2m_sde", spacing, karras, final)
    np.testing.assert_allclose(sigmas, ref.sigmas.double().numpy(), rtol=1e-12)
    mine = []
    solvers.ode_sample(lambda x_t, t, sigma: model(x_t, torch.full((len(x_t),), t, dtype=torch.float64)), x_T, ts,
                       sigmas, "dpmpp2m_sde", final_sigma=final, on_step=lambda i, x_t, x0: mine.append(x_t),
                       noise=lambda shape: next(ours_noise))
    assert len(mine) == len(theirs) == steps
    for i, (a, b) in enumerate(zip(mine, theirs)):
        assert (a - b).abs().max() < 1e-9, f"step {i}"
    ode = solvers.ode_sample(lambda x_t, t, sigma: model(x_t, torch.full((len(x_t),), t, dtype=torch.float64)),
                             x_T, ts, sigmas, "dpmpp2m", final_sigma=final)
    assert (ode / (1 + sigmas[-1] ** 2) ** 0.5 - mine[-1]).abs().max() > 1e-3  # the noise is used


def _edm_algorithm_2(D, x0, t_steps, S_churn, S_tmax, rng):
    """Karras et al. 2022, Algorithm 2, written out line by line (S_tmin = 0, S_noise = 1).
    D(x, sigma) is the denoiser; t_steps are the noise levels t_0 > ... > t_N = 0."""
    N = len(t_steps) - 1
    x_next = x0 * t_steps[0]  # line 1: x_0 ~ N(0, t_0^2 I)
    for i in range(N):  # line 2
        t_cur, t_nxt, x_cur = t_steps[i], t_steps[i + 1], x_next
        gamma = min(S_churn / N, math.sqrt(2) - 1) if 0 <= t_cur <= S_tmax else 0.0  # line 3
        t_hat = t_cur + gamma * t_cur  # line 5
        x_hat = x_cur + math.sqrt(t_hat**2 - t_cur**2) * rng() if gamma > 0 else x_cur  # lines 4, 6
        d_cur = (x_hat - D(x_hat, t_hat)) / t_hat  # line 7
        x_next = x_hat + (t_nxt - t_hat) * d_cur  # line 8
        if t_nxt != 0:  # lines 9-11: the second-order correction
            d_prime = (x_next - D(x_next, t_nxt)) / t_nxt
            x_next = x_hat + (t_nxt - t_hat) * (0.5 * d_cur + 0.5 * d_prime)
    return x_next


@pytest.mark.parametrize("churn", [0.0, 5.0, 40.0, 1000.0])
def test_edm_sampler_is_karras_algorithm_2(churn):
    schedule, model = make_schedule("linear", T), Toy()
    steps = 12
    ts, sigmas = solvers.sigma_grid(schedule, steps, "edm", "trailing", karras=True)
    t_of = lambda sigma: float(solvers.t_of_sigma(sigma, schedule))
    t_at = {float(s): float(t) for s, t in zip(sigmas, ts)}

    def eps(x_vp, t):
        return model(x_vp, torch.full((len(x_vp),), t, dtype=torch.float64))

    def D(x, sigma):  # the denoiser of the VP network, in sigma space
        t = t_at.get(float(sigma), None)
        return x - sigma * eps(x / math.sqrt(1 + sigma**2), t_of(sigma) if t is None else t)

    x_T = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    gamma = min(churn / steps, math.sqrt(2) - 1)
    expected = _edm_algorithm_2(D, x_T, [float(s) for s in sigmas], churn, float(sigmas[0]) / (1 + gamma),
                                lambda: torch.randn(x_T.shape, generator=g1, dtype=torch.float64))
    # Alg. 2 starts from x~ = t_0 n; ours from a VP x_T, which is x~ / sqrt(1 + t_0^2): the same point
    x_T_vp = x_T * sigmas[0] / math.sqrt(1 + sigmas[0] ** 2)
    ours = solvers.ode_sample(lambda x_t, t, sigma: eps(x_t, t), x_T_vp, ts, sigmas, "edm", churn=churn, t_of=t_of,
                              noise=lambda shape: torch.randn(shape, generator=g2, dtype=torch.float64))
    assert (ours - expected).abs().max() < 1e-9 * max(1.0, float(expected.abs().max()))
    heun = solvers.ode_sample(lambda x_t, t, sigma: eps(x_t, t), x_T_vp, ts, sigmas, "heun")
    if churn == 0:
        torch.testing.assert_close(ours, heun, rtol=0, atol=0)
    else:
        assert (ours - heun).abs().max() > 1e-3, "churn adds noise"


def test_edm_and_dpmpp2m_sde_through_sample_and_their_calls():
    schedule = make_schedule("linear", T)
    a = sample(Toy(), schedule, 2, sampler="edm", steps=6, churn=10, karras=True, spacing="trailing", progress=False)
    b = sample(Toy(), schedule, 2, sampler="edm", steps=6, churn=10, karras=True, spacing="trailing", progress=False)
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert solvers.model_calls("edm", 6) == 11 and solvers.steps_for_calls("edm", 11) == 6
    c = sample(Toy(), schedule, 2, sampler="dpmpp2m_sde", steps=6, progress=False)
    assert torch.isfinite(c).all()
    with pytest.raises(ValueError, match="churn does not apply to heun"):
        sample(Toy(), schedule, 2, sampler="heun", steps=6, churn=1, progress=False)
    for bad in (-1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="churn must be a finite number >= 0"):
            sample(Toy(), schedule, 2, sampler="edm", steps=6, churn=bad, progress=False)
