"""Result sentences as code: a claim names its rows in data/results, the number it compares and what
the comparison found; its sentence is rendered from the rows, and tests/test_claims.py checks every
claim against the committed data, so a sentence cannot outlive the numbers that made it true.

The rule (chapter 08): two measurements differ when their gap is larger than twice the combined spread,

    |a - b| > 2 sqrt(s_a^2 + s_b^2)                       (about a 95% two-sided z-test)

- FD: s is the row's fd_std (half-sampling, metrics.frechet_half_std); a row without one cannot be
  ranked and a claim on it fails with that message. Straightness: its straightness_std (the standard
  error of the mean over images).
- A fraction of n images (class accuracy, precision, recall): s^2 = p~ (1 - p~) / (n + 2) with
  p~ = (k + 1) / (n + 2), the Agresti-Caffo interval for a difference of proportions (Agresti & Caffo 2000,
  https://doi.org/10.1080/00031305.2000.10474560),
  which stays honest at 100%.
- Otherwise "no measured difference": a claim that two rows tie is checked too.

    from diffusion_lab.claims import say
    say("latent_beats_pixel_s1")   # prints the sentence, with both numbers, their spreads and n
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .results import load_results

LOWER_IS_BETTER = {
    "fd": True,
    "fd_real_floor": True,
    "class_accuracy": False,
    "precision": False,
    "recall": False,
    "class_accuracy_of_reconstructions": False,
    "straightness": True,
}
FRACTIONS = ("class_accuracy", "precision", "recall", "class_accuracy_of_reconstructions")
LABELS = {
    "fd": "FD",
    "fd_real_floor": "the real-data floor",
    "class_accuracy": "class accuracy",
    "precision": "precision",
    "recall": "recall",
    "straightness": "straightness",
}
DIGITS = {"straightness": 3}  # decimals shown (default 1)


class ClaimError(AssertionError):
    """The committed data does not support a claim (or cannot: a missing row or spread)."""


@dataclass(frozen=True)
class Claim:
    part: str  # data/results/<part>.json ("a+b": the rows of a.json and b.json together)
    a: dict  # the fields that pick row a (exactly one row must match)
    b: dict
    metric: str  # "fd", "class_accuracy", "precision", "recall"
    names: tuple  # how the sentence calls a and b
    expect: str  # what the data says: "a" (a is better), "b", or "tie"
    where: str = ""  # the setting, for the sentence: "at s = 1 (DDIM, 20 steps)"
    a_in: str = ""  # read a's numbers from this sub-record of its row (e.g. "raw_weights")
    b_in: str = ""
    b_metric: str = ""  # b's field when it is named otherwise (the same quantity measured another way)


@dataclass(frozen=True)
class Measure:
    value: float
    std: float
    n: int


def rows_of(part: str) -> list[dict]:
    """A part's rows; a part written as one record with "arms" gives each arm its shared settings (n, ...).
    "sde+samplers": the rows of both parts, for a claim that sets a row of one against a row of the other."""
    if "+" in part:
        return [row for name in part.split("+") for row in rows_of(name)]
    data = load_results(part)
    if isinstance(data, dict):
        shared = {k: v for k, v in data.items() if k != "arms"}
        return [shared | arm for arm in data["arms"]]
    return data


def find_row(part: str, where: dict, rows: list[dict] | None = None) -> dict:
    rows = rows_of(part) if rows is None else rows
    hits = [r for r in rows if all(r.get(k) == v for k, v in where.items())]
    if len(hits) != 1:
        raise ClaimError(f"{part}.json: {len(hits)} rows match {where}; a claim needs exactly one.")
    return hits[0]


def measure(row: dict, metric: str, part: str = "?") -> Measure:
    """A row's number with its standard deviation and sample count."""
    n = int(row.get(f"{metric}_num", row["num"]))  # a row may measure some numbers on another count
    if metric in FRACTIONS:
        p = float(row[metric])
        p_adj = (round(p * n) + 1) / (n + 2)
        return Measure(p, math.sqrt(p_adj * (1 - p_adj) / (n + 2)), n)
    std = row.get(f"{metric}_std")
    if std is None:
        raise ClaimError(
            f"{part}.json row {row.get('command', row)} has no {metric}_std: it ranks nothing; "
            "re-measure it with `python -m diffusion_lab evaluate`, which records the spread."
        )
    return Measure(float(row[metric]), float(std), n)


