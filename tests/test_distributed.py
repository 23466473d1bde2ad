"""Data-parallel training is the same computation (distributed.py): 2 CPU processes over gloo with
batch B each give the gradients and, after a few steps, the weights of 1 process with batch 2B; a
checkpoint from 2 processes resumes on 1 (gradient accumulation keeps the effective batch)."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from diffusion_lab import load_data
from diffusion_lab.training import TrainConfig, _resumed_accumulation, train

# float32 (bf16 would round a batch of B differently from one of 2B); hflip: the flips are sharded too;
# no gradient clipping, so Adam's first moment is exactly (1 - beta1) x the gradient after one step
TINY = dict(dataset="mnist", base_channels=8, channel_mults=(1, 2), attention=False, T=50, hflip=True, amp=False,
            grad_clip=1e9, warmup=2, checkpoint_every=0, data_limit=256)
FLAGS = ["--dataset", "mnist", "--base-channels", "8", "--channel-mults", "1,2", "--no-attention", "-T", "50",
         "--hflip", "--no-amp", "--grad-clip", "1e9", "--warmup", "2", "--data-limit", "256", "--device", "cpu"]
B = 4
ROOT = Path(__file__).resolve().parents[1]


def _torchrun(args, timeout=300):
    """torchrun in its own process group, killed whole if it outlives `timeout` (a hang fails, never blocks)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                             *args], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout} s:\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    return output


def _state(path):
    """(EMA weights, raw weights, Adam's first moments) of a checkpoint."""
    ema = load_file(str(path))
    train_state = load_file(str(path.with_suffix(".train.safetensors")))
    raw = {k: v for k, v in train_state.items() if k.startswith("model.")}
    moments = {k: v for k, v in train_state.items() if k.endswith(".exp_avg")}
    return ema, raw, moments


