"""Quality against model calls for every sampler on the shipped class-conditional models (chapter 09,
the results page's "Faster samplers" table and docs/samplers.png).

    python scripts/sampler_sweep.py mnist fashion_mnist     # sample and measure (about an hour of CPU)
    python scripts/sampler_sweep.py amp                     # does bf16 autocast change FD? (data/results/amp.json)
    python scripts/sampler_sweep.py report                  # results-page table + plot from the JSON

Each row is `python -m diffusion_lab evaluate` output for one sampler and budget (5, 10, 20, 50 model
calls; Heun's odd budgets: 2N - 1), plus DDPM with all T steps as the reference, appended to
data/results/samplers.json as soon as it is measured: an interrupted sweep resumes where it stopped.
"""

import argparse
import json
import sys
from pathlib import Path

import matplotlib

from diffusion_lab.checkpoints import load_pretrained
from diffusion_lab.course.sampler_sweep import BUDGETS, DATASETS, SAMPLERS, figure, table, targets
from diffusion_lab.evaluate import FD_SPREAD, evaluate_model
from diffusion_lab.results import append_result, load_results, save_results
from diffusion_lab.solvers import steps_for_calls

ROOT = Path(__file__).resolve().parent.parent
PLOT = ROOT / "docs" / "samplers.png"
README = ROOT / "docs" / "results.md"  # the results page; the README links to it
CHECKPOINTS = {"mnist": "mnist_cfg", "fashion_mnist": "fashion_mnist_cfg"}
MARKERS = ("<!-- samplers:start -->", "<!-- samplers:end -->")


def command(name: str, sampler: str, steps: int, spacing: str, guidance, num: int) -> str:
    cmd = f"python -m diffusion_lab evaluate --checkpoint data/checkpoints/{name}.safetensors --sampler {sampler}"
    cmd += "" if sampler == "ddpm" else f" --steps {steps} --spacing {spacing}"
    cmd += f" --guidance {1 if guidance is None else guidance:g}"  # 1 = unguided; omitted, the recorded scale
    return cmd + f" --num {num}"


def sweep(dataset: str, num: int, guidance: float, spacing: str) -> None:
    name = CHECKPOINTS[dataset]
    model, schedule, config = load_pretrained(name)
    # The target rows first (DPM-Solver++ at 10 calls, DDIM at 20), then the rest, and DDPM with
    # all T steps (as long as the rest together) last.
    target = [("dpmpp2m", 10), ("ddim", 20)]
    plan = target + [(s, steps_for_calls(s, b)) for s in SAMPLERS for b in BUDGETS if (s, b) not in target]
    plan.append(("ddpm", schedule.T))
    for sampler, steps in plan:
        cmd = command(name, sampler, steps, spacing, guidance, num)
        if any(r["command"] == cmd and r.get("weights_sha256") == config["weights_sha256"]
               and r.get("fd_spread") == FD_SPREAD for r in load_results("samplers")):
            continue  # measured already, on these very weights, with today's FD spread
        walk = {} if sampler == "ddpm" else {"steps": steps, "spacing": spacing}  # DDPM walks all T
        r = evaluate_model(model, schedule, dataset, num=num, sampler=sampler, guidance=guidance, amp=True, **walk)
        row = {"dataset": dataset, "checkpoint": name, **r, "weights_sha256": config["weights_sha256"],
               "training_steps": config["training"]["steps_done"], "command": cmd}
        print(json.dumps(row), flush=True)
        append_result("samplers", row, key="command")  # at once: an interrupted sweep resumes here


def amp_check(num: int, guidance: float, spacing: str) -> None:
    """FD with bf16 autocast against float32 on the same seeds, and float32 on other seeds: the change
    bf16 makes, beside the change a new draw of samples makes (the noise of the measurement)."""
    model, schedule, config = load_pretrained("mnist_cfg")
    rows = []
    for amp, seed in ((False, 0), (True, 0), (False, 100_000)):
        r = evaluate_model(model, schedule, "mnist", num=num, sampler="ddim", steps=20, spacing=spacing,
                           guidance=guidance, amp=amp, seed=seed)
        rows.append({"checkpoint": "mnist_cfg", "seed": seed, **r, "weights_sha256": config["weights_sha256"],
                     "command": command("mnist_cfg", "ddim", 20, spacing, guidance, num)
                     + f" --seed {seed}" + ("" if amp else " --no-amp")})
        print(json.dumps(rows[-1]), flush=True)
    save_results("amp", rows)


