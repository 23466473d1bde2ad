"""Schedules and the forward process against their closed forms (Ho et al. 2020, eq. 2, 4, 6-7)."""

import math

import pytest
import torch

from diffusion_lab import make_schedule, posterior, q_sample, q_step
from diffusion_lab.forward import eps_from_v, eps_from_x0, v_target
from diffusion_lab.samplers import ddim_sigma
from diffusion_lab.schedules import SCHEDULES, schedule_from_betas


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_identities(name):
    s = make_schedule(name, 1000)
    assert s.T == 1000 and ((s.betas > 0) & (s.betas < 1)).all()
    torch.testing.assert_close(s.alphas, 1 - s.betas)
    torch.testing.assert_close(s.alpha_bar, torch.cumprod(1 - s.betas, 0))
    assert s.alpha_bar_prev[0] == 1 and torch.equal(s.alpha_bar_prev[1:], s.alpha_bar[:-1])
    assert (s.alpha_bar[1:] < s.alpha_bar[:-1]).all(), "alpha_bar must decrease"
    torch.testing.assert_close(s.snr, s.alpha_bar / (1 - s.alpha_bar))
    assert s.alpha_bar[-1] < 5e-3, "the chain must end in (almost) pure noise"


def test_named_schedules_endpoints():
    lin = make_schedule("linear", 1000)
    assert math.isclose(lin.betas[0], 1e-4) and math.isclose(lin.betas[-1], 0.02)
    paper = make_schedule("scaled_linear", 500)
    assert math.isclose(paper.betas[0], 0.0003 * 2) and math.isclose(paper.betas[-1], 0.03 * 2)
    cos = make_schedule("cosine", 1000)
    # Nichol & Dhariwal eq. 17: alpha_bar(t) = f(t)/f(0) at t+1 (our 0-based t ends at T-1)
    f = lambda u: math.cos((u + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert math.isclose(cos.alpha_bar[499].item(), f(0.5) / f(0), rel_tol=1e-9)


def test_posterior_formulas():
    s = make_schedule("linear", 100)
    t = 37
    b, ab, ab_prev = s.betas[t], s.alpha_bar[t], s.alpha_bar[t - 1]
    assert math.isclose(s.posterior_variance[t], (1 - ab_prev) / (1 - ab) * b, rel_tol=1e-12)
    assert math.isclose(s.posterior_mean_coef_x0[t], b * ab_prev.sqrt() / (1 - ab), rel_tol=1e-12)
    coef_xt = (1 - ab_prev) * (1 - b).sqrt() / (1 - ab)
    assert math.isclose(s.posterior_mean_coef_xt[t], coef_xt, rel_tol=1e-12)
    assert s.posterior_variance[0] == 0, "the last reverse step adds no noise"


def test_posterior_is_the_bayes_product_of_the_two_gaussians():
    """q(x_{t-1}|x_t,x_0) ∝ q(x_t|x_{t-1}) q(x_{t-1}|x_0): check mean/variance by completing the square."""
    s = make_schedule("cosine", 50)
    t = 20
    x0, xt = torch.tensor([[[[0.3]]]]), torch.tensor([[[[-0.8]]]])
    a, b, ab_prev = s.alphas[t], s.betas[t], s.alpha_bar[t - 1]
    precision = a / b + 1 / (1 - ab_prev)
    mean = (a.sqrt() / b * xt.double() + ab_prev.sqrt() / (1 - ab_prev) * x0.double()) / precision
    m, v = posterior(x0.double(), xt.double(), t, s)
    torch.testing.assert_close(m, mean)
    torch.testing.assert_close(v.flatten()[0], 1 / precision)


@pytest.mark.parametrize("t", [0, 100, 500, 999])
def test_q_sample_monte_carlo_moments(t):
    s = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(t)
    x0 = torch.full((200_000, 1, 1, 1), 0.7)
    xt = q_sample(x0, torch.full((len(x0),), t), s, torch.randn(x0.shape, generator=g))
    mean, var = 0.7 * s.alpha_bar[t].sqrt().item(), 1 - s.alpha_bar[t].item()
    se = math.sqrt(var / len(x0))
    assert abs(xt.mean().item() - mean) < 5 * se + 1e-6
    assert abs(xt.var().item() - var) < 5 * var * math.sqrt(2 / len(x0)) + 1e-6


def test_iterated_one_step_chain_matches_the_jump_in_distribution():
    s = make_schedule("linear", 200)
    t = 150
    g = torch.Generator().manual_seed(0)
    x0 = torch.full((100_000, 1, 1, 1), -0.5)
    x = x0.clone()
    for k in range(t + 1):  # x_0 -> x_t takes t+1 one-step transitions with 0-based t
        x = q_step(x, k, s, torch.randn(x.shape, generator=g))
    jump = q_sample(x0, t, s, torch.randn(x0.shape, generator=g))
    # alpha_bar_t = prod_{k<=t} alpha_k, so both must have mean sqrt(ab_t) x0, var 1 - ab_t
    assert abs(x.mean() - jump.mean()) < 0.01 and abs(x.var() - jump.var()) < 0.01
    assert abs(x.mean().item() - (-0.5 * s.alpha_bar[t].sqrt().item())) < 0.01


def test_ddim_eta1_has_the_ddpm_posterior_variance_on_its_grid():
    s = make_schedule("linear", 1000)
    for t in (999, 500, 10, 1):  # full grid: t -> t-1
        assert math.isclose(ddim_sigma(t, t - 1, s, 1.0) ** 2, s.posterior_variance[t].item(), rel_tol=1e-9)
    # a skipping grid: the variance of q(x_s | x_t, x_0) for the jump t -> s
    t, u = 800, 700
    ab_t, ab_s = s.alpha_bar[t], s.alpha_bar[u]
    jump_var = (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s)
    assert math.isclose(ddim_sigma(t, u, s, 1.0) ** 2, jump_var.item(), rel_tol=1e-9)
    assert ddim_sigma(t, u, s, 0.0) == 0.0


def test_schedule_from_betas_rejects_bad_betas():
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        schedule_from_betas(torch.tensor([0.1, 1.0]))


def test_v_target_and_its_inverse():
    """v = sqrt(ab) eps - sqrt(1-ab) x0 (Salimans & Ho 2022); eps = sqrt(1-ab) x_t + sqrt(ab) v recovers eps,
    and x_0 = sqrt(ab) x_t - sqrt(1-ab) v recovers x_0 (both because ab + (1 - ab) = 1)."""
    s = make_schedule("cosine", 1000)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(4, 1, 5, 5, generator=g, dtype=torch.float64), torch.randn(4, 1, 5, 5, generator=g,
                                                                                      dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 999])
    x_t, v = q_sample(x0, t, s, eps), v_target(x0, eps, t, s)
    ab = s.alpha_bar[t].view(-1, 1, 1, 1)
    torch.testing.assert_close(v, ab.sqrt() * eps - (1 - ab).sqrt() * x0)
    torch.testing.assert_close(eps_from_v(x_t, v, t, s), eps)
    torch.testing.assert_close(ab.sqrt() * x_t - (1 - ab).sqrt() * v, x0)
    assert not torch.allclose(eps_from_v(x_t, v + 0.1, t, s), eps), "a wrong v must give a wrong eps"


def test_eps_from_x0_inverts_eq_4():
    s = make_schedule("linear", 1000)
    g = torch.Generator().manual_seed(3)
    x0, eps = torch.randn(3, 1, 4, 4, generator=g, dtype=torch.float64), torch.randn(3, 1, 4, 4, generator=g,
                                                                                      dtype=torch.float64)
    t = torch.tensor([0, 400, 999])
    torch.testing.assert_close(eps_from_x0(q_sample(x0, t, s, eps), x0, t, s), eps)