def verdict(a: Measure, b: Measure, lower_is_better: bool) -> str:
    """ "a", "b" (the better one, when the gap exceeds twice the combined spread) or "tie"."""
    if abs(a.value - b.value) <= 2 * math.hypot(a.std, b.std):
        return "tie"
    return "a" if (a.value < b.value) == lower_is_better else "b"


def with_spread(row: dict, metric: str) -> str:
    """A row's number as the tables show it, with its standard deviation: "96.0% ± 0.9", "22.1 ± 2.4"."""
    return _fmt(measure(row, metric), metric)


def _fmt(m: Measure, metric: str) -> str:
    if metric in FRACTIONS:
        return f"{100 * m.value:.1f}% ± {100 * m.std:.1f}"
    digits = DIGITS.get(metric, 1)
    return f"{m.value:.{digits}f} ± {m.std:.{digits}f}"


def evaluate_claim(claim: Claim, rows: list[dict] | None = None) -> tuple[str, Measure, Measure]:
    row_a, row_b = find_row(claim.part, claim.a, rows), find_row(claim.part, claim.b, rows)
    a = measure(row_a[claim.a_in] if claim.a_in else row_a, claim.metric, claim.part)
    b = measure(row_b[claim.b_in] if claim.b_in else row_b, claim.b_metric or claim.metric, claim.part)
    return verdict(a, b, LOWER_IS_BETTER[claim.metric]), a, b


def check(key: str, rows: list[dict] | None = None) -> str:
    """The claim's sentence, or ClaimError naming the claim, the numbers and the rule."""
    claim = CLAIMS[key]
    try:
        found, a, b = evaluate_claim(claim, rows)
    except ClaimError as e:
        raise ClaimError(f"claim {key!r}: {e}") from None
    if found != claim.expect:
        said = {"a": f"{claim.names[0]} is better", "b": f"{claim.names[1]} is better", "tie": "no difference"}
        raise ClaimError(
            f"claim {key!r} says {said[claim.expect]} on {claim.metric} {claim.where}, but the data "
            f"says {said[found]}: {claim.names[0]} {_fmt(a, claim.metric)}, {claim.names[1]} "
            f"{_fmt(b, claim.metric)} (rule: a gap larger than 2 sqrt(s_a^2 + s_b^2) = "
            f"{2 * math.hypot(a.std, b.std):.3g})."
        )
    return sentence(claim, a, b)


def sentence(claim: Claim, a: Measure, b: Measure) -> str:
    label = LABELS[claim.metric]
    if claim.expect != "tie" and LOWER_IS_BETTER[claim.metric]:
        label += " (lower is better)"
    numbers = (
        f"{claim.names[0]} {_fmt(a, claim.metric)} against {claim.names[1]} {_fmt(b, claim.metric)}"
        f" (± one standard deviation; n = {a.n}" + ("" if a.n == b.n else f" and {b.n}") + ")"
    )
    where = f" {claim.where}" if claim.where else ""
    if claim.expect == "tie":
        return (
            f"No measured difference in {label}{where} between {claim.names[0]} and {claim.names[1]}: "
            f"{numbers}; the gap is within twice the combined spread."
        )
    win, lose = claim.names if claim.expect == "a" else claim.names[::-1]
    return f"{win[0].upper()}{win[1:]} did better than {lose} on {label}{where}: {numbers}."


def say(*keys: str) -> None:
    """Print the sentences of these claims (chapters call this where they state a result)."""
    for key in keys:
        print(check(key))


MARKED = re.compile(r"(<!-- claim: (\w+) -->\n)(.*?)\n?(<!-- /claim -->)", re.DOTALL)


