"""Exercise checks for the notebooks: `check.q_sample(my_q_sample)` says right or wrong, with a
hint, by comparing the learner's function with the package's own on random inputs.
`check.solution("q_sample")` prints the package's implementation: the worked solution.
"""

from __future__ import annotations

import inspect

import torch

from .. import autoencoder, embeddings, forward, guidance, samplers, schedules, unet

_REFERENCE = {
    "alpha_bar": schedules.schedule_from_betas,
    "q_sample": forward.q_sample,
    "timestep_embedding": embeddings.timestep_embedding,
    "ddpm_step": samplers.ddpm_step,
    "ddim_step": samplers.ddim_step,
    "guided_eps": guidance.guided_eps,
    "cross_attention": unet.attention_weights,
    "gaussian_kl": autoencoder.Autoencoder.forward,
}


def _report(name: str, ok: bool, hint: str) -> bool:
    print(f"✅ {name}: correct." if ok else f"❌ {name}: not yet. Hint: {hint}")
    return ok


def _close(a, b, tol=1e-5) -> bool:
    a = torch.as_tensor(a)
    return a.shape == b.shape and torch.allclose(a.double(), b.double(), atol=tol, rtol=tol)


def _try(name, fn, *args):
    try:
        return fn(*args), None
    except Exception as err:  # the learner's code may fail in any way: report, don't crash
        return None, f"{type(err).__name__}: {err}"


def alpha_bar(fn) -> bool:
    """fn(betas: (T,) tensor) -> alpha_bar (T,): the cumulative product of 1 - beta."""
    betas = schedules.linear_betas(50)
    out, err = _try("alpha_bar", fn, betas)
    ok = err is None and _close(out, schedules.schedule_from_betas(betas).alpha_bar)
    return _report("alpha_bar", ok, err or "alpha_bar_t = prod_{s<=t} (1 - beta_s): torch.cumprod.")


def q_sample(fn) -> bool:
    """fn(x0, t, alpha_bar, noise) -> x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise (t: (B,) long)."""
    sched = schedules.make_schedule("linear", 100)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    t = torch.tensor([0, 10, 50, 99])
    out, err = _try("q_sample", fn, x0, t, sched.alpha_bar.float(), noise)
    ok = err is None and _close(out, forward.q_sample(x0, t, sched, noise), 1e-4)
    hint = err or ("index alpha_bar with t, reshape to (B, 1, 1, 1) so it broadcasts, and take "
                   "square roots: sqrt(ab) for the signal, sqrt(1 - ab) for the noise.")
    return _report("q_sample", ok, hint)


def timestep_embedding(fn) -> bool:
    """fn(t: (B,) long, dim) -> (B, dim): [cos(t f_i), sin(t f_i)], f_i = 10000^(-i/(dim/2))."""
    t = torch.tensor([0, 1, 7, 500, 999])
    out, err = _try("timestep_embedding", fn, t, 32)
    ok = err is None and _close(out, embeddings.timestep_embedding(t, 32), 1e-4)
    hint = err or "freqs = exp(-log(10000) * arange(half) / half); concatenate cos first, then sin."
    return _report("timestep_embedding", ok, hint)


def ddpm_step(fn) -> bool:
    """fn(x_t, eps, t: int, schedule, noise) -> x_{t-1} (posterior variance, no clipping)."""
    sched = schedules.make_schedule("linear", 100)
    g = torch.Generator().manual_seed(1)
    x, eps, z = (torch.randn(3, 1, 8, 8, generator=g) for _ in range(3))
    ok, err = True, None
    for t in (99, 40, 1, 0):
        out, err = _try("ddpm_step", fn, x, eps, t, sched, z)
        ref, _ = samplers.ddpm_step(x, eps, t, sched, noise=z)
        ok = ok and err is None and _close(out, ref, 1e-4)
    hint = err or ("x0_hat = (x_t - sqrt(1-ab_t) eps)/sqrt(ab_t); mean = coef_x0 x0_hat + coef_xt "
                   "x_t; add sqrt(beta_tilde_t) * noise only when t > 0.")
    return _report("ddpm_step", ok, hint)


def ddim_step(fn) -> bool:
    """fn(x_t, eps, t: int, t_prev: int, schedule) -> x_{t_prev}, deterministic (eta = 0)."""
    sched = schedules.make_schedule("linear", 100)
    g = torch.Generator().manual_seed(2)
    x, eps = torch.randn(3, 1, 8, 8, generator=g), torch.randn(3, 1, 8, 8, generator=g)
    ok, err = True, None
    for t, s in ((99, 89), (50, 40), (9, -1)):
        out, err = _try("ddim_step", fn, x, eps, t, s, sched)
        ref, _ = samplers.ddim_step(x, eps, t, s, sched, eta=0.0)
        ok = ok and err is None and _close(out, ref, 1e-4)
    hint = err or ("x_prev = sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev) eps, with ab_prev = 1 when "
                   "t_prev = -1 (the final step lands on x_0).")
    return _report("ddim_step", ok, hint)


def guided_eps(fn) -> bool:
    """fn(eps_cond, eps_uncond, scale) -> the classifier-free guided noise (diffusers' form)."""
    g = torch.Generator().manual_seed(3)
    c, u = torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
    ok, err = True, None
    for s in (0.0, 1.0, 3.0):
        out, err = _try("guided_eps", fn, c, u, s)
        ok = ok and err is None and _close(out, u + s * (c - u))
    hint = err or "eps = eps_u + s * (eps_c - eps_u): s = 1 gives eps_c, s = 0 gives eps_u."
    return _report("guided_eps", ok, hint)