def amp_sentence(rows: list[dict]) -> list[str]:
    """The amp check's rows (float32 and bf16 on the same seeds, float32 on other seeds) in one sentence."""
    if len(rows) != 3:
        return []
    f32, bf16, other = rows
    return [f"**bf16 autocast leaves quality unchanged** (`python scripts/sampler_sweep.py amp`, "
            f"data/results/amp.json; MNIST, DDIM 20, s = {f32['guidance']:g}, {f32['num']} samples): FD "
            f"{f32['fd']:.2f} in float32 and {bf16['fd']:.2f} with bf16 autocast on the same seeds "
            f"(a change of {bf16['fd'] - f32['fd']:+.2f}), against {other['fd']:.2f} in float32 on other seeds "
            f"({other['fd'] - f32['fd']:+.2f}: what a new draw of samples changes); class accuracy "
            f"{f32['class_accuracy']:.1%}, {bf16['class_accuracy']:.1%} and {other['class_accuracy']:.1%}; "
            f"sampling {f32['sample_seconds']:.0f} s, {bf16['sample_seconds']:.0f} s and "
            f"{other['sample_seconds']:.0f} s (one thread, shared machine).", ""]


def report() -> None:
    rows = load_results("samplers")
    first = rows[0]
    head = (f"**Quality against model calls** (`python scripts/sampler_sweep.py mnist fashion_mnist`, then "
            f"`python scripts/sampler_sweep.py report`): {first['num']} class-balanced samples per row, guidance "
            f"s = {first['guidance']:g}, {first['spacing']} spacing, bf16 autocast (`amp`). FD ± its half-sampling "
            "standard deviation where the row has one (rows marked \"(bootstrap)\" were measured earlier, by "
            "resampling with replacement); sampling times are left out: they were taken on machines shared with "
            "other jobs. Precision and recall (Kynkaanniemi et al. 2019, k = 3) against as many real test "
            "images; in brackets, what held-out real images score.")
    aims = [f"- {targets(rows, d)}" for d in DATASETS if any(r["dataset"] == d for r in rows)]
    planned = len(SAMPLERS) * len(BUDGETS) + 1  # every sampler at every budget, and DDPM
    counts = {d: sum(r["dataset"] == d for r in rows) for d in DATASETS}
    if any(n < planned for n in counts.values()):
        aims.append("- Measured so far: " + ", ".join(f"{d} {n} of {planned} rows" for d, n in counts.items())
                    + "; the sweep resumes where it stopped (`python scripts/sampler_sweep.py mnist fashion_mnist`).")
    block = [MARKERS[0], head, "", *table(rows), "", *amp_sentence(load_results("amp")),
             "**Targets** (set for MNIST; Fashion-MNIST for comparison):", "", *aims, "",
             "![quality against model calls](samplers.png)", MARKERS[1]]
    text = README.read_text()
    if MARKERS[0] in text:
        start, end = text.index(MARKERS[0]), text.index(MARKERS[1]) + len(MARKERS[1])
        text = text[:start] + "\n".join(block) + text[end:]
        README.write_text(text)
    else:
        print("\n".join(block))
    matplotlib.use("Agg")
    PLOT.parent.mkdir(exist_ok=True)
    figure(rows).savefig(PLOT, dpi=110)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("parts", nargs="+", choices=[*CHECKPOINTS, "amp", "report"])
    p.add_argument("--num", type=int, default=1000)
    p.add_argument("--guidance", type=float, default=1.0)
    p.add_argument("--spacing", default="trailing")
    a = p.parse_args()
    for part in a.parts:
        if part == "report":
            report()
        elif part == "amp":
            amp_check(a.num, a.guidance, a.spacing)
        else:
            sweep(part, a.num, a.guidance, a.spacing)
    sys.exit(0)
