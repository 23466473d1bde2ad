"""Speed, measured: `python -m diffusion_lab bench`.

Prints training throughput (images/s) and achieved GFLOP/s of the minimal and the default U-Net,
beside this CPU's own measured ceiling (the best of a large matmul and a large 3x3 convolution, in
fp32, and in bf16 where the CPU has it natively) and the ratio between them, then sampling throughput
(guided DDIM) beside the bare forward pass at the same batch, as a ratio (1 = the sampler adds nothing
to the network's own cost), and DDIM's speed-up over DDPM. FLOPs are counted by
torch.utils.flop_counter (a multiply-add = 2 FLOPs), for one forward + backward pass. Every tensor is
made on the CPU, except in the last line: the training step of the CIFAR-10 recipe on a CUDA GPU,
measured when there is one and marked as skipped otherwise.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from .data import DATASETS
from .models import build_model, count_parameters
from .samplers import sample
from .schedules import make_schedule
from .settings import autocast_dtype, cpu_has_native_bf16
from .training import TrainConfig


def cpu_name() -> str:
    """This machine's CPU as a speed figure names it: model name, family and model, the vector units that
    decide the speed (AVX-512, native bf16, AMX) and the core count."""
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    info = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()[:30])}
    flags = set(info.get("flags", "").split())
    units = [name for flag, name in (("avx512f", "AVX-512"), ("avx512_bf16", "native bf16"), ("amx_bf16", "AMX"))
             if flag in flags]
    return (f"{info.get('model name', 'unknown CPU')} (family {info.get('cpu family', '?')} model "
            f"{info.get('model', '?')}{', ' + ', '.join(units) if units else ''}), {os.cpu_count()} cores")


def timeit(fn, reps: int, warmup: int = 2) -> float:
    """Seconds per call of fn(), the mean of `reps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps


def matmul_ceiling(dtype=torch.float32, sizes=(512, 1024, 2048), reps: int = 5) -> float:
    """GFLOP/s of the best of a few large square matmuls: near what this CPU can do at best.

    The best of several sizes, not one: a single 1024 x 1024 probe can land below the rate the
    convolutions reach, which made the ratio to it come out above 1.
    """
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
        best = max(best, 2 * n**3 / timeit(lambda a=a, b=b: a @ b, max(2, reps * 1024**3 // n**3)) / 1e9)
    return best


def conv_ceiling(dtype=torch.float32, reps: int = 5) -> float:
    """GFLOP/s of a large 3x3 convolution (64 images, 64 -> 64 channels, 28 x 28): the best case of
    the layer the U-Nets are made of."""
    x = torch.randn(64, 64, 28, 28, dtype=dtype)
    w = torch.randn(64, 64, 3, 3, dtype=dtype)
    flops = 2 * 64 * 64 * 64 * 9 * 28 * 28
    return flops / timeit(lambda: F.conv2d(x, w, padding=1), reps) / 1e9


def train_step_fn(model, batch: int, amp: bool, channels_last: bool = False, device="cpu"):
    device = torch.device(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, model.in_channels, model.image_size, model.image_size, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    t = torch.randint(0, 1000, (batch,), device=device)
    y = torch.randint(0, model.num_classes + 1, (batch,), device=device) if model.num_classes else None

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
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


def default_model(name: str):
    """The model `python -m diffusion_lab train --model NAME` builds for MNIST (TrainConfig's defaults)."""
    return build_model(name, **TrainConfig(model=name).model_kwargs(DATASETS["mnist"]))


def gpu_training(batch: int = 128, reps: int = 20) -> dict | str:
    """Training images/s of the CIFAR-10 recipe's U-Net (TrainConfig(dataset="cifar10")) on CUDA GPU 0,
    bf16 autocast where the GPU has it; a sentence saying it was skipped when there is no CUDA GPU."""
    if not torch.cuda.is_available():
        return "skipped: no CUDA GPU on this machine (run bench where there is one for this line)"
    device = torch.device("cuda")
    cfg = TrainConfig(dataset="cifar10")
    model = build_model(cfg.model, **cfg.model_kwargs(DATASETS["cifar10"])).to(device)
    amp = torch.cuda.is_bf16_supported()
    step = train_step_fn(model, batch, amp, device=device)

    def synced():
        step()
        torch.cuda.synchronize()

    sec = timeit(synced, reps, warmup=3)
    return {"device": torch.cuda.get_device_name(0), "model": "unet, the CIFAR-10 recipe (32x32x3)",
            "batch": batch, "bf16": amp, "images_per_s": round(batch / sec, 1),
            "parameters": count_parameters(model)}


def bench(batch: int = 64, reps: int = 5, sample_num: int = 16, ddim_steps: int = 20, ddpm_T: int = 100) -> dict:
    out = {"threads": torch.get_num_threads(), "batch": batch, "cpu": torch.backends.cpu.get_cpu_capability()}
    native_bf16 = cpu_has_native_bf16()
    out["matmul_gflops_fp32"] = round(matmul_ceiling(torch.float32), 1)
    out["conv_gflops_fp32"] = round(conv_ceiling(torch.float32), 1)
    out["ceiling_fp32"] = max(out["matmul_gflops_fp32"], out["conv_gflops_fp32"])
    precisions = ["fp32"]
    if native_bf16:
        out["matmul_gflops_bf16"] = round(matmul_ceiling(torch.bfloat16), 1)
        out["conv_gflops_bf16"] = round(conv_ceiling(torch.bfloat16), 1)
        out["ceiling_bf16"] = max(out["matmul_gflops_bf16"], out["conv_gflops_bf16"])
        precisions.append("bf16")
    else:
        out["bf16"] = "skipped: no native bfloat16 on this CPU, so training runs in float32 (emulated: ~10x slower)"
    for name in ("minimal", "unet"):
        model = default_model(name)
        flops = count_flops(train_step_fn(model, batch, False))  # the same arithmetic in either precision
        for precision in precisions:
            sec = timeit(train_step_fn(model, batch, precision == "bf16"), reps)
            gflops = flops / sec / 1e9
            out[f"train_{name}_{precision}"] = {
                "images_per_s": round(batch / sec, 1), "gflops": round(gflops, 1),
                "fraction_of_ceiling": round(gflops / out[f"ceiling_{precision}"], 2),
                "gflop_per_image": round(flops / batch / 1e9, 3), "parameters": count_parameters(model),
            }
    model = default_model("unet").eval()
    sched = make_schedule("linear", 1000)
    out["sampling"] = sampling_efficiency(model, sched, batch, ddim_steps, reps=reps)
    small = make_schedule("linear", ddpm_T)
    t0 = time.perf_counter()
    sample(model, small, sample_num, sampler="ddpm", progress=False)
    per_step = (time.perf_counter() - t0) / ddpm_T
    t0 = time.perf_counter()
    sample(model, sched, sample_num, sampler="ddim", steps=ddim_steps, progress=False)
    ddim = time.perf_counter() - t0
    out["sample_ddpm_images_per_s"] = {"1000_steps": round(sample_num / (per_step * 1000), 3)}
    out["ddim_speedup_over_ddpm"] = round(per_step * 1000 / ddim, 1)
    out["gpu_train_cifar10"] = gpu_training()
    return out


def forward_images_per_s(model, batch: int, amp_dtype=None, reps: int = 5) -> float:
    """Images per second through the bare network (inference mode, bf16 autocast when amp_dtype)."""
    x = torch.randn(batch, model.in_channels, model.image_size, model.image_size)
    t = torch.full((batch,), 500)
    y = torch.randint(0, model.num_classes + 1, (batch,)) if model.num_classes else None

    def forward():
        with torch.inference_mode(), torch.autocast("cpu", dtype=amp_dtype, enabled=amp_dtype is not None):
            model(x, t, y)

    return batch / timeit(forward, reps)


def sampling_efficiency(model, schedule, batch: int, steps: int = 20, guidance: float = 3.0, reps: int = 5) -> dict:
    """Guided DDIM of `batch` images (bf16 where native), against the bare forward pass at the batch the
    network sees while sampling (2 x batch when guided): ratio 1 = the sampler adds no overhead."""
    amp_dtype = autocast_dtype(torch.device("cpu"))
    labels = torch.arange(batch) % model.num_classes if model.num_classes else None
    guidance = guidance if labels is not None else None
    seen = batch * (2 if guidance not in (None, 1.0) else 1)
    kw = dict(sampler="ddim", steps=steps, y=labels, guidance=guidance, amp=True, progress=False)
    sample(model, schedule, batch, **kw)  # warm-up
    t0 = time.perf_counter()
    sample(model, schedule, batch, **kw)
    seconds = time.perf_counter() - t0
    forward = forward_images_per_s(model, seen, amp_dtype, reps)
    return {"sampler": "ddim", "steps": steps, "guidance": guidance, "batch": batch,
            "precision": "bf16" if amp_dtype is not None else "fp32", "images_per_s": round(batch / seconds, 2),
            "network_images_per_s": round(seen * steps / seconds, 1), "forward_images_per_s": round(forward, 1),
            "ratio": round(seen * steps / seconds / forward, 2)}


def main() -> None:
    r = bench()
    print(json.dumps(r, indent=2))
    print(f"\nceiling (fp32): {r['ceiling_fp32']} GFLOP/s, the best of a large matmul ({r['matmul_gflops_fp32']}) "
          f"and a large 3x3 convolution ({r['conv_gflops_fp32']}); {r['threads']} threads, {r['cpu']}")
    for key, v in r.items():
        if key.startswith("train_"):
            print(f"{key:20s} {v['images_per_s']:7.1f} img/s  {v['gflops']:6.1f} GFLOP/s  "
                  f"= {v['fraction_of_ceiling']:.2f} x ceiling")
    v = r["sampling"]
    print(f"sampling: guided DDIM {v['steps']} steps (s = {v['guidance']:g}, {v['precision']}), batch {v['batch']}: "
          f"{v['images_per_s']} img/s; the network sees {v['network_images_per_s']} img/s, against "
          f"{v['forward_images_per_s']} img/s in a bare forward pass at the same batch = {v['ratio']:.2f}")
    print(f"DDIM {v['steps']} steps is {r['ddim_speedup_over_ddpm']}x faster than DDPM 1000 steps")
    gpu = r["gpu_train_cifar10"]
    if isinstance(gpu, str):
        print(f"GPU: {gpu}")
    else:
        print(f"GPU: {gpu['device']}: CIFAR-10 recipe training {gpu['images_per_s']} img/s "
              f"(batch {gpu['batch']}, bf16 {gpu['bf16']})")
