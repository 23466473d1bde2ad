"""The course's exercises and the mistakes learners make in them: one table, read by `check`.

Each `Exercise` says where it lives (chapter, function name), what a correct answer is (`reference`,
with the exercise's own signature, built on the package so that each equation stays implemented
once), the inputs it is checked on (`cases`), a hint, and its known mistakes. A `Mistake` is a
small wrong variant of the answer, with what it gets wrong, why that matters, and where the course
explains it. `check.<name>(fn)` runs the learner's function on the cases and names the mistake
whose output it reproduces (see `check.py`).

To add an exercise: write its reference, cases and mistakes below and `_add(Exercise(...))` it;
tests/test_check.py then proves that each mistake is diagnosed as itself, that the reference passes
and that an unrelated wrong answer gets the generic message. Mark the solution in the chapter's
source as chapters/README.md explains.

Exercise x mistake (chapter: exercise: mistakes):

    00 to_model_range      divide_by_255, centre_128, inverted, uint8_overflow
    01 alpha_bar           cumsum, one_minus_cumsum, cumprod_of_betas, shifted, no_product
    02 q_sample            variances, noise_variance, signal_variance, swapped, no_reshape
    03 timestep_embedding  sin_first, interleaved, ddpm_denominator, divide_by_dim, positive_exponent
    04 training_loss       target_x0, one_step, clean_input, summed, no_label
    05 ddpm_step           noise_variance, beta_variance, x0_variances, wraps_at_zero, ignores_clip
    06 ddim_step           no_direction, variances, wraps_at_minus_one, ends_on_alpha_bar_0, direction_of_t
    07 guided_eps          w_form, sign_flipped, roles_swapped, scaled_conditional
    08 frechet_diagonal    variances, mean_not_squared, mean_only, square_root
    09 euler_step          wrong_sign, denoised_as_slope, slope_times_sigma, sigma_next_as_step, jumps_to_x0
    10 gaussian_kl         no_half, std_for_variance, mean_over_latent, log_var_sign
    11 attention_weights   no_scaling, softmax_over_positions, padding_not_masked, padding_masked_with_zero,
                           keys_as_queries
    12 hflip               upside_down, flips_all, coin_inverted, colours_reversed, transposed
    13 flow_matching_loss  velocity_sign, data_at_one, endpoints_swapped, target_from_x_t, time_unscaled
    14 reverse_sde_step    drift_sign, half_score, noise_variance, no_shrink, noise_at_last
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .. import (
    autoencoder,
    data,
    embeddings,
    forward,
    guidance,
    metrics,
    samplers,
    schedules,
    sde,
    solvers,
    training,
    unet,
)


@dataclass(frozen=True)
class Mistake:
    key: str
    what: str  # what the answer does, in a few words
    why: str  # why that is wrong
    where: tuple[str, str]  # (chapter number or "CONVENTIONS", section heading) that explains it
    fn: Callable  # the wrong variant, with the exercise's signature


@dataclass(frozen=True)
class Case:
    """One call of the learner's function: positional args, keyword args, and how to name an element
    of the output in the learner's terms (e.g. "image 2 (t = 50), pixel (0, 3, 1)")."""

    args: tuple
    kwargs: dict = field(default_factory=dict)
    label: str = ""
    locate: Callable[[tuple], str] | None = None


@dataclass(frozen=True)
class Exercise:
    name: str
    chapter: str  # source file stem in notebooks/, e.g. "02_forward_noising"
    function: str  # the function's name in the chapter
    signature: str
    returns: str  # what a correct answer returns, in the learner's terms
    hint: str
    reference: Callable  # a correct answer with the exercise's signature
    cases: Callable[[], list[Case]]
    mistakes: tuple[Mistake, ...]
    # Where the package implements it (shown by check.solution): given only when the reference wraps
    # the package's function; a reference that is the package's function names itself.
    package: str = ""
    # Hints come in steps, so that a learner is not handed the answer at once: `hint` is the idea and its
    # equation (what a check prints), `pieces` the functions and shapes to build it from. The complete
    # code is only in the worked answer (check.solution).
    pieces: str = ""
    shape_help: str = ""  # what a shape error usually means in this exercise
    dtype: torch.dtype | None = None  # required output dtype, when it matters
    rtol: float = 1e-4
    atol: float = 1e-5

    def __post_init__(self):
        if not self.package:
            object.__setattr__(self, "package", f"{self.reference.__module__}.{self.reference.__qualname__}")


EXERCISES: dict[str, Exercise] = {}


def _add(ex: Exercise) -> None:
    EXERCISES[ex.name] = ex


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _at(t: int) -> Callable[[tuple], str]:
    return lambda i: f"t = {t}, element {i}"


# --- 00 · Start here: pixels to model inputs -------------------------------------------------------


def _pixel_cases() -> list[Case]:
    pixels = torch.randint(0, 256, (4, 1, 6, 6), dtype=torch.uint8, generator=_gen(0))
    pixels[0, 0, 0, :3] = torch.tensor([0, 255, 128], dtype=torch.uint8)
    return [Case((pixels,), locate=lambda i: f"image {i[0]}, pixel {tuple(i[1:])} (uint8 value {pixels[i]})")]


_add(Exercise(
    name="to_model_range", chapter="00_start_here", function="to_model_range",
    signature="to_model_range(pixels)", returns="float32 values in [-1, 1], shaped like pixels",
    hint="convert to float first (uint8 cannot hold -1), then divide by 127.5 and subtract 1: "
         "0 -> -1, 255 -> 1.",
    reference=lambda pixels: data.from_uint8(pixels.permute(0, 2, 3, 1)),
    package="diffusion_lab.data.from_uint8", cases=_pixel_cases, dtype=torch.float32,
    mistakes=(
        Mistake("divide_by_255", "pixels / 255: values in [0, 1]",
                "the noise is centred on 0 with spread 1; images in [0, 1] are all on one side of it",
                ("CONVENTIONS", "Images live in [-1, 1]"), lambda p: p.float() / 255),
        Mistake("centre_128", "(pixels - 128) / 128: 255 becomes 0.992, not 1",
                "the range must end exactly at -1 and 1 (to_uint8 inverts x / 127.5 - 1)",
                ("CONVENTIONS", "Images live in [-1, 1]"), lambda p: (p.float() - 128) / 128),
        Mistake("inverted", "1 - pixels / 127.5: white is -1 and black is +1",
                "the course maps black (0) to -1 and white (255) to +1",
                ("CONVENTIONS", "Images live in [-1, 1]"), lambda p: 1 - p.float() / 127.5),
        Mistake("uint8_overflow", "arithmetic on the uint8 tensor before converting: pixels * 2 wraps above 255",
                "uint8 holds 0..255 only, so 200 * 2 becomes 144; call .float() before any arithmetic",
                ("00", "Exercise: from pixels to model inputs"), lambda p: (p * 2).float() / 255 - 1),
    ),
))


# --- 01 · Noise schedules: alpha_bar ----------------------------------------------------------------


