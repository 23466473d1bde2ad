"""Speed, measured: `python -m diffusion_lab bench`.

Prints training throughput (images/s) and achieved GFLOP/s of the minimal and the default U-Net,
beside the machine's own measured matmul ceiling (fp32 and bf16) and the ratio between them, then
sampling throughput for DDPM and DDIM. FLOPs are counted by torch.utils.flop_counter (a
multiply-add = 2 FLOPs), for one forward + backward pass.
"""

from __future__ import annotations

import json
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from .models import build_model
from .samplers import sample
from .schedules import make_schedule


def _timeit(fn, reps: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def matmul_ceiling(dtype=torch.float32, n: int = 1024, reps: int = 10) -> float:
    """GFLOP/s of a large square matmul: what this CPU (or GPU) can do at best."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    return 2 * n**3 / _timeit(lambda: a @ b, reps) / 1e9


def train_step_fn(model, batch: int, amp: bool):
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, model.in_channels, model.image_size, model.image_size)
    t = torch.randint(0, 1000, (batch,))
    y = torch.randint(0, model.num_classes + 1, (batch,)) if model.num_classes else None

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            out = model(x, t, y)
        loss = F.mse_loss(out.float(), x)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def bench(batch: int = 64, reps: int = 5, sample_num: int = 16, ddim_steps: int = 20, ddpm_T: int = 100) -> dict:
    out = {"threads": torch.get_num_threads(), "batch": batch}
    out["matmul_gflops_fp32"] = round(matmul_ceiling(torch.float32), 1)
    out["matmul_gflops_bf16"] = round(matmul_ceiling(torch.bfloat16), 1)
    for name in ("minimal", "unet"):
        model = build_model(name, image_size=28, in_channels=1, num_classes=10)
        for amp in (False, True):
            step = train_step_fn(model, batch, amp)
            flops = count_flops(train_step_fn(model, batch, False))  # same arithmetic either way
            sec = _timeit(step, reps)
            peak = out["matmul_gflops_bf16" if amp else "matmul_gflops_fp32"]
            gflops = flops / sec / 1e9
            out[f"train_{name}_{'bf16' if amp else 'fp32'}"] = {
                "images_per_s": round(batch / sec, 1), "gflops": round(gflops, 1),
                "fraction_of_matmul_ceiling": round(gflops / peak, 2), "gflop_per_image": round(flops / batch / 1e9, 3),
            }
    model = build_model("unet", image_size=28, in_channels=1, num_classes=10).eval()
    sched = make_schedule("linear", 1000)
    t0 = time.perf_counter()
    sample(model, sched, sample_num, sampler="ddim", steps=ddim_steps, progress=False)
    ddim = time.perf_counter() - t0
    small = make_schedule("linear", ddpm_T)
    t0 = time.perf_counter()
    sample(model, small, sample_num, sampler="ddpm", progress=False)
    per_step = (time.perf_counter() - t0) / ddpm_T
    out["sample_ddim_images_per_s"] = {f"{ddim_steps}_steps": round(sample_num / ddim, 2)}
    out["sample_ddpm_images_per_s"] = {"1000_steps": round(sample_num / (per_step * 1000), 3)}
    out["ddim_speedup_over_ddpm"] = round(per_step * 1000 / ddim, 1)
    return out


def main() -> None:
    r = bench()
    print(json.dumps(r, indent=2))
    for key in ("train_minimal_fp32", "train_minimal_bf16", "train_unet_fp32", "train_unet_bf16"):
        v = r[key]
        print(f"{key:20s} {v['images_per_s']:7.1f} img/s  {v['gflops']:6.1f} GFLOP/s  "
              f"= {v['fraction_of_matmul_ceiling']:.2f} x matmul ceiling")
