"""The sampler sweep's rows (data/results/samplers.json, written by scripts/sampler_sweep.py) as a table,
a figure and the sweep's targets: read by chapter 09 and by the script's results-page report, so both say the
same thing from the same rows.

    from diffusion_lab.results import load_results
    rows = load_results("samplers")
    print("\\n".join(table(rows)));  figure(rows);  print(targets(rows, "mnist"))
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib import ticker

from ..claims import measure, verdict

DATASETS = ("mnist", "fashion_mnist")
SAMPLERS = ("ddim", "euler", "heun", "dpmpp2m")  # DDPM (all T steps) is the reference line
BUDGETS = (5, 10, 20, 50)  # model calls per image (Heun's are odd: 2N - 1)
METRICS = (("fd", "FD, ± 2 std (lower is better)"), ("precision", "precision"), ("recall", "recall"),
           ("class_accuracy", "class accuracy"))


def _fd(r: dict) -> str:
    """FD with its half-sampling standard deviation where the row has one (evaluate_model's fd_std)."""
    if r.get("fd_std") is None:
        return f"{r['fd']:.2f}, no spread"
    older = "" if r.get("fd_spread") == "half-sampling" else " (bootstrap)"  # measured before half-sampling
    return f"{r['fd']:.2f} ± {r['fd_std']:.2f}{older}"


def table(rows: list[dict], commands: bool = True) -> list[str]:
    """A markdown table: one line per row, MNIST first, each sampler by model calls, DDPM last."""
    order = {s: i for i, s in enumerate(SAMPLERS + ("ddpm",))}
    out = ["| dataset | sampler | model calls | FD (real floor) | precision (real) | recall (real) | class accuracy "
           "| n |" + (" command |" if commands else ""),
           "|---|---|---|---|---|---|---|---|" + ("---|" if commands else "")]
    for r in sorted(rows, key=lambda r: (DATASETS.index(r["dataset"]), order[r["sampler"]], r["nfe"])):
        out.append(f"| {r['dataset']} | {r['sampler']} | {r['nfe']} | {_fd(r)} ({r['fd_real_floor']:.2f}) "
                   f"| {r['precision']:.3f} ({r['precision_real']:.3f}) | {r['recall']:.3f} ({r['recall_real']:.3f}) "
                   f"| {r['class_accuracy']:.1%} | {r['num']} |"
                   + (f" `{r['command']}` |" if commands else ""))
    return out


def figure(rows: list[dict]):
    """One row of panels per dataset (FD, precision, recall, class accuracy against model calls, one line
    per sampler; DDPM's 1000 calls dashed, the real-data floor dotted; FD's error bars are two of its
    half-sampling standard deviations). Returns the figure."""
    datasets = [d for d in DATASETS if any(r["dataset"] == d for r in rows)]
    fig, axes = plt.subplots(len(datasets), len(METRICS), figsize=(13, 3 * len(datasets)), squeeze=False)
    for row_axes, dataset in zip(axes, datasets):
        mine = [r for r in rows if r["dataset"] == dataset]
        for ax, (key, label) in zip(row_axes, METRICS):
            for sampler, style in zip(SAMPLERS, ("o-", "x:", "s-", "^-")):
                pts = sorted((r["nfe"], r[key], 2 * r["fd_std"] if key == "fd" and "fd_std" in r else None)
                             for r in mine if r["sampler"] == sampler)
                if pts:
                    x, y, err = zip(*pts)
                    err = None if None in err else err
                    ax.errorbar(x, y, yerr=err, fmt=style, label=sampler, ms=4, capsize=2)
            for r in (r for r in mine if r["sampler"] == "ddpm"):
                ax.axhline(r[key], ls="--", c="gray", label=f"ddpm ({r['nfe']} calls)")
            if key == "fd":
                ax.axhline(mine[0]["fd_real_floor"], ls=":", c="k", label="real-data floor")
                ax.set_yscale("log")
                ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1, 2, 5)))  # 5, 10, 20, 50, ...
                ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
                ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set_xscale("log")
            ax.minorticks_off()
            ax.set_xticks(BUDGETS, [str(b) for b in BUDGETS])
            ax.set_xlabel("model calls")
            ax.set_title(f"{dataset}: {label}", fontsize=10)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def targets(rows: list[dict], dataset: str = "mnist") -> str:
    """The sweep's targets (stated for MNIST; the same comparison for any dataset): DPM-Solver++ 2M with
    10 model calls reaches an FD no worse than DDIM with 20 calls, and within 10% of DDPM with all T
    calls (same guidance and sample count). "No worse" is chapter 08's rule (claims.verdict): not
    measurably worse. Says which rows are missing or have no spread."""
    mine = {(r["sampler"], r["nfe"]): r for r in rows if r["dataset"] == dataset}
    dpm, ddim = mine.get(("dpmpp2m", 10)), mine.get(("ddim", 20))
    ddpm = next((r for (s, _), r in mine.items() if s == "ddpm"), None)
    if not (dpm and ddim):
        return f"{dataset}: DPM-Solver++ 2M at 10 calls and DDIM at 20 calls not measured yet."
    if dpm.get("fd_std") is None or ddim.get("fd_std") is None:
        return f"{dataset}: the rows have no FD spread, so the targets cannot be judged."
    found = verdict(measure(dpm, "fd"), measure(ddim, "fd"), lower_is_better=True)
    said = {"a": "better", "tie": "no measured difference", "b": "measurably worse"}[found]
    text = (f"{dataset} (s = {dpm['guidance']:g}, n = {dpm['num']} each, real-data floor {dpm['fd_real_floor']:.2f}): "
            f"DPM-Solver++ 2M with 10 model calls reaches FD {_fd(dpm)}, DDIM with 20 calls {_fd(ddim)}: {said}, "
            f"so 'no worse' is {'met' if found != 'b' else 'not met'}")
    if ddpm is None:
        return text + "; DDPM with all its steps not measured."
    return (text + f"; DDPM with {ddpm['nfe']} calls {_fd(ddpm)} ({dpm['fd'] / ddpm['fd'] - 1:+.0%}): within 10%, "
            f"{'met' if dpm['fd'] <= 1.1 * ddpm['fd'] else 'not met'}.")
