"""The measurements of chapter 14 (the score and the reverse SDE), each appended row by row to
data/results/ as soon as it is measured, so an interrupted run resumes where it stopped.

    python scripts/sde_compare.py sweep mnist       # stochastic samplers at 10-100 model calls (FD, n = 1000)
    python scripts/sde_compare.py sweep fashion_mnist
    python scripts/sde_compare.py inpaint           # complete the lower half of 1000 real MNIST test digits
    python scripts/sde_compare.py report            # the results page's section, from the rows

The sweep's rows are `python -m diffusion_lab evaluate` output (data/results/sde.json); the ODE samplers'
rows at the same settings are chapter 09's (data/results/samplers.json). Inpainting needs the full MNIST
test set under $DIFFUSION_LAB_DATA (data/results/inpaint.json).
"""

import argparse
import json
import time

import torch

from diffusion_lab.bench import cpu_name
from diffusion_lab.checkpoints import load_pretrained
from diffusion_lab.claims import check
from diffusion_lab.classifier import features_and_predictions, load_classifier
from diffusion_lab.course import sde_sweep
from diffusion_lab.course.sde_sweep import BUDGETS, INPAINT, STOCHASTIC
from diffusion_lab.data import load_data, to_uint8
from diffusion_lab.evaluate import evaluate_model
from diffusion_lab.results import append_result, load_results, replace_section
from diffusion_lab.solvers import steps_for_calls

CHECKPOINTS = {"mnist": "mnist_cfg", "fashion_mnist": "fashion_mnist_cfg"}


def machine() -> str:
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def sweep_command(name, sampler, steps, options, num):
    cmd = f"python -m diffusion_lab evaluate --checkpoint {name} --sampler {sampler} --steps {steps}"
    cmd += "".join(f" --{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f" --{k.replace('_', '-')} {v}"
                   for k, v in options.items())
    return cmd + f" --guidance 1 --num {num}"


def sweep(dataset: str, num: int, budgets) -> None:
    name = CHECKPOINTS[dataset]
    model, schedule, config = load_pretrained(name)
    done = {r["command"] for r in load_results("sde") if r.get("weights_sha256") == config["weights_sha256"]}
    for calls in budgets:
        for label, sampler, options in STOCHASTIC:
            steps = steps_for_calls(sampler, calls)
            cmd = sweep_command(name, sampler, steps, options, num)
            if cmd in done:
                continue
            r = evaluate_model(model, schedule, dataset, num=num, sampler=sampler, steps=steps, guidance=1.0,
                               amp=True, **options)
            row = {"dataset": dataset, "checkpoint": name, "label": label, **r,
                   "weights_sha256": config["weights_sha256"],
                   "training_steps": config["training"]["steps_done"], "machine": machine(), "command": cmd}
            print(json.dumps(row), flush=True)
            append_result("sde", row, key="command")


def inpaint(num: int) -> None:
    from diffusion_lab.edit import inpaint as inpaint_images
    from diffusion_lab.edit import inpaint_model_calls

    model, schedule, config = load_pretrained("mnist_cfg")
    test = load_data("mnist", "test")
    if len(test) < num:
        raise SystemExit(f"the MNIST test set has {len(test)} images here; {num} are needed ($DIFFUSION_LAB_DATA).")
    clf = load_classifier("mnist")[0]
    images, labels = test.images[:num], test.labels[:num]
    mask = torch.ones(1, 1, 28, 28)
    mask[..., 14:, :] = 0  # keep the upper half, generate the lower half
    for case in INPAINT:
        cmd = ("python scripts/sde_compare.py inpaint  # " + ", ".join(f"{k} {v}" for k, v in case.items()))
        if any(r["command"] == cmd for r in load_results("inpaint")):
            continue
        t0, outs = time.perf_counter(), []
        for i in range(0, num, 250):
            y = labels[i:i + 250] if case["label"] == "true" else (labels[i:i + 250] + 5) % 10
            outs.append(inpaint_images(model, schedule, images[i:i + 250], mask, y=y, guidance=case["guidance"],
                                       steps=case["steps"], jumps=case["jumps"], jump_length=case["jump_length"],
                                       seed=i))
        seconds, out = time.perf_counter() - t0, torch.cat(outs)
        kept = bool((to_uint8(out)[:, :14] == to_uint8(images)[:, :14]).all())
        asked = labels if case["label"] == "true" else (labels + 5) % 10
        preds = features_and_predictions(clf, out)[1]
        acc = float((preds == asked).float().mean())
        row = {**case, "num": num, "class_accuracy": round(acc, 4),
               "class_accuracy_std": round((acc * (1 - acc) / num) ** 0.5, 4),
               "real_accuracy": round(float((features_and_predictions(clf, images)[1] == labels).float().mean()), 4),
               "kept_half_unchanged": kept,
               "model_calls": inpaint_model_calls(case["steps"], case["jumps"], case["jump_length"]),
               "sample_seconds": round(seconds, 1), "machine": machine(), "command": cmd}
        print(json.dumps(row), flush=True)
        append_result("inpaint", row, key="command")


def report() -> None:
    """docs/results.md's chapter-14 section, between its sde:start and sde:end marks."""
    from pathlib import Path

    rows, painted = load_results("sde") + load_results("samplers"), load_results("inpaint")
    machines = sorted({r["machine"] for r in load_results("sde")})
    out = [f"Measured on {'; '.join(machines)}. Each row: `python -m diffusion_lab evaluate` on the shipped "
           "checkpoint (the command is in data/results/sde.json), 1000 class-balanced unguided (s = 1) samples, "
           "trailing spacing; FD ± its half-sampling standard deviation. The ODE rows are the sampler sweep's "
           "(above). Commands: `python scripts/sde_compare.py sweep mnist`, `... sweep fashion_mnist`.", ""]
    for dataset, title in (("mnist", "MNIST (`mnist_cfg`)"), ("fashion_mnist", "Fashion-MNIST (`fashion_mnist_cfg`)")):
        out += [f"**{title}**", "", *sde_sweep.table(rows, dataset), ""]
    out += [sde_sweep.target(rows) + ".", ""]
    out += ["Inpainting the lower half of the first 1000 MNIST test digits (`python scripts/sde_compare.py "
            "inpaint`, `mnist_cfg`, s = 3), graded by the evaluation classifier:", "",
            "| asked for | n | recognised as asked | kept half unchanged | model calls |", "|---|---|---|---|---|"]
    out += [f"| {'the true class' if r['label'] == 'true' else 'another class (label + 5)'} | {r['num']} | "
            f"{100 * r['class_accuracy']:.1f}% ± {100 * r['class_accuracy_std']:.1f} | {r['kept_half_unchanged']} | "
            f"{r['model_calls']} |" for r in painted]
    out += ["", sde_sweep.inpaint_target(painted) + ".", ""]
    for key in (*sde_sweep.CLAIMS, *sde_sweep.FASHION_CLAIMS, "inpaint_true_beats_other_class"):
        out += [f"<!-- claim: {key} -->", check(key), "<!-- /claim -->", ""]
    replace_section(Path(__file__).resolve().parent.parent / "docs" / "results.md", "sde", "\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("part", choices=["sweep", "inpaint", "report"])
    p.add_argument("dataset", nargs="?", default="mnist", choices=sorted(CHECKPOINTS))
    p.add_argument("--num", type=int, default=None)
    p.add_argument("--calls", type=int, nargs="+", default=list(BUDGETS))
    a = p.parse_args()
    if a.part == "sweep":
        sweep(a.dataset, a.num or 1000, a.calls)
    elif a.part == "report":
        report()
    else:
        inpaint(a.num or 1000)
