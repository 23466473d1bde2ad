"""The benchmark's arithmetic: FLOP counts against their closed forms, and the default models it times.

(Speeds themselves are not asserted: timings belong in `python -m diffusion_lab bench`, not in tests.)
"""

import torch
import torch.nn.functional as F

from diffusion_lab.bench import count_flops, default_model, train_step_fn
from diffusion_lab.training import MINIMAL_WIDTH, UNET_WIDTH


def test_conv_flops_match_the_closed_form_used_for_the_ceiling():
    x, w = torch.randn(2, 8, 10, 10), torch.randn(16, 8, 3, 3)
    assert count_flops(lambda: F.conv2d(x, w, padding=1)) == 2 * 2 * 16 * 8 * 9 * 10 * 10  # 2 per multiply-add
    a, b = torch.randn(32, 48), torch.randn(48, 16)
    assert count_flops(lambda: a @ b) == 2 * 32 * 48 * 16


def test_a_training_step_costs_about_three_forward_passes():
    """Backward computes two products per layer (gradients of input and weight) for the forward's one."""
    model = default_model("unet")
    x, t, y = torch.randn(4, 1, 28, 28), torch.randint(0, 1000, (4,)), torch.randint(0, 11, (4,))
    forward = count_flops(lambda: model(x, t, y))
    step = count_flops(train_step_fn(model, 4, amp=False))
    assert 2.5 * forward < step < 3.1 * forward, (forward, step)


def test_bench_times_the_models_train_builds_by_default():
    assert default_model("unet").base_channels == UNET_WIDTH
    assert default_model("minimal").config["base_channels"] == MINIMAL_WIDTH


def test_the_gpu_line_says_it_was_skipped_without_a_gpu(monkeypatch):
    from diffusion_lab.bench import gpu_training

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_training().startswith("skipped: no CUDA GPU")


def test_sampling_efficiency_compares_like_with_like():
    """The ratio divides the images the network processed while sampling (2 x batch x steps when
    guided) by its bare forward throughput at that same batch."""
    from diffusion_lab import UNet, make_schedule
    from diffusion_lab.bench import sampling_efficiency

    model = UNet(image_size=8, base_channels=8, channel_mults=(1, 2), attention=False, num_classes=3).eval()
    r = sampling_efficiency(model, make_schedule("linear", 50), batch=4, steps=2, reps=1)
    assert r["guidance"] == 3.0 and r["batch"] == 4
    # guided: the network sees 2 x 4 images per step, 2 steps, for 4 images out
    assert abs(r["network_images_per_s"] / r["images_per_s"] - 4) < 0.05
    assert abs(r["ratio"] - r["network_images_per_s"] / r["forward_images_per_s"]) < 0.01
