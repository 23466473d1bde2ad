"""Write the results page's "Train on a laptop" tables and docs/quality_vs_minutes.png from the rows that
scripts/recipe_sweep.py wrote to data/results/recipe_*.json.

    python scripts/recipe_report.py
"""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from diffusion_lab.claims import measure, with_spread  # noqa: E402
from diffusion_lab.results import load_results, replace_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PLOT = ROOT / "docs" / "quality_vs_minutes.png"
LABEL = {"unet": "our U-Net", "minimal": "Yu 2025's minimal U-Net"}


def minutes_table(rows: list[dict]) -> list[str]:
    out = ["| model | dataset | minutes | steps | images/s | n | class accuracy ± std | FD ± std (floor) "
           "| no `--clip` | command |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["dataset"] != "mnist", r["model"] != "unet", r["minutes"])):
        reused = r.get("trained_as", "") != r["name"].replace(" ", "_")
        minutes = f"{r['minutes']:g}" + (f" (the quality sweep's `{r['trained_as']}`: same settings)" if reused else "")
        out.append(f"| {LABEL[r['model']]} | {r['dataset']} | {minutes} | {r['steps']} "
                   f"| {r['images_per_s']:.0f} | {r['num']} | **{_acc(r)}** "
                   f"| {_fd(r)} | {_unclipped(r)} | `{r['command']}` |")
    return out


def _acc(r: dict) -> str:
    return with_spread(r, "class_accuracy")  # the binomial spread of n samples (claims.py)


def _fd(r: dict) -> str:
    """FD ± its half-sampling std (floor), or the FD alone, marked, for a row measured before the spread."""
    if "fd_std" not in r:
        return f"{r['fd']:.1f} ({r['fd_real_floor']:.1f}), no spread measured"
    return f"{with_spread(r, 'fd')} ({r['fd_real_floor']:.1f})"


def _unclipped(r: dict) -> str:
    u = r.get("unclipped")
    return f"{u['class_accuracy']:.1%}, FD {u['fd']:.0f}" if u else "-"


def quality_table(rows: list[dict]) -> list[str]:
    out = ["| variant | setting | steps | images/s | n | class accuracy ± std | FD ± std (floor) "
           "| final training loss* |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        change = ", ".join(f"{k}={v}" for k, v in r["change"].items() if r["base"].get(k) != v) or "the base recipe"
        out.append(f"| {r['name']} | `{change}` | {r['steps']} | {r['images_per_s']:.0f} | {r['num']} | {_acc(r)} "
                   f"| {_fd(r)} | {r['final_loss']:.4f} |")
    return out


def throughput_table(rows: list[dict]) -> list[str]:
    base = rows[0]["images_per_s"]
    out = ["| training step (one change from the first row) | images/s | ratio |", "|---|---|---|"]
    for r in rows:
        extra = f" (+{r['compile_seconds']:.0f} s to compile)" if "compile_seconds" in r else ""
        out.append(f"| {r['name']}{extra} | {r['images_per_s']:.1f} | {r['images_per_s'] / base:.2f} |")
    return out


def plot(rows: list[dict]) -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3))
    for model, marker in (("unet", "o-"), ("minimal", "s--")):
        pts = sorted((r["minutes"], measure(r, "class_accuracy"), r["fd"], r.get("fd_std", 0.0)) for r in rows
                     if r["model"] == model and r["dataset"] == "mnist")
        if pts:
            m, acc, fd, fd_std = zip(*pts)
            a1.errorbar(m, [100 * a.value for a in acc], yerr=[200 * a.std for a in acc], fmt=marker, capsize=3,
                        label=LABEL[model])
            a2.errorbar(m, fd, yerr=[2 * s for s in fd_std], fmt=marker, capsize=3, label=LABEL[model])
    floor = next(r["fd_real_floor"] for r in rows if r["dataset"] == "mnist")
    a2.axhline(floor, color="k", ls=":", lw=0.8, label="real-data floor")
    a1.axhline(90, color="gray", lw=0.8, ls=":")
    a1.set(xlabel="CPU minutes of training", ylabel="class accuracy (%), ± 2 std", title="MNIST, DDIM 20, s = 3",
           ylim=(0, 100))
    a2.set(xlabel="CPU minutes of training", ylabel="FD (lower is better)", yscale="log",
           title="Fréchet distance, ± 2 std (half-sampling)")
    for ax in (a1, a2):
        ax.set_xlim(0, 10.5)
        ax.set_xticks([0, 3, 10])
    a1.legend(fontsize=8)
    a2.legend(fontsize=8)
    fig.tight_layout()
    PLOT.parent.mkdir(exist_ok=True)
    fig.savefig(PLOT, dpi=90)


def main() -> None:
    minutes, quality, throughput = (load_results(f"recipe_{part}") for part in ("minutes", "quality", "throughput"))
    lines = ["**Quality against training minutes** (`python scripts/recipe_sweep.py minutes`; evaluated with "
             "`python -m diffusion_lab evaluate --checkpoint CKPT --sampler ddim --steps 20 --guidance 3 --clip "
             "--num 1000`):",
             "", *minutes_table(minutes), "", f"![quality against training minutes]({PLOT.name})", "",
             "**Every choice, measured** (`python scripts/recipe_sweep.py quality`): each row trains for "
             f"{quality[0]['minutes']:g} minutes of wall time on the full MNIST training set (rows marked in "
             "data/results/recipe_quality.json as remeasured were trained again for the steps that budget gave "
             "them, to measure the FD's spread) and is evaluated on "
             f"{quality[0]['num']} guided samples (DDIM 20, s = 3, `--clip`). The base recipe is width 16 with the "
             "plain loss of eq. 14, otherwise `TrainConfig`'s defaults; each row changes what its setting column says. "
             "One seed each.", "", *quality_table(quality), "",
             "*The mean of the last 100 steps' loss: comparable between rows only with the same loss weighting and "
             "prediction target.", "",
             "**Speed of one training step** (`python scripts/recipe_sweep.py throughput`; each row changes one "
             "thing from the first):", "", *throughput_table(throughput), ""]
    plot(minutes)
    replace_section(ROOT / "docs" / "results.md", "recipe", "\n".join(lines))  # the results page
    print(f"wrote docs/results.md's recipe tables and {PLOT}")


if __name__ == "__main__":
    main()