# Common ways to get cross-attention wrong: (what, the wrong computation, why it is wrong).
CROSS_ATTENTION_MISTAKES = (
    ("no 1/sqrt(d) scaling", lambda q, k, keep: unet.attention_weights(q * q.shape[-1] ** 0.5, k, keep),
     "divide the scores q k^T by sqrt(d): without it their spread grows with d and the softmax saturates "
     "on one token (Vaswani et al. 2017, sec. 3.2.1)."),
    ("softmax over the positions", lambda q, k, keep: (q @ k.transpose(1, 2) / q.shape[-1] ** 0.5).masked_fill(
        ~keep[:, None, :], float("-inf")).softmax(dim=1),
     "take the softmax over the tokens (the last axis): each position shares out its attention among the "
     "words, so its weights sum to 1."),
    ("padding not masked", lambda q, k, keep: (q @ k.transpose(1, 2) / q.shape[-1] ** 0.5).softmax(-1),
     "padding tokens carry no word: set their scores to -inf before the softmax (masked_fill(~keep, -inf)), "
     "so they get weight 0."),
    ("padding masked with 0", lambda q, k, keep: (q @ k.transpose(1, 2) / q.shape[-1] ** 0.5).masked_fill(
        ~keep[:, None, :], 0.0).softmax(-1),
     "a score of 0 still gets weight exp(0) after the softmax; mask with -inf."),
    ("keys as queries", lambda q, k, keep: unet.attention_weights(k, q, torch.ones(q.shape[:2], dtype=torch.bool)),
     "queries come from the image positions and keys from the tokens: scores = q @ k.transpose(1, 2), "
     "shape (B, positions, tokens)."),
)


def cross_attention(fn) -> bool:
    """fn(q (B, N, d), k (B, L, d), keep (B, L) bool) -> attention weights (B, N, L)."""
    g = torch.Generator().manual_seed(5)
    q, k = torch.randn(2, 6, 8, generator=g) * 2, torch.randn(2, 4, 8, generator=g) * 2
    keep = torch.tensor([[True, True, True, False], [True, True, False, False]])
    out, err = _try("cross_attention", fn, q, k, keep)
    ok = err is None and _close(out, unet.attention_weights(q, k, keep), 1e-4)
    hint = err or "weights = softmax(q k^T / sqrt(d)) over the tokens, with padding scores set to -inf."
    if not ok and err is None:
        for what, wrong, why in CROSS_ATTENTION_MISTAKES:
            same = torch.as_tensor(out).shape == wrong(q, k, keep).shape and torch.allclose(
                torch.as_tensor(out).double(), wrong(q, k, keep).double(), atol=1e-4, equal_nan=True)
            if same:  # NaN where the mistake makes NaN (a softmax over -inf only)
                hint = f"{what}: {why}"
                break
    return _report("cross_attention", ok, hint)


def _kl_reference(mean, log_var):
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    return torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(1)


# Common ways to get the KL of a diagonal Gaussian wrong: (what, the wrong computation, why).
GAUSSIAN_KL_MISTAKES = (
    ("no 1/2", lambda m, lv: (m.pow(2) + lv.exp() - 1 - lv).flatten(1).sum(1),
     "KL = 1/2 (mu^2 + sigma^2 - 1 - log sigma^2): the factor 1/2 comes from the Gaussian's exponent."),
    ("std for variance", lambda m, lv: 0.5 * (m.pow(2) + (0.5 * lv).exp() - 1 - lv).flatten(1).sum(1),
     "log_var is log sigma^2, so sigma^2 = exp(log_var), not exp(log_var / 2)."),
    ("mean over the latent", lambda m, lv: 0.5 * (m.pow(2) + lv.exp() - 1 - lv).flatten(1).mean(1),
     "the latent numbers are independent, so their KLs add: sum over (C, H, W), not mean."),
    ("log_var with the wrong sign", lambda m, lv: 0.5 * (m.pow(2) + lv.exp() - 1 + lv).flatten(1).sum(1),
     "the term is - log sigma^2 = - log_var: it is what makes sigma = 1 the minimum."),
)


def gaussian_kl(fn) -> bool:
    """fn(mean, log_var) (B, C, H, W) each -> KL(N(mean, exp(log_var)) || N(0, 1)) per image, (B,)."""
    g = torch.Generator().manual_seed(6)
    m, lv = torch.randn(3, 4, 7, 7, generator=g), torch.randn(3, 4, 7, 7, generator=g)
    out, err = _try("gaussian_kl", fn, m, lv)
    ok = err is None and _close(out, _kl_reference(m, lv), 1e-4)
    hint = err or "KL = 1/2 (mean^2 + exp(log_var) - 1 - log_var), summed over all but the batch axis."
    if not ok and err is None:
        hint = next((f"{what}: {why}" for what, wrong, why in GAUSSIAN_KL_MISTAKES if _close(out, wrong(m, lv), 1e-4)),
                    hint)
    return _report("gaussian_kl", ok, hint)


def solution(name: str) -> None:
    """Print the package's implementation of an exercise: the worked solution."""
    if name not in _REFERENCE:
        raise ValueError(f"no exercise {name!r}; choose one of {', '.join(_REFERENCE)}.")
    print(inspect.getsource(_REFERENCE[name]))