def _alpha_bar_cases() -> list[Case]:
    return [Case((schedules.linear_betas(50),), label="linear betas, T = 50", locate=lambda i: f"t = {i[0]}"),
            Case((schedules.cosine_betas(20),), label="cosine betas, T = 20", locate=lambda i: f"t = {i[0]}")]


_add(Exercise(
    name="alpha_bar", chapter="01_noise_schedule", function="alpha_bar",
    signature="alpha_bar(betas)", returns="a tensor shaped like betas: alpha_bar_0 ... alpha_bar_{T-1}",
    hint="alpha_t = 1 - beta_t, and alpha_bar_t is the running product alpha_0 * ... * alpha_t.",
    pieces="torch has a running product along an axis: torch.cumprod(..., dim=0).",
    reference=lambda betas: schedules.schedule_from_betas(betas).alpha_bar,
    package="diffusion_lab.schedules.schedule_from_betas", cases=_alpha_bar_cases,
    shape_help="alpha_bar has one value per timestep, like betas: (T,).",
    mistakes=(
        Mistake("cumsum", "a running sum of 1 - beta",
                "alpha_bar multiplies the shrink factors of every step; a sum grows past 1",
                ("01", "One step of noise"), lambda b: torch.cumsum(1 - b, 0)),
        Mistake("one_minus_cumsum", "1 - (running sum of beta)",
                "close to the product while the betas are tiny (1 - a - b ~ (1 - a)(1 - b)), but it drifts "
                "below it and turns negative for long schedules",
                ("01", "One step of noise"), lambda b: 1 - torch.cumsum(b, 0)),
        Mistake("cumprod_of_betas", "a running product of beta instead of 1 - beta",
                "the product of the noise variances is not a signal scale (Yu 2025's code computes it too, "
                "as betas_cumprod, and never uses it)",
                ("01", "One step of noise"), lambda b: torch.cumprod(b, 0)),
        Mistake("shifted", "alpha_bar_{t-1}: the product stops one step early",
                "alpha_bar_t includes step t itself: alpha_bar_0 = 1 - beta_0, not 1",
                ("CONVENTIONS", "Timesteps are 0-based"),
                lambda b: torch.cat([torch.ones(1, dtype=b.dtype), torch.cumprod(1 - b, 0)[:-1]])),
        Mistake("no_product", "1 - beta_t: one step's alpha_t, not the product over steps",
                "alpha_t is what survives one step; alpha_bar_t is what survives all steps 0..t",
                ("01", "One step of noise"), lambda b: 1 - b),
    ),
))


# --- 02 · Forward noising: q_sample -----------------------------------------------------------------


def _q_sample_cases() -> list[Case]:
    alpha_bar = schedules.make_schedule("linear", 100).alpha_bar  # float64, as a schedule holds it
    g = _gen(0)
    # Width 4 = batch 4 on purpose: a forgotten reshape then broadcasts silently and is recognised.
    x0, noise = torch.randn(4, 1, 5, 4, generator=g), torch.randn(4, 1, 5, 4, generator=g)
    t = torch.tensor([0, 10, 50, 99])
    return [Case((x0, t, alpha_bar, noise), label="t = [0, 10, 50, 99]",
                 locate=lambda i: f"image {i[0]} (t = {t[i[0]]}), pixel {tuple(i[1:])}")]


def _ab(alpha_bar, t, like):
    return alpha_bar[t].reshape(-1, 1, 1, 1).to(like.dtype)


def _q_sample_reference(x0, t, alpha_bar, noise):
    alpha_prev = torch.cat([torch.ones(1, dtype=alpha_bar.dtype), alpha_bar[:-1]])
    schedule = schedules.schedule_from_betas(1 - alpha_bar / alpha_prev)  # the schedule with this alpha_bar
    return forward.q_sample(x0, t, schedule, noise)


_add(Exercise(
    name="q_sample", chapter="02_forward_noising", function="q_sample",
    signature="q_sample(x0, t, alpha_bar, noise)", returns="x_t, shaped like x0 and in its dtype",
    hint="index alpha_bar with t, reshape it to (B, 1, 1, 1) so each image gets its own value, and take "
         "square roots: sqrt(alpha_bar_t) scales x0, sqrt(1 - alpha_bar_t) scales the noise (eq. 4).",
    reference=_q_sample_reference, package="diffusion_lab.forward.q_sample", cases=_q_sample_cases,
    shape_help="t must index the batch: alpha_bar[t] has shape (B,); reshape it to (B, 1, 1, 1) so that "
               "it broadcasts over each image's channels and pixels.",
    dtype=torch.float32,
    mistakes=(
        Mistake("variances", "alpha_bar * x0 + (1 - alpha_bar) * noise: variances where standard deviations belong",
                "eq. 4 has the variance 1 - alpha_bar; the noise is multiplied by its square root, and so is x0",
                ("02", "Two ways to get x_t"),
                lambda x0, t, ab, n: _ab(ab, t, x0) * x0 + (1 - _ab(ab, t, x0)) * n),
        Mistake("noise_variance", "(1 - alpha_bar) * noise: a variance where a standard deviation belongs",
                "noise times (1 - alpha_bar) has variance (1 - alpha_bar)^2, far too little noise at small t "
                "(the bug a well-known course once shipped); multiply by sqrt(1 - alpha_bar)",
                ("02", "Two ways to get x_t"),
                lambda x0, t, ab, n: _ab(ab, t, x0).sqrt() * x0 + (1 - _ab(ab, t, x0)) * n),
        Mistake("signal_variance", "alpha_bar * x0: the signal scaled by a variance",
                "the signal's scale is sqrt(alpha_bar_t); alpha_bar_t * x0 fades the image too fast",
                ("02", "Two ways to get x_t"),
                lambda x0, t, ab, n: _ab(ab, t, x0) * x0 + (1 - _ab(ab, t, x0)).sqrt() * n),
        Mistake("swapped", "sqrt(1 - alpha_bar) * x0 + sqrt(alpha_bar) * noise: signal and noise swapped",
                "alpha_bar_t is what is left of the image: near 1 at t = 0 (almost clean), near 0 at T-1",
                ("01", "One step of noise"),
                lambda x0, t, ab, n: (1 - _ab(ab, t, x0)).sqrt() * x0 + _ab(ab, t, x0).sqrt() * n),
        Mistake("no_reshape", "alpha_bar[t] used with shape (B,): it broadcast along the image width",
                "a (B,) tensor lines up with the *last* axis of (B, C, H, W), so pixel column j got image j's "
                "alpha_bar; reshape it to (B, 1, 1, 1)",
                ("02", "Exercise: the jump"),
                lambda x0, t, ab, n: ab[t].to(x0.dtype).sqrt() * x0 + (1 - ab[t].to(x0.dtype)).sqrt() * n),
    ),
))


# --- 03 · The U-Net: timestep embedding -------------------------------------------------------------


