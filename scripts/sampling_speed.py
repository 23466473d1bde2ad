"""Sampling speed: guided DDIM-20 of 1000 images with a shipped model, float32 against bf16 autocast,
beside the network's bare forward throughput at the same batch.

    python scripts/sampling_speed.py [--checkpoint mnist_cfg] [--num 1000] [--batch 250]
    python scripts/sampling_speed.py --baseline     # only what the older sample() offered (no amp)

Prints one JSON object. "ratio" = images through the network per second while sampling, divided by
the bare forward pass's images per second at the batch the network sees (2 x batch when guided).
Run it with the whole machine to itself and name the CPU beside its numbers.
"""

import argparse
import json
import time

import torch

from diffusion_lab.checkpoints import load_pretrained
from diffusion_lab.samplers import sample
from diffusion_lab.settings import autocast_dtype


def sampling_seconds(model, schedule, num, batch, guidance, steps, **kw) -> float:
    labels = torch.arange(num) % model.num_classes
    t0 = time.perf_counter()
    for i in range(0, num, batch):
        sample(model, schedule, sampler="ddim", steps=steps, y=labels[i : i + batch], guidance=guidance,
               seed=i, progress=False, **kw)
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="mnist_cfg")
    p.add_argument("--num", type=int, default=1000)
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--guidance", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--baseline", action="store_true", help="time sample() without the new options")
    a = p.parse_args()
    model, schedule, config = load_pretrained(a.checkpoint)
    seen = a.batch * (2 if a.guidance not in (None, 1.0) else 1)  # the batch the network sees
    out = {"checkpoint": a.checkpoint, "width": config["model"]["kwargs"]["base_channels"], "num": a.num,
           "batch": a.batch, "guidance": a.guidance, "steps": a.steps, "threads": torch.get_num_threads(),
           "cpu": torch.backends.cpu.get_cpu_capability()}
    variants = {"float32": None} if a.baseline else {"float32": None, "bf16": autocast_dtype(torch.device("cpu"))}
    for name, dtype in variants.items():
        if name == "bf16" and dtype is None:
            out["bf16"] = "skipped: this CPU has no native bf16"
            continue
        kw = {} if a.baseline else {"amp": dtype is not None}
        seconds = sampling_seconds(model, schedule, a.num, a.batch, a.guidance, a.steps, **kw)
        out[name] = {"sample_seconds": round(seconds, 1), "images_per_s": round(a.num / seconds, 2)}
        if not a.baseline:  # the old code has no forward-pass timer; the network is the same
            from diffusion_lab.bench import forward_images_per_s

            forward = forward_images_per_s(model, seen, dtype, reps=10)
            through = a.num * a.steps * seen / a.batch / seconds
            out[name] |= {"forward_images_per_s": round(forward, 1), "ratio": round(through / forward, 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
