"""Which training recipe gives the best model per CPU minute? Every choice, measured.

    DIFFUSION_LAB_DATA=/path/to/full/data python scripts/recipe_sweep.py throughput
    DIFFUSION_LAB_DATA=... python scripts/recipe_sweep.py quality [VARIANT ...]   (default: all)
    DIFFUSION_LAB_DATA=... python scripts/recipe_sweep.py minutes [RUN ...]       (default: all)

- throughput: training images/s of one train step for each speed choice (width, depth, attention,
  batch, bf16 autocast, channels_last, threads, torch.compile and its compile time).
- quality: each variant changes ONE setting of BASE, trains for QUALITY_MINUTES of wall time on the
  full MNIST training set, then is evaluated like `python -m diffusion_lab evaluate --sampler ddim
  --steps 20 --guidance 3 --clip --num 500` (class accuracy by the MNIST classifier, FD).
- minutes: quality against training minutes for both architectures (MNIST), and the 10-minute
  Fashion-MNIST runs, exactly as `python -m diffusion_lab train ... --minutes M` would train them.

Rows go to data/results/recipe_<part>.json as they finish (a re-run skips rows already there, so the
sweep can be stopped and continued). `--remeasure` (quality, minutes) trains the rows measured before
FD had a spread again for their recorded number of steps and evaluates them with it.
Run it alone on the machine: two torch jobs slow each other.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import sys
import time
from pathlib import Path

import torch

from diffusion_lab.bench import cpu_name, timeit, train_step_fn
from diffusion_lab.checkpoints import atomic_write, load_checkpoint, load_into, load_train_state, read_config
from diffusion_lab.data import load_data
from diffusion_lab.evaluate import evaluate_model
from diffusion_lab.models import build_model
from diffusion_lab.results import append_result, load_results, save_results
from diffusion_lab.schedules import make_schedule
from diffusion_lab.settings import autocast_dtype
from diffusion_lab.training import TrainConfig, train

RUNS = Path(__file__).resolve().parent.parent / "runs" / "recipe_sweep"  # checkpoints, ignored by git
QUALITY_MINUTES = 3.0
QUALITY_NUM = 500

# The width was decided by the throughput table (width 32 runs at 88 images/s on the AVX2 CPU, 2.6x
# slower than width 16; width 48 at 40). BASE is the recipe before this sweep (loss_weighting
# "simple") at width 16; each variant changes one thing from it. Decided by the throughput table
# alone, not trained here: batch 128 (slower per image, and half the steps) and channels_last /
# torch.compile (no faster). EMA is measured by evaluating the raw weights of a run.
BASE = {"base_channels": 16, "loss_weighting": "simple"}
VARIANTS = {
    "width 16": BASE,
    **{name: BASE | change for name, change in {
        "W16 lr 2e-3": {"lr": 2e-3},
        "W16 lr 4e-3": {"lr": 4e-3},
        "W16 batch 32": {"batch_size": 32},
        "W16 no attention": {"attention": False},
        "W16 2 levels (28, 14)": {"channel_mults": (1, 2)},
        "W16 cosine schedule": {"schedule": "cosine"},
        "W16 min-SNR-5 weighting": {"loss_weighting": "min_snr"},
        "W16 v-prediction": {"prediction": "v"},
    }.items()},
    # the winner again with another seed: how far apart two seeds of one recipe land
    "W16 min-SNR-5 weighting, seed 1": BASE | {"loss_weighting": "min_snr", "seed": 1},
}
ALSO_RAW = {"W16 lr 2e-3"}  # also evaluate the raw weights: what the EMA is worth

# (name, dataset, model, minutes), the most wanted first. A finished run of identical settings is
# reused (the 3-minute U-Net run is the quality sweep's "W16 min-SNR-5 weighting").
MINUTE_RUNS = [
    (f"{model} {dataset} {m:g} min", dataset, model, m)
    for dataset, model, m in [("mnist", "unet", 10), ("mnist", "unet", 3), ("fashion_mnist", "unet", 10),
                              ("mnist", "minimal", 10), ("mnist", "minimal", 3)]
]


def _load(part: str) -> list[dict]:
    return load_results(f"recipe_{part}")


def _append(part: str, row: dict) -> None:
    append_result(f"recipe_{part}", row)
    print(json.dumps(row), flush=True)


AMP = autocast_dtype(torch.device("cpu")) is not None  # bf16 autocast only where this CPU has native bf16


def _images_per_s(model, batch=64, amp=AMP, reps=8, channels_last=False) -> float:
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return batch / timeit(train_step_fn(model, batch, amp, channels_last=channels_last), reps)


def throughput() -> None:
    def unet(**kw):
        return build_model("unet", image_size=28, in_channels=1, num_classes=10, **kw)

    def minimal():
        return build_model("minimal", image_size=28, in_channels=1, num_classes=10)

    base = {"base_channels": 32, "channel_mults": [1, 2, 2], "num_res_blocks": 1, "attention": True}
    rows = [
        ("base: width 32, batch 64, 2 threads, bf16 only where native (not on this CPU)",
         lambda: _images_per_s(unet(**base))),
        ("float32 forced", lambda: _images_per_s(unet(**base), amp=False)),
        ("bf16 autocast", lambda: _images_per_s(unet(**base), amp=True, reps=3)),
        ("width 16", lambda: _images_per_s(unet(**base | {"base_channels": 16}))),
        ("width 24", lambda: _images_per_s(unet(**base | {"base_channels": 24}))),
        ("width 48", lambda: _images_per_s(unet(**base | {"base_channels": 48}))),
        ("2 res blocks per level", lambda: _images_per_s(unet(**base | {"num_res_blocks": 2}))),
        ("no attention", lambda: _images_per_s(unet(**base | {"attention": False}))),
        ("2 levels (28, 14)", lambda: _images_per_s(unet(**base | {"channel_mults": [1, 2]}))),
        ("batch 32", lambda: _images_per_s(unet(**base), batch=32, reps=16)),
        ("batch 128", lambda: _images_per_s(unet(**base), batch=128, reps=4)),
        ("channels_last", lambda: _images_per_s(unet(**base), channels_last=True)),
        ("1 thread", lambda: _one_thread(lambda: _images_per_s(unet(**base)))),
        ("paper's minimal U-Net", lambda: _images_per_s(minimal())),
        ("paper's minimal U-Net, float32", lambda: _images_per_s(minimal(), amp=False)),
        ("paper's minimal U-Net, bf16 autocast", lambda: _images_per_s(minimal(), amp=True, reps=3)),
    ]
    done = {r["name"] for r in _load("throughput")}
    for name, fn in rows:
        if name not in done:
            torch.manual_seed(0)
            _append("throughput", {"name": name, "images_per_s": round(fn(), 1),
                                   "threads": 1 if name == "1 thread" else torch.get_num_threads(),
                                   "cpu": torch.backends.cpu.get_cpu_capability(), "default_bf16": AMP})
    if "torch.compile" not in done:
        _append("throughput", {"name": "torch.compile", **_compiled(unet(**base))})


def _one_thread(fn):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def _compiled(model) -> dict:
    """Compile time (first steps) and the steady speed after it: does it pay back within 10 minutes?"""
    step = train_step_fn(torch.compile(model), 64, AMP)
    t0 = time.perf_counter()
    step()
    step()
    compile_s = time.perf_counter() - t0
    return {"images_per_s": round(64 / timeit(step, 8, warmup=0), 1), "compile_seconds": round(compile_s, 1),
            "threads": torch.get_num_threads()}


def _train_and_evaluate(cfg: TrainConfig, num: int, data, name: str, also_raw=False, also_unclipped=False) -> dict:
    """Train (or reuse this sweep's finished checkpoint of the same run), then evaluate with DDIM 20,
    guidance 3 and x_0 clipped to [-1, 1] (`--clip`: diffusers' clip_sample with the clipped model output)."""
    out = RUNS / (name.replace(" ", "_").replace("(", "").replace(")", "").replace("=", "") + ".safetensors")
    same = [p.with_suffix(".safetensors") for p in sorted(RUNS.glob("*.json")) if _finished(p, cfg)]
    if same:  # this run, or another of identical settings, finished already: evaluate it again
        out = out if out in same else same[0]
        model, _, saved = load_checkpoint(out)
        raw_model = copy.deepcopy(model)  # the raw (not EMA) weights live in the resume state
        load_into(raw_model, {k[6:]: v for k, v in load_train_state(out).items() if k.startswith("model.")})
        t = saved["training"]
        run = {"steps": t["steps_done"], "seconds": t["seconds"], "images_per_s": t["images_per_s"],
               "final_loss": t["final_loss"]}
    else:
        result = train(cfg, out=out, data=data, device=torch.device("cpu"), progress=False)
        model, raw_model = result.model, result.raw_model.eval()
        run = {"steps": result.step, "seconds": round(result.seconds, 1),
               "images_per_s": round(result.images_per_second, 1),
               "final_loss": round(sum(result.losses[-100:]) / 100, 4)}
        _mark_finished(out, run)
    schedule = make_schedule(cfg.schedule, cfg.T)

    def evaluate(net, clip=True):
        r = evaluate_model(net, schedule, cfg.dataset, num=num, steps=20, guidance=3.0, clip_x0=clip)
        return {k: r[k] for k in ("class_accuracy", "fd", "fd_std", "fd_spread", "fd_real_floor",
                                  "fd_real_floor_std", "num", "guidance", "clip_x0")}

    row = {**run, **evaluate(model)}
    if also_raw:
        row["raw_weights"] = evaluate(raw_model)
    if also_unclipped:
        row["unclipped"] = evaluate(model, clip=False)
    return {"trained_as": out.stem, **row}


def _finished(out: Path, cfg: TrainConfig) -> bool:
    config = read_config(out)
    t = config["training"]
    if config["dataset"] != cfg.dataset:
        return False
    same = all(t.get(k) == (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg).items()
               if k != "dataset")  # dataset: stored outside "training"
    return same and "final_loss" in t


def _mark_finished(out: Path, run: dict) -> None:
    """Record the run's numbers in its checkpoint's JSON, so a re-evaluation needs no re-training."""
    path = out.with_suffix(".json")
    config = json.loads(path.read_text())
    config["training"] |= {k: run[k] for k in ("images_per_s", "final_loss")}
    text = json.dumps(config, indent=1)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def remeasure(part: str, row: dict, cfg: TrainConfig, data, num: int, **evaluate_options) -> None:
    """A row measured before FD had a spread: train the same recipe again for the row's recorded number
    of steps (its wall-time budget on the CPU that timed it, so other jobs on this machine cannot change
    the model), evaluate it with the spread, and keep the row's timing. The row stays in its place."""
    cfg = dataclasses.replace(cfg, steps=row["steps"], minutes=None)
    new = _train_and_evaluate(cfg, num, data, row["name"] + " steps " + str(row["steps"]), **evaluate_options)
    timing = {k: row[k] for k in ("steps", "seconds", "images_per_s") if k in row}
    merged = {**row, **new, **timing, "remeasured": (
        f"trained again for the recorded {row['steps']} steps on {cpu_name()} to measure the FD spread; "
        "steps, seconds and images/s are the original timed run's")}
    save_results(f"recipe_{part}", [merged if r["name"] == row["name"] else r for r in _load(part)])
    print(json.dumps(merged), flush=True)


def quality(names: list[str], again=False) -> None:
    data = load_data("mnist", "train")
    rows = {r["name"]: r for r in _load("quality")}
    for name in names or VARIANTS:
        cfg = TrainConfig(dataset="mnist", conditional=True, steps=None, minutes=QUALITY_MINUTES, **VARIANTS[name])
        if again and name in rows and "fd_std" not in rows[name]:
            remeasure("quality", rows[name], cfg, data, QUALITY_NUM, also_raw=name in ALSO_RAW)
        if name in rows:
            continue
        _append("quality", {"name": name, "change": {k: list(v) if isinstance(v, tuple) else v
                                                    for k, v in VARIANTS[name].items()}, "base": BASE,
                            "minutes": QUALITY_MINUTES,
                            "data_source": data.record,
                            **_train_and_evaluate(cfg, QUALITY_NUM, data, name, name in ALSO_RAW)})


def minutes(names: list[str], again=False) -> None:
    rows = {r["name"]: r for r in _load("minutes")}
    for name, dataset, model, m in MINUTE_RUNS:
        if names and name not in names:
            continue
        data = load_data(dataset, "train")
        cfg = TrainConfig(dataset=dataset, model=model, conditional=True, steps=None, minutes=m)
        if again and name in rows and "fd_std" not in rows[name]:
            remeasure("minutes", rows[name], cfg, data, 1000, also_unclipped=m == 10)
        if name in rows:
            continue
        cmd = f"python -m diffusion_lab train --dataset {dataset} --model {model} --conditional --minutes {m:g}"
        _append("minutes", {"name": name, "dataset": dataset, "model": model, "minutes": m, "command": cmd,
                            "data_source": data.record,
                            **_train_and_evaluate(cfg, 1000, data, name, also_unclipped=m == 10)})


if __name__ == "__main__":
    torch.set_num_threads(2)
    part, rest = sys.argv[1], [a for a in sys.argv[2:] if a != "--remeasure"]
    again = "--remeasure" in sys.argv
    {"throughput": lambda: throughput(), "quality": lambda: quality(rest, again),
     "minutes": lambda: minutes(rest, again)}[part]()