def _assert_close(a, b, what, atol=1e-6, rtol=1e-4):
    assert a.keys() == b.keys() and a, what
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=atol, rtol=rtol, msg=lambda m, k=k: f"{what} {k}: {m}")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The 2-process run (torchrun, command line) and the 1-process reference with batch 2B."""
    out = tmp_path_factory.mktemp("ddp")
    log = _torchrun(["tests/ddp_worker.py", str(out), *FLAGS, "--batch-size", str(B)])
    data = load_data("mnist", "train", limit=256, verbose=False)
    one = out / "one.safetensors"
    for step in (1, 2, 3):
        train(TrainConfig(batch_size=2 * B, steps=1, **TINY), out=one, data=data, progress=False, device="cpu",
              resume=step > 1)
        for suffix in (".json", ".safetensors", ".train.safetensors"):
            shutil.copy(one.with_suffix(suffix), out / f"one_step{step}{suffix}")
    return out, data, log


def test_two_processes_give_the_gradients_of_one_with_twice_the_batch(runs):
    out, _, _ = runs
    _, _, m1_two = _state(out / "two_step1.safetensors")
    _, _, m1_one = _state(out / "one_step1.safetensors")
    _, _, m2_two = _state(out / "two_step2.safetensors")
    _, _, m2_one = _state(out / "one_step2.safetensors")
    # AdamW from zero moments: m1 = (1 - b1) g1, m2 = b1 m1 + (1 - b1) g2, with b1 = 0.9
    g_two = {k: torch.stack([m1_two[k] / 0.1, (m2_two[k] - 0.9 * m1_two[k]) / 0.1]) for k in m1_two}
    g_one = {k: torch.stack([m1_one[k] / 0.1, (m2_one[k] - 0.9 * m1_one[k]) / 0.1]) for k in m1_one}
    _assert_close(g_two, g_one, "gradients of steps 1 and 2", atol=1e-5)
    nonzero = sum(bool(g[1].abs().max() > 1e-6) for g in g_one.values())
    assert nonzero > 0.9 * len(g_one), "step 2's gradient reaches (nearly) every parameter"


def test_two_processes_take_the_steps_of_one_with_twice_the_batch(runs):
    out, _, log = runs
    ema2, raw2, _ = _state(out / "two.safetensors")
    ema1, raw1, _ = _state(out / "one.safetensors")
    assert not torch.equal(raw1["model.conv_out.weight"], torch.zeros_like(raw1["model.conv_out.weight"]))
    # Adam divides by sqrt(v): where a gradient is ~0, float rounding moves a step by up to ~lr (1e-3)
    # in either run, so the weights agree to a small fraction of one step, not to float precision
    _assert_close(raw2, raw1, "weights after 3 steps", atol=2e-5)
    _assert_close(ema2, ema1, "EMA after 3 steps", atol=2e-5)
    saved = json.loads((out / "two.json").read_text())["training"]
    assert saved["processes"] == 2 and saved["effective_batch"] == 2 * B and saved["steps_done"] == 3
    assert log.count("\"checkpoint\"") == 3, "the main process alone prints the result (once per command)"
    assert log.count("MNIST train:") == 3, "and the line saying which data, once per command"


def test_each_process_draws_dropout_masks_of_its_own(tmp_path):
    """With dropout (the CIFAR-10 recipe's 0.1), the processes' slices of a batch get independent masks,
    as the slices of one process's batch do: the same mask in every process would drop the same units
    for every slice. The equality with one process then holds in distribution, not bit for bit."""
    _torchrun(["tests/ddp_dropout_worker.py", str(tmp_path)])
    rank0, rank1 = (json.loads((tmp_path / f"{r}.json").read_text()) for r in (0, 1))
    assert len(rank0) == len(rank1) > 1000 and 0 < sum(rank0) < len(rank0)
    assert rank0 != rank1, "both processes dropped the same units: dropout is seeded alike in every process"


def test_a_checkpoint_from_two_processes_resumes_on_one(runs, tmp_path, capsys):
    """1 process resumes the 2-process checkpoint with grad_accum 2: the same effective batch, and the
    same computation as the 1-process run with batch 2B (accumulation is exact too)."""
    out, data, _ = runs
    for suffix in (".json", ".safetensors", ".train.safetensors"):
        shutil.copy(out / f"two_step1{suffix}", tmp_path / f"two_step1{suffix}")
    r = train(TrainConfig(steps=1, **TINY), out=tmp_path / "two_step1.safetensors", data=data, resume=True,
              progress=False, device="cpu")
    assert "grad_accum 2 (was 1) keeps the effective batch of 8" in capsys.readouterr().out
    _, raw, moments = _state(tmp_path / "two_step1.safetensors")
    _, raw1, moments1 = _state(out / "one_step2.safetensors")
    _assert_close(moments, moments1, "Adam's moments resumed on 1 process", atol=1e-6)
    _assert_close(raw, raw1, "weights resumed on 1 process", atol=2e-5)
    assert r.step == 2


def test_resume_on_a_process_count_that_cannot_keep_the_batch_says_which_can():
    cfg = TrainConfig(batch_size=4, grad_accum=1)
    saved = {"training": {"effective_batch": 12}}
    assert _resumed_accumulation(saved, cfg, 3) == 1
    assert _resumed_accumulation(saved, cfg, 1) == 3
    with pytest.raises(ValueError, match="2 processes cannot keep it. Resume with 1, 3 processes"):
        _resumed_accumulation(saved, cfg, 2)
    assert _resumed_accumulation({"training": {}}, cfg, 1) == 1, "a checkpoint from before: 1 process"


def test_more_processes_than_gpus_is_an_error_before_any_wait(monkeypatch):
    from diffusion_lab.distributed import make_accelerator

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ValueError, match="4 processes on this machine but only 2 CUDA GPU"):
        make_accelerator()
    with pytest.raises(ValueError, match="CUDA_VISIBLE_DEVICES"):
        make_accelerator("cuda:1")
    with pytest.raises(ValueError, match="runs on CUDA GPUs or on CPUs"):
        make_accelerator("mps")