def render_marked(text: str) -> str:
    """Text with every block between `<!-- claim: KEY -->` and `<!-- /claim -->` rewritten as the claim's
    sentence (the README's headline and the results page; scripts/render_claims.py writes them)."""
    return MARKED.sub(lambda m: m.group(1) + check(m.group(2)) + "\n" + m.group(4), text)


_ODE_ROW = {"spacing": "trailing", "guidance": 1.0, "num": 1000}  # chapter 09's ODE rows that chapter 14 reads
CLAIMS: dict[str, Claim] = {
    # Chapter 04: the recipe sweep (one change each to a base recipe, 3 minutes of training, 500 guided
    # samples), on class accuracy and on FD: (key, row a, row b, names, accuracy says, FD says).
    **{
        f"recipe_{key}{suffix}": Claim(
            "recipe_quality", {"name": a}, {"name": b}, metric, names, expect, "after 3 minutes of training"
        )
        for key, a, b, names, by_accuracy, by_fd in (
            ("v_prediction", "W16 v-prediction", "width 16", ("predicting v", "the base recipe"), "a", "a"),
            ("min_snr", "W16 min-SNR-5 weighting", "width 16", ("min-SNR weighting", "the base recipe"), "a", "a"),
            (
                "v_against_min_snr",
                "W16 v-prediction",
                "W16 min-SNR-5 weighting",
                ("predicting v", "min-SNR weighting"),
                "a",
                "tie",
            ),
            (
                "min_snr_seeds",
                "W16 min-SNR-5 weighting",
                "W16 min-SNR-5 weighting, seed 1",
                ("min-SNR with seed 0", "min-SNR with seed 1"),
                "tie",
                "tie",
            ),
            ("lr", "W16 lr 2e-3", "width 16", ("a learning rate of 2e-3", "the base recipe"), "a", "a"),
            ("batch_32", "W16 batch 32", "width 16", ("batch 32", "the base recipe"), "a", "a"),
            ("no_attention", "W16 no attention", "width 16", ("no attention", "the base recipe"), "a", "a"),
            ("cosine", "width 16", "W16 cosine schedule", ("the base recipe", "the cosine schedule"), "a", "a"),
            ("two_levels", "width 16", "W16 2 levels (28, 14)", ("the base recipe", "two resolution levels"), "a", "a"),
        )
        for suffix, metric, expect in (("", "class_accuracy", by_accuracy), ("_fd", "fd", by_fd))
    },
    **{
        f"recipe_ema{suffix}": Claim(
            "recipe_quality",
            {"name": "W16 lr 2e-3"},
            {"name": "W16 lr 2e-3"},
            metric,
            ("the EMA weights", "the raw weights"),
            "tie",
            "in the lr 2e-3 run",
            b_in="raw_weights",
        )
        for suffix, metric in (("", "class_accuracy"), ("_fd", "fd"))
    },
    # Chapter 06: Yu 2025's DDIM against ours, on the shipped model (500 samples each, s = 3).
    "paper_grid_is_not_the_difference": Claim(
        "paper_ddim",
        {"arm": "Yu 2025's DDIM: grid + 1, ends on alpha_bar_0, clips x_0, keeps the raw eps"},
        {"arm": "our grid, clipping as Yu 2025 (clipped x_0, raw eps)"},
        "fd",
        ("Yu 2025's grid", "ours"),
        "tie",
        "with Yu 2025's clipping",
    ),
    "implied_eps_beats_raw_eps": Claim(
        "paper_ddim",
        {"arm": "ours, clip_x0=True (clipped x_0 and the eps it implies)"},
        {"arm": "our grid, clipping as Yu 2025 (clipped x_0, raw eps)"},
        "fd",
        ("the noise the clipped guess implies", "the raw noise"),
        "a",
        "beside a clipped x_0",
    ),
    "clipping_vs_none": Claim(
        "paper_ddim",
        {"arm": "ours, clip_x0=True (clipped x_0 and the eps it implies)"},
        {"arm": "ours, no clipping (the default)"},
        "fd",
        ("clipping (with the implied noise)", "no clipping"),
        "tie",
        "on the shipped model",
    ),
    # Chapters 06 and 08: sampling steps on the shipped model (s = 1, 500 samples each).
    "ddim_20_steps_beat_5": Claim(
        "steps",
        {"sampler": "ddim", "steps": 20},
        {"sampler": "ddim", "steps": 5},
        "fd",
        ("DDIM with 20 steps", "DDIM with 5"),
        "a",
        "",
    ),
    "ddim_flat_from_20_steps": Claim(
        "steps",
        {"sampler": "ddim", "steps": 20},
        {"sampler": "ddim", "steps": 100},
        "fd",
        ("DDIM with 20 steps", "DDIM with 100"),
        "tie",
        "",
    ),
    "ddim_20_vs_ddpm": Claim(
        "steps",
        {"sampler": "ddim", "steps": 20},
        {"sampler": "ddpm", "steps": 1000},
        "fd",
        ("DDIM with 20 steps", "DDPM with 1000"),
        "tie",
        "",
    ),
    "ddim_10_vs_20_steps": Claim(
        "steps",
        {"sampler": "ddim", "steps": 10},
        {"sampler": "ddim", "steps": 20},
        "fd",
        ("DDIM with 10 steps", "DDIM with 20"),
        "tie",
        "",
    ),
    "digit_decided_in_5_steps": Claim(
        "steps",
        {"sampler": "ddim", "steps": 5},
        {"sampler": "ddim", "steps": 100},
        "class_accuracy",
        ("DDIM with 5 steps", "DDIM with 100"),
        "tie",
        "",
    ),
    # Chapter 08: Yu 2025's minimal U-Net against ours, the same minutes of training (1000 samples, s = 3).
    **{
        f"ours_beats_minimal_{m}_minutes": Claim(
            "recipe_minutes",
            {"model": "unet", "dataset": "mnist", "minutes": m},
            {"model": "minimal", "dataset": "mnist", "minutes": m},
            "class_accuracy",
            ("our U-Net", "the minimal U-Net"),
            "a",
            f"after {m} minutes of training",
        )
        for m in (3, 10)
    },
    "ours_beats_minimal_10_minutes_fd": Claim(
        "recipe_minutes",
        {"model": "unet", "dataset": "mnist", "minutes": 10},
        {"model": "minimal", "dataset": "mnist", "minutes": 10},
        "fd",
        ("our U-Net", "the minimal U-Net"),
        "a",
        "after 10 minutes of training",
    ),
    "ours_ten_minutes_vs_three_fd": Claim(
        "recipe_minutes",
        {"model": "unet", "dataset": "mnist", "minutes": 10},
        {"model": "unet", "dataset": "mnist", "minutes": 3},
        "fd",
        ("10 minutes of training", "3 minutes"),
        "tie",
        "for our U-Net",
    ),
    "ours_ten_minutes_beat_three": Claim(
        "recipe_minutes",
        {"model": "unet", "dataset": "mnist", "minutes": 10},
        {"model": "unet", "dataset": "mnist", "minutes": 3},
        "class_accuracy",
        ("10 minutes of training", "3 minutes"),
        "a",
        "for our U-Net",
    ),
    # Chapter 08: where the time embedding goes (the same 600 training steps, 500 samples at s = 3).
    "time_embedding_place_fd": Claim(
        "architecture",
        {"checkpoint": "mnist_cfg_unet"},
        {"checkpoint": "mnist_cfg_unet_middle"},
        "fd",
        ("t and y in every block", "t and y only in the middle"),
        "tie",
        "after 600 training steps",
    ),
    "time_embedding_place_accuracy": Claim(
        "architecture",
        {"checkpoint": "mnist_cfg_unet"},
        {"checkpoint": "mnist_cfg_unet_middle"},
        "class_accuracy",
        ("t and y in every block", "t and y only in the middle"),
        "tie",
        "after 600 training steps",
    ),
    # Chapters 07-08: the guidance scale on the shipped model (DDIM 20 steps, 500 samples each).
    "guidance_buys_accuracy": Claim(
        "guidance",
        {"guidance": 3.0},
        {"guidance": 1.0},
        "class_accuracy",
        ("sampling at s = 3", "sampling at s = 1"),
        "a",
        "on the shipped model",
    ),
    "guidance_costs_fd": Claim(
        "guidance",
        {"guidance": 1.0},
        {"guidance": 3.0},
        "fd",
        ("sampling at s = 1", "sampling at s = 3"),
        "a",
        "on the shipped model",
    ),
    "guidance_1_beats_2_on_fd": Claim(
        "guidance",
        {"guidance": 1.0},
        {"guidance": 2.0},
        "fd",
        ("sampling at s = 1", "sampling at s = 2"),
        "a",
        "on the shipped model",
    ),
    "guidance_1_beats_0_on_fd": Claim(
        "guidance",
        {"guidance": 1.0},
        {"guidance": 0.0},
        "fd",
        ("sampling at s = 1", "sampling at s = 0 (no label)"),
        "a",
        "on the shipped model",
    ),
    "guidance_2_reaches_full_accuracy": Claim(
        "guidance",
        {"guidance": 2.0},
        {"guidance": 1.0},
        "class_accuracy",
        ("sampling at s = 2", "sampling at s = 1"),
        "a",
        "on the shipped model",
    ),
    # Chapter 09: the ODE solvers on the shipped MNIST model (s = 1, 1000 samples per row).
    **{
        key: Claim(
            "samplers",
            {"dataset": "mnist", "sampler": sa, "nfe": na},
            {"dataset": "mnist", "sampler": sb, "nfe": nb},
            metric,
            names,
            expect,
            where,
        )
        for key, sa, na, sb, nb, metric, names, expect, where in (
            (
                "dpm_beats_ddim_at_5_calls",
                "dpmpp2m",
                5,
                "ddim",
                5,
                "fd",
                ("DPM-Solver++", "DDIM"),
                "a",
                "with 5 model calls",
            ),
            (
                "dpm_10_calls_vs_ddim_20",
                "dpmpp2m",
                10,
                "ddim",
                20,
                "fd",
                ("DPM-Solver++ with 10 calls", "DDIM with 20"),
                "tie",
                "",
            ),
            ("heun_breaks_at_5_calls", "euler", 5, "heun", 5, "fd", ("Euler", "Heun"), "a", "with 5 model calls"),
            ("fd_flat_from_10_calls_ddim", "ddim", 10, "ddim", 50, "fd", ("10 calls", "50 calls"), "tie", "for DDIM"),
            (
                "fd_flat_from_10_calls_dpm",
                "dpmpp2m",
                10,
                "dpmpp2m",
                50,
                "fd",
                ("10 calls", "50 calls"),
                "tie",
                "for DPM-Solver++",
            ),
            ("fd_flat_from_10_calls_heun", "heun", 9, "heun", 49, "fd", ("9 calls", "49 calls"), "tie", "for Heun"),
            ("recall_rises_with_calls", "ddim", 50, "ddim", 10, "recall", ("50 calls", "10 calls"), "a", "for DDIM"),
            (
                "precision_falls_with_calls",
                "ddim",
                5,
                "ddim",
                50,
                "precision",
                ("5 calls", "50 calls"),
                "a",
                "for DDIM",
            ),
        )
    },
    # Chapter 10 and the README: pixel against latent diffusion, the same minutes of training.
    "latent_beats_pixel_s1": Claim(
        "latent_s1",
        {"arm": "latent"},
        {"arm": "pixel"},
        "fd",
        ("the latent model", "the pixel model"),
        "a",
        "at s = 1 (DDIM, 20 steps, the same 10 CPU minutes of training)",
    ),
    "latent_vs_pixel_accuracy_s1": Claim(
        "latent_s1",
        {"arm": "latent"},
        {"arm": "pixel"},
        "class_accuracy",
        ("the latent model", "the pixel model"),
        "a",
        "at s = 1",
    ),
    "pixel_beats_latent_s3": Claim(
        "latent", {"arm": "pixel"}, {"arm": "latent"}, "fd", ("the pixel model", "the latent model"), "a", "at s = 3"
    ),
    "pixel_beats_latent_recall_s3": Claim(
        "latent",
        {"arm": "pixel"},
        {"arm": "latent"},
        "recall",
        ("the pixel model", "the latent model"),
        "a",
        "at s = 3",
    ),
    "latent_vs_pixel_accuracy_s3": Claim(
        "latent",
        {"arm": "latent"},
        {"arm": "pixel"},
        "class_accuracy",
        ("the latent model", "the pixel model"),
        "tie",
        "at s = 3",
    ),
    "autoencoder_beats_latent_fd": Claim(
        "latent",
        {"arm": "autoencoder"},
        {"arm": "latent", "guidance": 3.0},
        "fd",
        ("the autoencoder's reconstructions of real digits", "the latent model"),
        "a",
        "against the same reference images",
    ),
    "latent_above_reconstructions_accuracy": Claim(
        "latent",
        {"arm": "latent"},
        {"arm": "autoencoder"},
        "class_accuracy",
        ("the latent model's samples (s = 3)", "the reconstructions of the 10,000 test digits"),
        "a",
        b_metric="class_accuracy_of_reconstructions",
    ),
    # Chapter 11: prompts in words against class labels, both in latent space.
    "labels_vs_text_fd_s3": Claim(
        "latent", {"arm": "latent"}, {"arm": "latent_text"}, "fd", ("class labels", "prompts"), "tie", "at s = 3"
    ),
    "labels_beat_text_accuracy_s3": Claim(
        "latent",
        {"arm": "latent"},
        {"arm": "latent_text"},
        "class_accuracy",
        ("class labels", "prompts"),
        "a",
        "at s = 3",
    ),
    "labels_beat_text_fd_s1": Claim(
        "latent_s1", {"arm": "latent"}, {"arm": "latent_text"}, "fd", ("class labels", "prompts"), "a", "at s = 1"
    ),
    "labels_beat_text_accuracy_s1": Claim(
        "latent_s1",
        {"arm": "latent"},
        {"arm": "latent_text"},
        "class_accuracy",
        ("class labels", "prompts"),
        "a",
        "at s = 1",
    ),
    # Chapter 13: DDPM against rectified flow, and the U-Net against a DiT, on the same CPU budget
    # (scripts/flow_compare.py: 1000 class-balanced samples each, s = 1). (key, row a, row b, names, metric,
    # what the data says, where.)
    **{
        key: Claim("flow", {"name": a}, {"name": b}, metric, names, expect, where)
        for key, a, b, names, metric, expect, where in (
            ("flow_beats_ddpm_10_calls", "flow_unet euler 10", "ddpm_unet ddim 10",
             ("rectified flow with Euler", "DDPM with DDIM"), "fd", "a", "at 10 model calls, s = 1"),
            ("flow_vs_dpm_solver_10_calls", "flow_unet euler 10", "ddpm_unet dpmpp2m 10",
             ("rectified flow with Euler", "DDPM with DPM-Solver++ 2M"), "fd", "a", "at 10 model calls, s = 1"),
            ("flow_beats_ddpm_4_calls", "flow_unet euler 4", "ddpm_unet ddim 4",
             ("rectified flow with Euler", "DDPM with DDIM"), "fd", "a", "at 4 model calls, s = 1"),
            ("flow_vs_ddpm_50_calls", "flow_unet euler 50", "ddpm_unet ddim 50",
             ("rectified flow with Euler", "DDPM with DDIM"), "fd", "a", "at 50 model calls, s = 1"),
            ("flow_vs_ddpm_accuracy_10_calls", "flow_unet euler 10", "ddpm_unet ddim 10",
             ("rectified flow with Euler", "DDPM with DDIM"), "class_accuracy", "a", "at 10 model calls, s = 1"),
            ("unet_vs_dit_10_calls", "flow_unet euler 10", "flow_dit euler 10",
             ("the U-Net", "the DiT"), "fd", "a", "on the linear path at 10 model calls, s = 1"),
            ("heun_vs_euler_flow_10_calls", "flow_unet heun 9", "flow_unet euler 10",
             ("Heun (5 steps, 9 calls)", "Euler (10 steps)"), "fd", "tie", "on the flow U-Net, s = 1"),
        )
    },
    "flow_straighter_than_ddpm": Claim(
        "flow_straightness", {"arm": "flow_unet"}, {"arm": "ddpm_unet"}, "straightness",
        ("the rectified flow's paths", "DDPM's paths"), "a", "(50 steps, in linear-path coordinates)"),
    "dit_vs_unet_straightness": Claim(
        "flow_straightness", {"arm": "flow_dit"}, {"arm": "flow_unet"}, "straightness",
        ("the DiT's paths", "the U-Net's paths"), "b", "(50 steps, both on the linear path)"),
    # Chapter 14: the stochastic samplers against the ODE samplers of chapter 09 on the same checkpoint, n = 1000,
    # s = 1, trailing spacing (scripts/sde_compare.py sweep; the ODE rows are data/results/samplers.json's).
    **{
        key: Claim("sde+samplers", {"dataset": dataset, **a}, {"dataset": dataset, **b}, "fd", names, expect, where)
        for key, dataset, a, b, names, expect, where in (
            ("sde_ddim_eta1_beats_eta0_50_calls", "mnist", {"label": "DDIM, eta = 1", "nfe": 50},
             {"sampler": "ddim", "eta": 0.0, "nfe": 50, **_ODE_ROW}, ("DDIM with eta = 1", "DDIM with eta = 0"), "a",
             "on MNIST at 50 model calls, s = 1"),
            ("sde_edm_beats_heun_49_calls", "mnist", {"label": "EDM, churn 10", "nfe": 49},
             {"sampler": "heun", "nfe": 49, **_ODE_ROW}, ("EDM's Heun with churn 10", "Heun without churn"), "a",
             "on MNIST at 49 model calls, s = 1"),
            ("sde_dpmpp_beats_ode_50_calls", "mnist", {"label": "DPM-Solver++ 2M SDE", "nfe": 50},
             {"sampler": "dpmpp2m", "nfe": 50, **_ODE_ROW}, ("DPM-Solver++ 2M SDE", "DPM-Solver++ 2M (ODE)"), "a",
             "on MNIST at 50 model calls, s = 1"),
            ("sde_dpmpp_vs_ode_10_calls", "mnist", {"label": "DPM-Solver++ 2M SDE", "nfe": 10},
             {"sampler": "dpmpp2m", "nfe": 10, **_ODE_ROW}, ("DPM-Solver++ 2M SDE", "DPM-Solver++ 2M (ODE)"), "tie",
             "on MNIST at 10 model calls, s = 1"),
            ("sde_eta1_is_euler_ancestral", "mnist", {"label": "DDIM, eta = 1", "nfe": 50},
             {"label": "Euler ancestral", "nfe": 50}, ("DDIM with eta = 1", "Euler ancestral"), "tie",
             "on MNIST at 50 model calls, s = 1"),
            ("sde_vs_ode_fashion_50_calls", "fashion_mnist", {"label": "DDIM, eta = 1", "nfe": 50},
             {"sampler": "ddim", "eta": 0.0, "nfe": 50, **_ODE_ROW}, ("DDIM with eta = 1", "DDIM with eta = 0"),
             "tie", "on Fashion-MNIST at 50 model calls, s = 1"),
            ("sde_vs_ode_fashion_dpmpp_20_calls", "fashion_mnist", {"label": "DPM-Solver++ 2M SDE", "nfe": 20},
             {"sampler": "dpmpp2m", "nfe": 20, **_ODE_ROW}, ("DPM-Solver++ 2M SDE", "DPM-Solver++ 2M (ODE)"), "tie",
             "on Fashion-MNIST at 20 model calls, s = 1"),
        )
    },
    # Chapter 14: inpainting the lower half of 1000 MNIST test digits (scripts/sde_compare.py inpaint)
    "inpaint_true_beats_other_class": Claim(
        "inpaint", {"label": "true"}, {"label": "other"}, "class_accuracy",
        ("completions asked for the digit's own class", "completions asked for another class"), "a",
        "(recognised as the class asked for; RePaint, 65 model calls, s = 3)"),
}