def _embedding_cases() -> list[Case]:
    t = torch.tensor([0, 1, 7, 500, 999])
    return [Case((t, 32), label="dim = 32", locate=lambda i: f"t = {t[i[0]]}, dimension {i[1]}")]


def _angles(t, dim, base=10000.0, denominator=None, sign=-1.0):
    half = dim // 2
    freqs = base ** (sign * torch.arange(half, dtype=torch.float32) / (denominator or half))
    return t.float()[:, None] * freqs[None, :]


_add(Exercise(
    name="timestep_embedding", chapter="03_unet", function="timestep_embedding",
    signature="timestep_embedding(t, dim)", returns="a float tensor of shape (B, dim)",
    hint="half the entries are cosines and half sines of t times dim/2 frequencies, geometric "
         "from 1 down to 1/10000: freq_i = 10000^(-i / (dim/2)); cosines first.",
    pieces="half = dim // 2; torch.arange(half) for i; t[:, None] * freqs[None, :] gives the (B,"
           " dim/2) angles; torch.cat([..., ...], dim=1) puts cosines and sines side by side.",
    reference=lambda t, dim: embeddings.timestep_embedding(t, dim),
    package="diffusion_lab.embeddings.timestep_embedding", cases=_embedding_cases,
    shape_help="one row per timestep: t[:, None] * freqs[None, :] is (B, dim/2); cos and sin side by side "
               "make (B, dim).",
    mistakes=(
        Mistake("sin_first", "sines first, then cosines",
                "a valid layout (DDPM's own code and diffusers' default use it) but not this course's: we "
                "concatenate cosines then sines, as guided-diffusion does, and the U-Net's weights expect that",
                ("03", "The timestep embedding"),
                lambda t, d: torch.cat([_angles(t, d).sin(), _angles(t, d).cos()], 1)),
        Mistake("interleaved", "sin and cos interleaved (sin, cos, sin, cos, ...)",
                "that is the Transformer paper's layout for positions; the course concatenates all cosines, "
                "then all sines",
                ("03", "The timestep embedding"),
                lambda t, d: torch.stack([_angles(t, d).sin(), _angles(t, d).cos()], -1).flatten(1)),
        Mistake("ddpm_denominator", "frequencies 10000^(-i/(half - 1))",
                "dividing by half - 1 is DDPM's code and diffusers' downscale_freq_shift=1; the course divides "
                "by half, so the slowest frequency is 10000^(-(half-1)/half)",
                ("03", "The timestep embedding"),
                lambda t, d: torch.cat([_angles(t, d, denominator=d // 2 - 1).cos(),
                                        _angles(t, d, denominator=d // 2 - 1).sin()], 1)),
        Mistake("divide_by_dim", "frequencies 10000^(-i/dim): the exponent divided by dim instead of dim/2",
                "the frequencies then only fall to 10000^(-1/2) = 1/100, so the slow end that tells early "
                "from late timesteps is missing",
                ("03", "The timestep embedding"),
                lambda t, d: torch.cat([_angles(t, d, denominator=d).cos(), _angles(t, d, denominator=d).sin()], 1)),
        Mistake("positive_exponent", "frequencies 10000^(+i/half): rising instead of falling",
                "the frequencies must fall from 1 to 1/10000; rising ones make every column but the first "
                "jump around randomly from one timestep to the next",
                ("03", "The timestep embedding"),
                lambda t, d: torch.cat([_angles(t, d, sign=1.0).cos(), _angles(t, d, sign=1.0).sin()], 1)),
    ),
))


# --- 04 · DDPM training: the loss of one batch ------------------------------------------------------


def _loss_cases() -> list[Case]:
    from ..unet import UNet

    torch.manual_seed(1)
    net = UNet(image_size=8, base_channels=8, channel_mults=(1, 2), attention=False, num_classes=10).eval()
    # The U-Net's last layer starts at zero (it predicts "no noise" for any input); random weights make
    # every mistake in x_t, the target or the label change the loss.
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)
    schedule = schedules.make_schedule("linear", 1000)
    g = _gen(2)
    x0 = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1  # small images: the check is about the formula
    y = torch.tensor([3, 1, 4, 1])
    cases = []
    for t in (torch.zeros(4, dtype=torch.long), torch.full((4,), 999), torch.tensor([3, 250, 600, 998])):
        noise = torch.randn(4, 1, 8, 8, generator=g)
        cases.append(Case((net, x0, t, noise, schedule, y), label=f"t = {t.tolist()}"))
    return cases


def _x_t(x0, t, schedule, noise, values=None):
    a = (schedule.alpha_bar if values is None else values).to(x0)[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


_add(Exercise(
    name="training_loss", chapter="04_ddpm_training", function="training_loss",
    signature="training_loss(model, x0, t, noise, schedule, y=None)",
    returns="one number: a 0-dimensional tensor (the mean over the batch and the pixels)",
    hint="noise x0 to x_t with the forward process (eq. 4), ask the model to predict the noise "
         "from x_t, and score the prediction against the true noise with the mean squared error.",
    pieces="alpha_bar_t = schedule.alpha_bar[t], reshaped to (B, 1, 1, 1); the model is called "
           "as model(x_t, t, y); F.mse_loss(prediction, target).",
    reference=lambda model, x0, t, noise, schedule, y=None: training.diffusion_loss(model, x0, t, noise, schedule, y),
    package="diffusion_lab.training.diffusion_loss",
    cases=_loss_cases,
    shape_help="return one number: F.mse_loss averages over the batch and the pixels. Inside, alpha_bar[t] "
               "needs the shape (B, 1, 1, 1) to scale each image.",
    mistakes=(
        Mistake("target_x0", "the loss compares the prediction with x0",
                "the network predicts the noise (eq. 14): the target is `noise`",
                ("04", "The objective"),
                lambda m, x0, t, n, s, y=None: F.mse_loss(m(_x_t(x0, t, s, n), t, y), x0)),
        Mistake("one_step", "x_t built from alpha_t = 1 - beta_t: one step of noise instead of the jump",
                "eq. 4 jumps from x0 to step t with alpha_bar_t, the product over all steps 0..t",
                ("02", "Two ways to get x_t"),
                lambda m, x0, t, n, s, y=None: F.mse_loss(m(_x_t(x0, t, s, n, s.alphas), t, y), n)),
        Mistake("clean_input", "the model is shown x0 instead of x_t",
                "the network must see the noisy image x_t: that is all it has at sampling time",
                ("04", "One batch, as the network sees it"),
                lambda m, x0, t, n, s, y=None: F.mse_loss(m(x0, t, y), n)),
        Mistake("summed", "the squared errors are summed, not averaged",
                "a sum scales the loss (and the gradient) with the batch and image size; eq. 14's average "
                "does not (F.mse_loss takes the mean)",
                ("04", "The objective"),
                lambda m, x0, t, n, s, y=None: ((m(_x_t(x0, t, s, n), t, y) - n) ** 2).sum()),
        Mistake("no_label", "the model is called without y",
                "model(x_t, t) means the null label, so the network never learns what each class looks like",
                ("07", "One network, two models: label dropout"),
                lambda m, x0, t, n, s, y=None: F.mse_loss(m(_x_t(x0, t, s, n), t), n)),
    ),
))


# --- 05 · DDPM sampling: one reverse step -----------------------------------------------------------


def _step_inputs(seed: int):
    g = _gen(seed)
    return schedules.make_schedule("linear", 100), *(torch.randn(3, 1, 6, 6, generator=g) for _ in range(3))


def _ddpm_cases() -> list[Case]:
    s, x, eps, z = _step_inputs(1)
    cases = [Case((x, eps, t, s, z), label=f"t = {t}", locate=_at(t)) for t in (99, 40, 1, 0)]
    return cases + [Case((x, eps, 99, s, z), {"clip": True}, label="t = 99, clip=True",
                         locate=lambda i: f"t = 99 with clip=True, element {i}")]


def _ddpm_variant(x_t, eps, t, schedule, noise, clip=False, *, sd=lambda v: v**0.5, noise_var=None,
                  ab_prev=None, x0_power=0.5, use_clip=True):
    """The DDPM step written out, with one knob per known mistake."""
    ab_t, beta_t, alpha_t = float(schedule.alpha_bar[t]), float(schedule.betas[t]), float(schedule.alphas[t])
    ab_prev = float(schedule.alpha_bar_prev[t]) if ab_prev is None else ab_prev
    x0_hat = (x_t - (1 - ab_t) ** x0_power * eps) / ab_t**x0_power
    if clip and use_clip:
        x0_hat = x0_hat.clamp(-1, 1)
    mean = ab_prev**0.5 * beta_t / (1 - ab_t) * x0_hat + alpha_t**0.5 * (1 - ab_prev) / (1 - ab_t) * x_t
    if t == 0:
        return mean
    var = (1 - ab_prev) / (1 - ab_t) * beta_t if noise_var is None else noise_var(t)
    return mean + sd(var) * noise


_add(Exercise(
    name="ddpm_step", chapter="05_ddpm_sampling", function="my_ddpm_step",
    signature="my_ddpm_step(x_t, eps, t, schedule, noise, clip=False)", returns="x_{t-1}, shaped like x_t",
    hint="x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t), clamped to [-1, 1] if clip; mean = coef_x0 * x0_hat + "
         "coef_xt * x_t (eq. 7, with ab_prev = schedule.alpha_bar_prev[t]); at t = 0 return the mean, "
         "otherwise add sqrt(beta_tilde_t) * noise.",
    reference=lambda x_t, eps, t, schedule, noise, clip=False: samplers.ddpm_step(
        x_t, eps, t, schedule, variance="posterior", clip_x0=clip, noise=noise)[0],
    package="diffusion_lab.samplers.ddpm_step", cases=_ddpm_cases,
    shape_help="return only x_{t-1}, a tensor shaped like x_t (the package's ddpm_step also returns x0_hat; "
               "the exercise does not).",
    mistakes=(
        Mistake("noise_variance", "beta_tilde_t * noise: a variance where a standard deviation belongs",
                "the noise added has standard deviation sqrt(beta_tilde_t); beta_tilde_t * noise adds far "
                "too little, and the samples come out smooth and blurry",
                ("CONVENTIONS", "Beta is a variance, not a standard deviation"),
                lambda *a, **k: _ddpm_variant(*a, **k, sd=lambda v: v)),
        Mistake("beta_variance", "sqrt(beta_t) * noise instead of sqrt(beta_tilde_t) * noise",
                "beta_t is the other variance Ho et al. allow, and it works too; this exercise asks for the "
                "posterior variance beta_tilde_t (eq. 7), which is what the check compares with",
                ("05", "Two choices: the variance, and clipping"),
                lambda *a, **k: _ddpm_variant(*a, **k, noise_var=lambda t: float(a[3].betas[t]))),
        Mistake("x0_variances", "x0_hat = (x_t - (1 - ab_t) eps) / ab_t: variances in eq. 15",
                "eq. 15 inverts eq. 4, whose scales are sqrt(ab_t) and sqrt(1 - ab_t)",
                ("05", "Algorithm 2"), lambda *a, **k: _ddpm_variant(*a, **k, x0_power=1.0)),
        Mistake("wraps_at_zero", "alpha_bar[t - 1] at t = 0: Python's index -1 is the *last* value",
                "at t = 0 the previous alpha_bar is 1 (the clean image), but alpha_bar[-1] is alpha_bar_{T-1}, "
                "almost 0; use schedule.alpha_bar_prev[t]",
                ("CONVENTIONS", "Timesteps are 0-based"),
                lambda *a, **k: _ddpm_variant(*a, **k, ab_prev=float(a[3].alpha_bar[a[2] - 1]))),
        Mistake("ignores_clip", "clip=True changes nothing",
                "with clip=True, clamp x0_hat to [-1, 1] before the posterior mean",
                ("05", "Two choices: the variance, and clipping"),
                lambda *a, **k: _ddpm_variant(*a, **k, use_clip=False)),
    ),
))


# --- 06 · DDIM: the deterministic step --------------------------------------------------------------


def _ddim_cases() -> list[Case]:
    s, x, eps, _ = _step_inputs(2)
    return [Case((x, eps, t, t_prev, s), label=f"t = {t} -> {t_prev}", locate=_at(t))
            for t, t_prev in ((99, 89), (50, 40), (9, -1))]


def _ddim_variant(x_t, eps, t, t_prev, schedule, *, ab_prev=None, power=0.5, direction=None):
    ab_t = float(schedule.alpha_bar[t])
    if ab_prev is None:
        ab_prev = float(schedule.alpha_bar[t_prev]) if t_prev >= 0 else 1.0
    x0_hat = (x_t - (1 - ab_t) ** 0.5 * eps) / ab_t**0.5
    scale = (1 - ab_prev) ** power if direction is None else direction(ab_t)
    return ab_prev**power * x0_hat + scale * eps


_add(Exercise(
    name="ddim_step", chapter="06_ddim", function="my_ddim_step",
    signature="my_ddim_step(x_t, eps, t, t_prev, schedule)", returns="x_{t_prev}, shaped like x_t",
    hint="estimate x0 from x_t and eps, then move it to t_prev along the same predicted noise "
         "(eq. 12 with sigma = 0): sqrt(ab_prev) x0_hat + sqrt(1 - ab_prev) eps.",
    pieces="x0_hat = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t); ab_prev = "
           "schedule.alpha_bar[t_prev], or 1.0 when t_prev = -1 (one step past the last "
           "timestep: clean).",
    reference=lambda x_t, eps, t, t_prev, schedule: samplers.ddim_step(x_t, eps, t, t_prev, schedule, eta=0.0)[0],
    package="diffusion_lab.samplers.ddim_step", cases=_ddim_cases,
    shape_help="return only x_{t_prev}, a tensor shaped like x_t.",
    mistakes=(
        Mistake("no_direction", "sqrt(ab_prev) * x0_hat alone: the sqrt(1 - ab_s - sigma^2) eps term is missing",
                "eq. 12 re-noises the guess of x_0 to the level of step s with the predicted noise (\"the "
                "direction pointing to x_t\"); without it every step lands on a clean image",
                ("06", "From DDPM to DDIM"), lambda *a: _ddim_variant(*a, direction=lambda ab_t: 0.0)),
        Mistake("variances", "ab_prev * x0_hat + (1 - ab_prev) * eps: variances where standard deviations belong",
                "like eq. 4, eq. 12 scales by sqrt(ab_prev) and sqrt(1 - ab_prev)",
                ("06", "From DDPM to DDIM"), lambda *a: _ddim_variant(*a, power=1.0)),
        Mistake("wraps_at_minus_one", "alpha_bar[t_prev] with t_prev = -1: Python's index -1 is the last value",
                "t_prev = -1 means \"the clean image\", where alpha_bar is 1; alpha_bar[-1] is alpha_bar_{T-1}, "
                "almost 0, so the last step lands back on noise",
                ("06", "Exercise: the deterministic DDIM step"),
                lambda *a: _ddim_variant(*a, ab_prev=float(a[4].alpha_bar[a[3]]))),
        Mistake("ends_on_alpha_bar_0", "the last step lands on alpha_bar_0 instead of 1",
                "the final jump must reach the clean image (alpha_bar = 1); stopping at alpha_bar_0 leaves a "
                "little noise in (Yu 2025's code does this: see chapter 06's comparison box)",
                ("06", "Paper's code vs ours: the DDIM grid and clipping"),
                lambda *a: _ddim_variant(*a, ab_prev=float(a[4].alpha_bar[max(a[3], 0)]))),
        Mistake("direction_of_t", "sqrt(1 - ab_t) * eps: the noise level of step t instead of t_prev",
                "the result must sit at the noise level of t_prev, so eps is scaled by sqrt(1 - ab_prev)",
                ("06", "From DDPM to DDIM"), lambda *a: _ddim_variant(*a, direction=lambda ab_t: (1 - ab_t) ** 0.5)),
    ),
))


# --- 07 · Classifier-free guidance: the guided noise ------------------------------------------------


def _guidance_cases() -> list[Case]:
    g = _gen(3)
    c, u = torch.randn(2, 1, 4, 4, generator=g), torch.randn(2, 1, 4, 4, generator=g)
    return [Case((c, u, s), label=f"s = {s:g}", locate=lambda i, s=s: f"s = {s:g}, element {i}")
            for s in (0.0, 1.0, 3.0)]


_add(Exercise(
    name="guided_eps", chapter="07_classifier_free_guidance", function="my_guided_eps",
    signature="my_guided_eps(eps_c, eps_u, s)", returns="a tensor shaped like eps_c",
    hint="start from the unconditional prediction and move s times the difference: "
         "eps_u + s * (eps_c - eps_u). Then s = 1 gives eps_c and s = 0 gives eps_u.",
    reference=guidance.apply_guidance, cases=_guidance_cases,
    mistakes=(
        Mistake("w_form", "(1 + s) * eps_c - s * eps_u: Ho & Salimans' w form, with s in place of w",
                "that form's w is s - 1: with s in its place, s = 1 already doubles the guidance",
                ("07", "The guidance formula"), lambda c, u, s: (1 + s) * c - s * u),
        Mistake("sign_flipped", "eps_u - s * (eps_c - eps_u): the sign is flipped",
                "guidance must push *towards* the class, along eps_c - eps_u",
                ("07", "The guidance formula"), lambda c, u, s: u - s * (c - u)),
        Mistake("roles_swapped", "eps_c + s * (eps_u - eps_c): conditional and unconditional swapped",
                "with the roles swapped, s = 1 gives the unconditional prediction and larger s pushes away from "
                "the class",
                ("07", "The guidance formula"), lambda c, u, s: c + s * (u - c)),
        Mistake("scaled_conditional", "s * eps_c: the conditional prediction scaled",
                "guidance extrapolates from eps_u towards eps_c; scaling eps_c alone changes the noise's size, "
                "not its direction",
                ("07", "The guidance formula"), lambda c, u, s: s * c),
    ),
))


# --- 08 · Evaluation: Fréchet distance of two diagonal Gaussians ------------------------------------


def _frechet_cases() -> list[Case]:
    d = torch.float64
    g = _gen(4)
    return [
        Case((torch.tensor([0.0, 1.0, 2.0], dtype=d), torch.tensor([1.0, 4.0, 9.0], dtype=d),
              torch.tensor([1.0, 1.0, 0.0], dtype=d), torch.tensor([4.0, 1.0, 9.0], dtype=d)), label="3 dimensions"),
        Case((torch.randn(8, generator=g, dtype=d), torch.rand(8, generator=g, dtype=d) + 0.5,
              torch.randn(8, generator=g, dtype=d), torch.rand(8, generator=g, dtype=d) + 0.5), label="8 dimensions"),
    ]


def _fd(mu1, v1, mu2, v2):
    return ((mu1 - mu2) ** 2).sum() + ((v1.sqrt() - v2.sqrt()) ** 2).sum()


_add(Exercise(
    name="frechet_diagonal", chapter="08_evaluation", function="my_frechet_diagonal",
    signature="my_frechet_diagonal(mu1, var1, mu2, var2)", returns="one number",
    hint="||mu1 - mu2||^2 + sum_i (sqrt(var1_i) - sqrt(var2_i))^2: square the mean difference, and subtract "
         "the square roots of the variances (the standard deviations), not the variances.",
    reference=lambda mu1, v1, mu2, v2: torch.tensor(metrics.gaussian_frechet(mu1, torch.diag(v1), mu2, torch.diag(v2))),
    package="diffusion_lab.metrics.gaussian_frechet", cases=_frechet_cases,
    shape_help="return one number: sum over the dimensions.",
    mistakes=(
        Mistake("variances", "sum (var1 - var2)^2: variances where standard deviations belong",
                "the covariance term Tr(S1 + S2 - 2 (S1 S2)^(1/2)) is, for diagonal S, sum (sqrt(v1) - sqrt(v2))^2",
                ("08", "The yardstick"), lambda m1, v1, m2, v2: ((m1 - m2) ** 2).sum() + ((v1 - v2) ** 2).sum()),
        Mistake("mean_not_squared", "||mu1 - mu2|| without the square",
                "the formula has the *squared* distance of the means",
                ("08", "The yardstick"),
                lambda m1, v1, m2, v2: (m1 - m2).norm() + ((v1.sqrt() - v2.sqrt()) ** 2).sum()),
        Mistake("mean_only", "only the means are compared",
                "two Gaussians with equal means but different spreads differ; the trace term measures that",
                ("08", "The yardstick"), lambda m1, v1, m2, v2: ((m1 - m2) ** 2).sum()),
        Mistake("square_root", "the square root of the whole: a distance instead of FD's squared distance",
                "FD (and FID) is the squared Fréchet distance; it is reported without the square root",
                ("08", "The yardstick"), lambda m1, v1, m2, v2: _fd(m1, v1, m2, v2).sqrt()),
    ),
))


# --- 09 · Faster samplers: the Euler step -----------------------------------------------------------


def _euler_cases() -> list[Case]:
    g = _gen(9)
    x, eps = 5 * torch.randn(3, 1, 6, 6, generator=g), torch.randn(3, 1, 6, 6, generator=g)
    return [Case((x, eps, sigma, sigma_next), label=f"sigma = {sigma:g} -> {sigma_next:g}",
                 locate=lambda i, s=sigma, n=sigma_next: f"sigma = {s:g} -> {n:g}, element {i}")
            for sigma, sigma_next in ((80.0, 40.0), (2.0, 0.5), (0.3, 0.0))]


_add(Exercise(
    name="euler_step", chapter="09_faster_samplers", function="my_euler_step",
    signature="my_euler_step(x, eps, sigma, sigma_next)", returns="x~ at sigma_next, shaped like x",
    hint="the predicted noise is the slope dx~/dsigma; an Euler step follows that slope for the "
         "change in sigma, which is negative: sampling walks towards sigma = 0.",
    pieces="the step in sigma is sigma_next - sigma; the new x~ is the old one plus step times "
           "slope.",
    reference=solvers.euler_step, cases=_euler_cases,
    shape_help="return only x~ at sigma_next, a tensor shaped like x.",
    mistakes=(
        Mistake("wrong_sign", "x + (sigma - sigma_next) * eps: the step has the wrong sign",
                "sampling walks from large sigma to small, so sigma_next - sigma is negative and each step "
                "removes noise; the flipped sign adds it",
                ("09", "DDIM in sigma space"), lambda x, e, s, n: x + (s - n) * e),
        Mistake("denoised_as_slope", "x + (sigma_next - sigma) * (x - sigma * eps): the denoised image as the slope",
                "x~ - sigma eps is D, the predicted clean image; the slope dx~/dsigma = (x~ - D) / sigma is the "
                "predicted noise eps itself",
                ("09", "Where Euler goes wrong, and two fixes"), lambda x, e, s, n: x + (n - s) * (x - s * e)),
        Mistake("slope_times_sigma", "x + (sigma_next - sigma) * sigma * eps: the slope multiplied by sigma",
                "x~ - D is sigma eps; the slope is that divided by sigma, i.e. eps",
                ("09", "DDIM in sigma space"), lambda x, e, s, n: x + (n - s) * s * e),
        Mistake("sigma_next_as_step", "x + sigma_next * eps: sigma_next where the change in sigma belongs",
                "Euler moves by (change in sigma) x (slope); (x - sigma eps) + sigma_next eps, DDIM's form, "
                "is the same step written the other way",
                ("09", "DDIM in sigma space"), lambda x, e, s, n: x + n * e),
        Mistake("jumps_to_x0", "x - sigma * eps: the step lands on the predicted clean image",
                "x~ - sigma eps is the prediction of x_0 (sigma = 0); one Euler step stops at sigma_next",
                ("09", "DDIM in sigma space"), lambda x, e, s, n: x - s * e),
    ),
))


# --- 10 · Latent diffusion: the KL of a diagonal Gaussian -------------------------------------------


def _kl_cases() -> list[Case]:
    g = _gen(6)
    return [Case((torch.randn(3, 4, 7, 7, generator=g), torch.randn(3, 4, 7, 7, generator=g)),
                 label="3 images of 4x7x7 latents", locate=lambda i: f"image {i[0]}"),
            Case((torch.zeros(2, 2, 3, 3), torch.zeros(2, 2, 3, 3)), label="mean 0, log_var 0 (N(0, 1) itself)",
                 locate=lambda i: f"image {i[0]} of N(0, 1) (its KL is 0)")]


def _kl(m, lv, *, half=0.5, var=None, reduce="sum", sign=-1.0):
    var = lv.exp() if var is None else var(lv)
    per = half * (m.pow(2) + var - 1 + sign * lv).flatten(1)
    return per.sum(1) if reduce == "sum" else per.mean(1)


_add(Exercise(
    name="gaussian_kl", chapter="10_latent_diffusion", function="my_kl",
    signature="my_kl(mean, log_var)", returns="one number per image: a tensor of shape (B,)",
    hint="per latent number the KL to N(0, 1) is 1/2 (mean^2 + variance - 1 - log variance); one"
         " number per image is their sum.",
    pieces="the variance is exp(log_var); sum every axis but the first: .flatten(1).sum(1).",
    reference=autoencoder.gaussian_kl, cases=_kl_cases,
    shape_help="the KL is one number per image: sum over every axis but the first (.flatten(1).sum(1)).",
    mistakes=(
        Mistake("no_half", "mean^2 + v - 1 - log v without the 1/2",
                "the 1/2 comes from the Gaussian's exponent, -(z - mu)^2 / (2 v); without it the KL is doubled",
                ("10", "The KL term, and the latent scale"), lambda m, lv: _kl(m, lv, half=1.0)),
        Mistake("std_for_variance", "exp(log_var / 2), the standard deviation, where the variance belongs",
                "log_var is log v, so the variance v = exp(log_var)",
                ("10", "The KL term, and the latent scale"), lambda m, lv: _kl(m, lv, var=lambda v: (0.5 * v).exp())),
        Mistake("mean_over_latent", "the mean over the latent numbers instead of their sum",
                "the latent numbers are independent Gaussians, so their KLs add: sum over (C, H, W)",
                ("10", "The KL term, and the latent scale"), lambda m, lv: _kl(m, lv, reduce="mean")),
        Mistake("log_var_sign", "+ log_var instead of - log_var",
                "the term is - log v: it is what makes v = 1 the minimum (with + it has none)",
                ("10", "The KL term, and the latent scale"), lambda m, lv: _kl(m, lv, sign=1.0)),
    ),
))


# --- 11 · Text prompts: the cross-attention weights -------------------------------------------------


def _attention_cases() -> list[Case]:
    g = _gen(5)
    q, k = torch.randn(2, 6, 8, generator=g) * 2, torch.randn(2, 4, 8, generator=g) * 2
    keep = torch.tensor([[True, True, True, False], [True, True, False, False]])
    return [Case((q, k, keep), label="2 prompts, 6 positions, 4 tokens (the last 1 and 2 are padding)",
                 locate=lambda i: f"prompt {i[0]}, position {i[1]}, token {i[2]}")]


def _scores(q, k):
    return q @ k.transpose(1, 2) / q.shape[-1] ** 0.5


def _pad(keep):
    return ~keep[:, None, :]


_add(Exercise(
    name="attention_weights", chapter="11_text_prompts", function="my_attention_weights",
    signature="my_attention_weights(q, k, keep)",
    returns="weights of shape (B, N, L): for each position, one weight per token, summing to 1",
    hint="scores are query-key dot products scaled by 1/sqrt(d); padding tokens must get zero "
         "weight, so their scores go to -inf before the softmax over the tokens.",
    pieces="q @ k.transpose(1, 2) has shape (B, N, L); keep[:, None, :] lines the mask up with "
           "it; scores.masked_fill(mask, float('-inf')); torch.softmax(..., dim=-1).",
    reference=unet.attention_weights, cases=_attention_cases,
    shape_help="one weight per (position, token): q @ k.transpose(1, 2) has shape (B, N, L).",
    mistakes=(
        Mistake("no_scaling", "softmax(q k^T) without dividing by sqrt(d)",
                "the scores' spread grows with d, and the softmax then piles all the weight on one token "
                "(Vaswani et al. 2017, sec. 3.2.1)",
                ("11", "Cross-attention"), lambda q, k, keep: _scores(q, k).mul(q.shape[-1] ** 0.5).masked_fill(
                    _pad(keep), float("-inf")).softmax(-1)),
        Mistake("softmax_over_positions", "the softmax over the positions (dim=1) instead of the tokens",
                "each position shares its attention out among the words, so its weights (the last axis) "
                "must sum to 1",
                ("11", "Cross-attention"),
                lambda q, k, keep: _scores(q, k).masked_fill(_pad(keep), float("-inf")).softmax(1)),
        Mistake("padding_not_masked", "padding tokens keep their scores",
                "padding carries no word; its scores must be -inf before the softmax so that it gets weight 0",
                ("11", "Cross-attention"), lambda q, k, keep: _scores(q, k).softmax(-1)),
        Mistake("padding_masked_with_zero", "padding scores set to 0 instead of -inf",
                "a score of 0 still gets weight exp(0) / sum after the softmax; only -inf gives 0",
                ("11", "Cross-attention"),
                lambda q, k, keep: _scores(q, k).masked_fill(_pad(keep), 0.0).softmax(-1)),
        Mistake("keys_as_queries", "k @ q^T: the tokens ask and the positions answer",
                "queries come from the image positions and keys from the tokens: q @ k.transpose(1, 2), "
                "shape (B, positions, tokens)",
                ("11", "Cross-attention"),
                lambda q, k, keep: (k @ q.transpose(1, 2) / q.shape[-1] ** 0.5).softmax(-1)),
    ),
))


# --- 12 · Scale up: the recipe's horizontal flips -------------------------------------------------


def _flip_cases() -> list[Case]:
    x0 = torch.randn(4, 3, 6, 6, generator=_gen(12))
    cases = []
    for coins in ([True, False, False, True], [False, False, False, False]):
        flip = torch.tensor(coins)
        cases.append(Case((x0, flip), label=f"flip = {coins}",
                          locate=lambda i, c=coins: f"image {i[0]} (flip {c[i[0]]}), channel {i[1]}, "
                                                    f"row {i[2]}, column {i[3]}"))
    return cases


def _where_flip(flip, mirrored, x0):
    return torch.where(flip[:, None, None, None], mirrored, x0)


_add(Exercise(
    name="hflip", chapter="12_scale_up", function="hflip",
    signature="hflip(x0, flip)", returns="a tensor shaped like x0: image i mirrored left-right where flip[i]",
    hint="mirror an image left-right by reversing its last axis (the width), and keep the "
         "mirrored copy only for the images whose coin says flip.",
    pieces="x0.flip(-1) mirrors every image; flip is (B,): flip[:, None, None, None] lets "
           "torch.where pick whole images.",
    reference=training.hflip, cases=_flip_cases,
    shape_help="flip has shape (B,): give it three more axes, flip[:, None, None, None], so that it "
               "picks whole images of x0 (B, C, H, W).",
    mistakes=(
        Mistake("upside_down", "x0.flip(-2): the chosen images turned upside down, not mirrored",
                "a photograph upside down (sky at the bottom) is not one the data could hold; "
                "a left-right mirror is: a horse facing left is as much a horse",
                ("12", "CIFAR-10: ten classes of 32x32 photographs"),
                lambda x0, flip: _where_flip(flip, x0.flip(-2), x0)),
        Mistake("flips_all", "every image mirrored, whatever its coin",
                "the data are then as one-sided as before, only the other way round; the point is "
                "each image in both orientations, half the time each",
                ("12", "CIFAR-10: ten classes of 32x32 photographs"), lambda x0, flip: x0.flip(-1)),
        Mistake("coin_inverted", "the images whose coin is False mirrored, those with True kept",
                "flip[i] True means 'mirror image i': the step must use the flips the seed drew",
                ("12", "Exercise: flip half the images"),
                lambda x0, flip: _where_flip(~flip, x0.flip(-1), x0)),
        Mistake("colours_reversed", "x0.flip(1): the colour channels reversed (RGB read as BGR)",
                "the channel axis holds red, green and blue; reversing it turns a blue sky orange, "
                "which no photograph of the data set looks like",
                ("12", "CIFAR-10: ten classes of 32x32 photographs"),
                lambda x0, flip: _where_flip(flip, x0.flip(1), x0)),
        Mistake("transposed", "x0.transpose(-1, -2): rows and columns swapped, a mirror across the diagonal",
                "that turns the image a quarter and mirrors it: the horizon stands upright",
                ("12", "CIFAR-10: ten classes of 32x32 photographs"),
                lambda x0, flip: _where_flip(flip, x0.transpose(-1, -2), x0)),
    ),
))


# --- 13 · Flow matching: the loss ---------------------------------------------------------------


def _flow_loss_cases() -> list[Case]:
    from ..unet import UNet

    torch.manual_seed(13)
    net = UNet(image_size=8, base_channels=8, channel_mults=(1, 2), attention=False, num_classes=10,
               prediction="velocity", path="linear").eval()
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)  # away from the zero start: every input matters
    g = _gen(13)
    x0 = torch.rand(4, 1, 8, 8, generator=g) * 2 - 1
    y = torch.tensor([7, 0, 2, 9])
    cases = []
    for t in (torch.tensor([0.1, 0.35, 0.6, 0.9]), torch.tensor([0.02, 0.5, 0.5, 0.98])):
        noise = torch.randn(4, 1, 8, 8, generator=g)
        cases.append(Case((net, x0, t, noise, y), label=f"t = {[round(v, 2) for v in t.tolist()]}"))
    return cases


def _flow_loss(m, x0, t, n, y=None, *, x_t=None, target=None, time=1000.0):
    tt = t.view(-1, 1, 1, 1)
    x_t = (1 - tt) * x0 + tt * n if x_t is None else x_t(x0, tt, n)
    target = n - x0 if target is None else target(x0, tt, n, x_t)
    return F.mse_loss(m(x_t, t * time, y), target)


_add(Exercise(
    name="flow_matching_loss", chapter="13_flow_matching", function="my_flow_matching_loss",
    signature="my_flow_matching_loss(model, x0, t, noise, y=None)",
    returns="one number: a 0-dimensional tensor (the mean over the batch and the pixels)",
    hint="put each image on its straight line to the noise at time t (t = 0 is the data, t = 1 the "
         "noise), ask the network for the velocity there, and score it against the velocity of that "
         "line with the mean squared error. Which way does the line run, and what is its speed?",
    pieces="t has shape (B,): t.view(-1, 1, 1, 1) scales each image; the network is told t * 1000, "
           "as model(x_t, t * 1000, y); the velocity of a straight line is its end minus its start; "
           "F.mse_loss(prediction, target).",
    reference=lambda model, x0, t, noise, y=None: training.flow_matching_loss(model, x0, t, noise, y),
    package="diffusion_lab.training.flow_matching_loss",
    cases=_flow_loss_cases,
    shape_help="return one number: F.mse_loss averages over the batch and the pixels. Inside, t needs the "
               "shape (B, 1, 1, 1) to scale each image.",
    mistakes=(
        Mistake("velocity_sign", "the target is x0 - noise",
                "x_t = (1 - t) x0 + t noise moves from x0 towards the noise as t grows: dx_t/dt = noise - x0 "
                "(the sampler then runs t from 1 down to 0, against the velocity)",
                ("13", "The flow-matching loss"), lambda m, x0, t, n, y=None: _flow_loss(
                    m, x0, t, n, y, target=lambda x0, tt, n, x_t: x0 - n)),
        Mistake("data_at_one", "data at t = 1 and noise at t = 0: x_t = t x0 + (1 - t) noise, target x0 - noise",
                "a consistent convention (Lipman et al. write it this way), but not this course's: here, as "
                "in rectified flow, SD3 and diffusers, t = 1 is the noise, where the samplers start",
                ("13", "Two paths between noise and data"), lambda m, x0, t, n, y=None: _flow_loss(
                    m, x0, t, n, y, x_t=lambda x0, tt, n: tt * x0 + (1 - tt) * n,
                    target=lambda x0, tt, n, x_t: x0 - n)),
        Mistake("endpoints_swapped", "x_t = t x0 + (1 - t) noise with the target noise - x0",
                "the interpolant's weights are swapped: at t = 0 the point must be the image x0 itself, and "
                "the target must be the velocity of the very line x_t lies on",
                ("13", "Two paths between noise and data"), lambda m, x0, t, n, y=None: _flow_loss(
                    m, x0, t, n, y, x_t=lambda x0, tt, n: tt * x0 + (1 - tt) * n)),
        Mistake("target_from_x_t", "the target is noise - x_t",
                "the velocity is the line's whole displacement noise - x0, the same at every t; noise - x_t "
                "is only the part still ahead, (1 - t) times it",
                ("13", "The flow-matching loss"), lambda m, x0, t, n, y=None: _flow_loss(
                    m, x0, t, n, y, target=lambda x0, tt, n, x_t: n - x_t)),
        Mistake("time_unscaled", "the network is told t in [0, 1] instead of t * 1000",
                "the networks read time on the scale of the DDPM steps, 0..1000 (paths.TIME_SCALE), as SD3 "
                "does; told t itself they see every image as nearly clean",
                ("13", "The flow-matching loss"), lambda m, x0, t, n, y=None: _flow_loss(m, x0, t, n, y, time=1.0)),
    ),
))


# --- 14 · The reverse SDE: one Euler-Maruyama step ------------------------------------------------


def _sde_cases() -> list[Case]:
    g = _gen(14)
    cases = []
    for beta, last in ((0.02, False), (0.0005, False), (0.01, True)):
        x, score, noise = (torch.randn(6, 2, generator=g) for _ in range(3))
        cases.append(Case((x, 3 * score, beta, noise, last), label=f"beta dt = {beta:g}, last = {last}"))
    return cases


def _sde_step(x, score, beta, noise, last, *, drift=1.0, half=False, noise_scale=None, shrink=True, always=False):
    out = x + drift * ((0.5 * beta * x if shrink else 0) + (0.5 if half else 1.0) * beta * score)
    if always or not last:
        out = out + (beta**0.5 if noise_scale is None else noise_scale(beta)) * noise
    return out


_add(Exercise(
    name="reverse_sde_step", chapter="14_score_and_sde", function="my_reverse_sde_step",
    signature="my_reverse_sde_step(x, score, beta_dt, noise, last)",
    returns="the next point, shaped like x: one step backwards in time",
    hint="Euler-Maruyama backwards in time: add the reverse SDE's drift -[f - g^2 score] times dt, then "
         "g sqrt(dt) times the noise; f = -1/2 beta x and g^2 = beta, so beta_dt = beta(t) dt carries both; "
         "the last step (last=True) adds no noise.",
    pieces="beta_dt is a plain number: beta_dt ** 0.5 is g sqrt(dt); the drift has two parts, the shrink "
           "-f = 1/2 beta x undone and the pull g^2 score towards more likely points; `if not last:` around "
           "the noise term.",
    reference=lambda x, score, beta_dt, noise, last: sde.reverse_sde_step(x, score, beta_dt, None if last else noise),
    package="diffusion_lab.sde.reverse_sde_step",
    cases=_sde_cases,
    mistakes=(
        Mistake("drift_sign", "the drift subtracted: x - (1/2 beta x + beta score)",
                "that steps the SDE forwards in time, away from the data: the reverse SDE runs time backwards, "
                "so its step adds -[f - g^2 s] dt",
                ("14", "Two roads down: the reverse SDE and the probability-flow ODE"),
                lambda x, s, b, z, last: _sde_step(x, s, b, z, last, drift=-1.0)),
        Mistake("half_score", "1/2 beta score in the drift, with the noise",
                "half the score term is the probability-flow ODE's drift, which takes no noise; with noise it "
                "needs the whole g^2 s, or the points end too spread out",
                ("14", "Two roads down: the reverse SDE and the probability-flow ODE"),
                lambda x, s, b, z, last: _sde_step(x, s, b, z, last, half=True)),
        Mistake("noise_variance", "beta dt times the noise instead of sqrt(beta dt)",
                "Brownian motion over a time dt has variance dt, so its standard deviation is sqrt(dt): "
                "beta dt is the variance of the step's noise, not its scale",
                ("14", "Two roads down: the reverse SDE and the probability-flow ODE"),
                lambda x, s, b, z, last: _sde_step(x, s, b, z, last, noise_scale=lambda beta: beta)),
        Mistake("no_shrink", "no 1/2 beta x term: only the score and the noise",
                "the VP SDE shrinks x by f = -1/2 beta x at every step (that keeps the variance at 1); "
                "the reverse must undo that shrink as well as follow the score",
                ("14", "Two roads down: the reverse SDE and the probability-flow ODE"),
                lambda x, s, b, z, last: _sde_step(x, s, b, z, last, shrink=False)),
        Mistake("noise_at_last", "noise added on the last step too",
                "after the last step no step follows to remove it: the images come out with grain on them "
                "(DDPM's Algorithm 2 adds none at t = 1)",
                ("14", "Two roads down: the reverse SDE and the probability-flow ODE"),
                lambda x, s, b, z, last: _sde_step(x, s, b, z, last, always=True)),
    ),
))
