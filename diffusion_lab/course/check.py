"""Exercise checks for the notebooks: `check.q_sample(my_q_sample)` says right or wrong, with a
hint, by comparing the learner's function with the package's own on random inputs.
`check.solution("q_sample")` prints the package's implementation: the worked solution.
"""

from __future__ import annotations

import inspect

import torch

from .. import embeddings, forward, guidance, samplers, schedules, solvers

_REFERENCE = {
    "alpha_bar": schedules.schedule_from_betas,
    "q_sample": forward.q_sample,
    "timestep_embedding": embeddings.timestep_embedding,
    "ddpm_step": samplers.ddpm_step,
    "ddim_step": samplers.ddim_step,
    "guided_eps": guidance.guided_eps,
    "euler_step": solvers.euler_step,
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


# The Euler step (chapter 09): x~' = x~ + (sigma' - sigma) eps. Common mistakes, as data: what each one
# computes and why it is wrong, so the check can name the mistake it sees.
EULER_STEP_MISTAKES = [
    ("the step has the wrong sign", lambda x, eps, s, s_next: x + (s - s_next) * eps,
     "sampling walks from large sigma to small, so sigma_next - sigma is negative: each step removes noise."),
    ("the slope is the denoised image, not the noise", lambda x, eps, s, s_next: x + (s_next - s) * (x - s * eps),
     "dx~/dsigma = (x~ - D) / sigma = eps: the predicted noise is the slope; D = x~ - sigma eps is the clean guess."),
    ("the slope is not divided by sigma", lambda x, eps, s, s_next: x + (s_next - s) * s * eps,
     "x~ - D is sigma * eps; the slope dx~/dsigma is that divided by sigma, i.e. eps itself."),
    ("the step is sigma_next, not the change in sigma", lambda x, eps, s, s_next: x - s_next * eps,
     "Euler moves by (change in sigma) x (slope): multiply eps by sigma_next - sigma."),
    ("the step jumps to the clean image", lambda x, eps, s, s_next: x - s * eps,
     "x~ - sigma eps is the predicted x_0 (where sigma = 0); one Euler step stops at sigma_next."),
]


def euler_step(fn) -> bool:
    """fn(x, eps, sigma, sigma_next) -> one Euler step of dx~/dsigma = eps, in sigma space."""
    g = torch.Generator().manual_seed(4)
    x, eps = 5 * torch.randn(3, 1, 8, 8, generator=g), torch.randn(3, 1, 8, 8, generator=g)
    cases = ((80.0, 40.0), (2.0, 0.5), (0.3, 0.0))
    outs = []
    for sigma, sigma_next in cases:
        out, err = _try("euler_step", fn, x, eps, sigma, sigma_next)
        if err is not None:
            return _report("euler_step", False, err)
        outs.append(out)
    if all(_close(o, solvers.euler_step(x, eps, *c), 1e-4) for o, c in zip(outs, cases)):
        return _report("euler_step", True, "")
    for name, wrong, why in EULER_STEP_MISTAKES:
        if all(_close(o, wrong(x, eps, *c), 1e-4) for o, c in zip(outs, cases)):
            return _report("euler_step", False, f"{name}: {why}")
    return _report("euler_step", False, "x~' = x~ + (sigma_next - sigma) * eps: the predicted noise is the slope "
                                        "dx~/dsigma, and sigma_next - sigma is the (negative) step.")


def solution(name: str) -> None:
    """Print the package's implementation of an exercise: the worked solution."""
    if name not in _REFERENCE:
        raise ValueError(f"no exercise {name!r}; choose one of {', '.join(_REFERENCE)}.")
    print(inspect.getsource(_REFERENCE[name]))
