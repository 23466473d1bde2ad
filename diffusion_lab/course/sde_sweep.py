"""Chapter 14's measurements (scripts/sde_compare.py writes them; the chapter, the README and the results
page read them through here): which samplers and settings were measured, and their table and figure.

    rows = load_results("sde") + load_results("samplers")   # stochastic rows + chapter 09's ODE rows
    print("\\n".join(table(rows, "mnist")));  figure(rows)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib import ticker

from ..edit import EDIT_DEFAULTS

BUDGETS = (10, 20, 50, 100)  # model calls per image (EDM's Heun steps: 2N - 1)
# (label, sampler, options): the stochastic samplers of the sweep, every one at s = 1 and n = 1000
STOCHASTIC = (
    ("DDIM, eta = 1", "ddim", {"eta": 1.0, "spacing": "trailing"}),
    ("Euler ancestral", "euler_ancestral", {"spacing": "trailing"}),
    ("DPM-Solver++ 2M SDE", "dpmpp2m_sde", {"spacing": "trailing"}),
    ("EDM, churn 10", "edm", {"spacing": "trailing", "churn": 10.0}),  # Heun's grid: churn is the only change
)
# chapter 09's deterministic (ODE) samplers, the same checkpoints, seeds, n and guidance
ODE = (("DDIM, eta = 0", "ddim"), ("Heun", "heun"), ("DPM-Solver++ 2M", "dpmpp2m"))
# inpainting the lower half of real MNIST test digits (mnist_cfg): the class asked for is the digit's own
# ("true") or another ("other": label + 5 mod 10)
INPAINT = (
    {"label": "true", "guidance": 3.0, **EDIT_DEFAULTS},
    {"label": "other", "guidance": 3.0, **EDIT_DEFAULTS},
)


def _fd(r: dict) -> str:
    return f"{r['fd']:.2f}, no spread" if r.get("fd_std") is None else f"{r['fd']:.2f} ± {r['fd_std']:.2f}"


def lines(rows: list[dict], dataset: str) -> dict[str, list[dict]]:
    """{label: rows by model calls} for the stochastic and the ODE samplers of one dataset, s = 1, n = 1000,
    at most 100 calls; and "DDPM, 1000 steps" for the reference."""
    mine = [r for r in rows if r["dataset"] == dataset and r.get("guidance", 1.0) in (1.0, None) and r["num"] == 1000]
    out = {}
    for label, _, _ in STOCHASTIC:
        out[label] = sorted((r for r in mine if r.get("label") == label), key=lambda r: r["nfe"])
    for label, sampler in ODE:
        out[label] = sorted((r for r in mine if "label" not in r and r["sampler"] == sampler and r.get("eta", 0) == 0
                             and r.get("spacing") == "trailing" and 10 <= r["nfe"] <= 100), key=lambda r: r["nfe"])
    out["DDPM, 1000 steps"] = [r for r in mine if r["sampler"] == "ddpm"]
    return {k: v for k, v in out.items() if v}


def table(rows: list[dict], dataset: str) -> list[str]:
    """Markdown: one line per sampler, FD ± its half-sampling std at each budget."""
    found = lines(rows, dataset)
    out = ["| sampler | kind | " + " | ".join(f"{b} calls" for b in BUDGETS) + " |",
           "|---|---|" + "---|" * len(BUDGETS)]
    for label, rs in found.items():
        if label.startswith("DDPM"):
            continue
        kind = "ODE" if label in dict(ODE) else "SDE"
        by = {b: next((r for r in rs if r["nfe"] in (b, b - 1)), None) for b in BUDGETS}
        out.append(f"| {label} | {kind} | " + " | ".join(_fd(r) if r else "-" for r in by.values()) + " |")
    for r in found.get("DDPM, 1000 steps", []):
        out.append(f"| DDPM, all {r['nfe']} steps | SDE | {_fd(r)} at {r['nfe']} calls |" + " |" * (len(BUDGETS) - 1))
    return out


def figure(rows: list[dict], datasets=("mnist", "fashion_mnist")):
    """FD against model calls, one panel per dataset: the ODE samplers dashed, the stochastic ones solid,
    error bars of two half-sampling standard deviations, DDPM's 1000 steps and the real-data floor as lines."""
    datasets = [d for d in datasets if lines(rows, d)]
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets) + 1.8, 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        found = lines(rows, dataset)
        for label, rs in found.items():
            if label.startswith("DDPM"):
                for r in rs:
                    ax.axhline(r["fd"], ls="--", c="gray", label=f"DDPM, {r['nfe']} calls")
                continue
            ode = label in dict(ODE)
            ax.errorbar([r["nfe"] for r in rs], [r["fd"] for r in rs],
                        yerr=[2 * r["fd_std"] if r.get("fd_std") is not None else 0 for r in rs],
                        fmt="o--" if ode else "s-", ms=4, capsize=2, alpha=0.6 if ode else 1.0, label=label)
        floor = next(iter(found.values()))[0]["fd_real_floor"]
        ax.axhline(floor, ls=":", c="k", label="real-data floor")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.minorticks_off()
        ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.set_xlabel("model calls per image")
        ax.set_ylabel("FD ± 2 std (lower is better)")
        ax.set_title(f"{dataset}, s = 1, n = 1000: ODE (dashed) and SDE (solid)", fontsize=10)
    entries = {}  # every panel's lines once (DDPM's 1000 steps is drawn where it was measured)
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    axes[0][-1].legend(entries.values(), entries.keys(), fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.tight_layout()
    return fig


DDPM_TARGET = 0.10  # a stochastic sampler at <= 50 model calls within 10% of DDPM-1000's FD (MNIST, s = 1)
CLAIMS = ("sde_ddim_eta1_beats_eta0_50_calls", "sde_edm_beats_heun_49_calls", "sde_dpmpp_beats_ode_50_calls",
          "sde_dpmpp_vs_ode_10_calls", "sde_eta1_is_euler_ancestral")
FASHION_CLAIMS = ("sde_vs_ode_fashion_50_calls", "sde_vs_ode_fashion_dpmpp_20_calls")


def target(rows: list[dict], dataset: str = "mnist") -> str:
    """One line: the stochastic sampler with the lowest FD at <= 50 calls against DDPM's 1000 steps."""
    found = lines(rows, dataset)
    ddpm = found["DDPM, 1000 steps"][0]
    best = min((r for label, _, _ in STOCHASTIC for r in found.get(label, []) if r["nfe"] <= 50), key=lambda r: r["fd"])
    gap = best["fd"] / ddpm["fd"] - 1
    verdict = "met" if gap <= DDPM_TARGET else "not met"
    fewest = []
    for label, _, _ in STOCHASTIC:
        close = [r for r in found.get(label, []) if r["fd"] <= ddpm["fd"] * (1 + DDPM_TARGET)]
        fewest.append(f"{label} {close[0]['nfe']}" if close else f"{label} none")
    return (f"target (within {DDPM_TARGET:.0%} of DDPM-1000's FD {ddpm['fd']:.2f} at <= 50 calls): {verdict}; "
            f"the best is {best['label']} at {best['nfe']} calls, FD {_fd(best)} ({gap:+.0%}). The fewest calls "
            "within 10%: " + ", ".join(fewest))


def inpaint_target(rows: list[dict]) -> str:
    r = next(r for r in rows if r["label"] == "true")
    verdict = "met" if r["class_accuracy"] >= 0.95 and r["kept_half_unchanged"] else "not met"
    return (f"target (>= 95% recognised, the kept half unchanged bit for bit): {verdict} "
            f"({100 * r['class_accuracy']:.1f}%, unchanged: {r['kept_half_unchanged']})")
