"""Bad input raises an error that names the problem and the fix; nothing is silently clamped."""

import json

import pytest
import torch

from diffusion_lab import (
    CheckpointError,
    DataNotFoundError,
    MinimalUNet,
    UNet,
    build_model,
    load_checkpoint,
    load_data,
    make_schedule,
    q_sample,
    sample,
    save_checkpoint,
)
from diffusion_lab.samplers import ddim_step, ddim_timesteps, ddpm_step


@pytest.fixture(scope="module")
def model():
    return UNet(image_size=8, base_channels=8, channel_mults=(1, 2), num_classes=10).eval()


def test_wrong_image_shape_or_channels(model):
    with pytest.raises(ValueError, match=r"expects images of shape \(B, 1, 8, 8\), got \(2, 3, 8, 8\)"):
        model(torch.zeros(2, 3, 8, 8), 0)
    with pytest.raises(ValueError, match="expects images of shape"):
        model(torch.zeros(2, 1, 16, 16), 0)
    with pytest.raises(ValueError, match="expects images"):
        model(torch.zeros(1, 8, 8), 0)


@pytest.mark.parametrize("cls,size", [(UNet, 30), (MinimalUNet, 30), (MinimalUNet, 2)])
def test_unsupported_image_size(cls, size):
    with pytest.raises(ValueError, match="image_size must be a multiple of"):
        cls(image_size=size)


@pytest.mark.parametrize("t", [-1, 1000, 5000])
def test_timestep_outside_range(t):
    s = make_schedule("linear", 1000)
    with pytest.raises(ValueError, match=r"outside 0\.\.999 \(t is 0-based"):
        q_sample(torch.zeros(1, 1, 2, 2), torch.tensor([t]), s)
    with pytest.raises(ValueError, match="outside"):
        ddpm_step(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), t, s)


def test_fractional_timestep():
    with pytest.raises(ValueError, match="integers"):
        q_sample(torch.zeros(1, 1, 2, 2), torch.tensor([2.5]), make_schedule("linear", 10))


@pytest.mark.parametrize("steps", [0, -3, 1001])
def test_steps_outside_range(steps):
    with pytest.raises(ValueError, match=r"steps must be an integer in 1\.\.T=1000"):
        ddim_timesteps(1000, steps)


def test_eta_outside_range():
    s = make_schedule("linear", 10)
    with pytest.raises(ValueError, match=r"eta must be in \[0, 1\]"):
        ddim_step(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2), 5, 3, s, eta=1.5)


@pytest.mark.parametrize("y", [10 + 1, -1])
def test_label_outside_classes(model, y):
    with pytest.raises(ValueError, match=r"outside the classes 0\.\.9"):
        model(torch.zeros(1, 1, 8, 8), 0, torch.tensor([y]))


def test_labels_on_unconditional_model():
    with pytest.raises(ValueError, match="unconditional"):
        UNet(image_size=8, base_channels=8, channel_mults=(1, 2))(torch.zeros(1, 1, 8, 8), 0, 3)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_guidance(model, bad):
    with pytest.raises(ValueError, match="guidance scale must be a finite number"):
        sample(model, make_schedule("linear", 10), 2, y=[1, 2], guidance=bad, progress=False)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown schedule 'cosin'; choose one of linear"):
        make_schedule("cosin", 100)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vit")
    with pytest.raises(ValueError, match="unknown dataset|mnist"):
        load_data("imagenet")
    with pytest.raises(ValueError, match="unknown sampler"):
        sample(UNet(image_size=8, base_channels=8, channel_mults=(1, 2)), make_schedule("linear", 10), 1,
               sampler="euler_a", progress=False)


def test_no_data_offline(tmp_path, monkeypatch):
    import diffusion_lab.data as data

    monkeypatch.setenv("DIFFUSION_LAB_DATA", str(tmp_path))
    monkeypatch.setattr(data, "SHIPPED_DIR", tmp_path / "nothing")
    with pytest.raises(DataNotFoundError, match="download"):
        load_data("mnist", verbose=False)


def _save_small(tmp_path, name="ck", **kw):
    m = build_model("unet", image_size=8, base_channels=8, channel_mults=[1, 2], **kw)
    return m, save_checkpoint(tmp_path / name, m, {"schedule": {"name": "linear", "T": 10}})


def test_damaged_checkpoint(tmp_path):
    _, path = _save_small(tmp_path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # flip bits inside the weights
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(path)


def test_damaged_checkpoint_json(tmp_path):
    _, path = _save_small(tmp_path)
    path.with_suffix(".json").write_text("{ not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint config"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_checkpoint_of_another_architecture(tmp_path):
    _, path = _save_small(tmp_path, num_classes=10)
    cfg_path = path.with_suffix(".json")
    cfg = json.loads(cfg_path.read_text())
    cfg["model"] = {"name": "minimal", "kwargs": {"image_size": 8, "base_channels": 8}}
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="another architecture"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="holds a 'minimal' model, not the 'unet'"):
        load_checkpoint(path, expect_model="unet")


def test_checkpoint_path_with_another_suffix(tmp_path):
    m = build_model("unet", image_size=8, base_channels=8, channel_mults=[1, 2])
    with pytest.raises(CheckpointError, match="ends in .safetensors.*'run.safetensors'"):
        save_checkpoint(tmp_path / "run.txt", m, {"schedule": {"name": "linear", "T": 10}})
    with pytest.raises(CheckpointError, match="ends in .safetensors"):
        load_checkpoint(tmp_path / "model_lr_0.001")  # would silently have been model_lr_0.safetensors
    assert list(tmp_path.iterdir()) == []


def test_settings_name_the_bad_value(monkeypatch):
    from diffusion_lab import settings

    with pytest.raises(TypeError):
        settings.pick(1000, 200)  # keyword-only: the call must say which value is the fast one
    assert settings.pick(default=1000, fast=200) in (1000, 200)
    for name in ("tpu9", "CPU", "meta"):
        with pytest.raises(ValueError, match=f"--device '{name}' is not a device this course runs on"):
            settings.pick_device(name)
    monkeypatch.setenv("DIFFUSION_LAB_DEVICE", "xla")
    with pytest.raises(ValueError, match="DIFFUSION_LAB_DEVICE 'xla'"):
        settings.pick_device()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU is available"):
            settings.pick_device("cuda")
    monkeypatch.setenv("DIFFUSION_LAB_FAST", "maybe")
    with pytest.raises(ValueError, match="DIFFUSION_LAB_FAST='maybe' is neither on"):
        settings.fast_mode()
    monkeypatch.setenv("DIFFUSION_LAB_FAST", "0")
    assert settings.fast_mode() is False


def test_damaged_dataset_files_name_the_file_and_the_fix(tmp_path, monkeypatch):
    import diffusion_lab.data as data

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2]))
    (raw / "train-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9]) + bytes(9))
    monkeypatch.setenv("DIFFUSION_LAB_DATA", str(tmp_path))
    with pytest.raises(data.DataError, match=r"MNIST train files in .*MNIST/raw are damaged.*download --dataset mnist"):
        load_data("mnist", verbose=False)  # a truncated file

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "mnist_train_10k.npz").write_bytes(b"PK\x03\x04 half a zip file")
    monkeypatch.setenv("DIFFUSION_LAB_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(data, "SHIPPED_DIR", shipped)
    with pytest.raises(data.DataError, match="shipped offline subset .*mnist_train_10k.npz is damaged"):
        load_data("mnist", verbose=False)


def test_missing_shipped_data_says_how_to_get_it(tmp_path, monkeypatch):
    import diffusion_lab.checkpoints as ck
    import diffusion_lab.data as data
    from diffusion_lab.evaluate import evaluate_model

    monkeypatch.setattr(ck, "PRETRAINED_DIR", tmp_path / "gone")
    with pytest.raises(CheckpointError, match=r"no shipped checkpoints: .*gone is missing.*pip install \."):
        ck.load_pretrained("mnist_cfg")
    monkeypatch.setenv("DIFFUSION_LAB_DATA", str(tmp_path))
    monkeypatch.setattr(data, "SHIPPED_DIR", tmp_path / "gone")
    with pytest.raises(DataNotFoundError, match=r"mnist_train_10k.npz is missing.*git clone"):
        load_data("mnist", verbose=False)
    import diffusion_lab.classifier as classifier

    monkeypatch.setattr(classifier, "PRETRAINED_DIR", tmp_path / "gone")
    model = UNet(image_size=28, base_channels=8, channel_mults=(1, 2))
    with pytest.raises(CheckpointError, match="no evaluation classifiers"):
        evaluate_model(model, make_schedule("linear", 10), "mnist", num=2, steps=1)


def test_sampler_options_that_do_not_apply_are_refused():
    model, s = UNet(image_size=8, base_channels=8, channel_mults=(1, 2)), make_schedule("linear", 10)
    with pytest.raises(ValueError, match="karras does not apply to ddim: they set the noise levels"):
        sample(model, s, 1, sampler="ddim", steps=2, karras=True, progress=False)
    with pytest.raises(ValueError, match="eta .* is DDIM's"):
        sample(model, s, 1, sampler="dpmpp2m", steps=2, eta=0.5, progress=False)
    with pytest.raises(ValueError, match="unknown final_sigma"):
        sample(model, s, 1, sampler="euler", steps=2, final_sigma="one", progress=False)
    with pytest.raises(ValueError, match="visit a noise level twice"):
        sample(model, s, 1, sampler="dpmpp2m", steps=10, spacing="linspace", progress=False)


def _cli(capsys, *argv):
    """Run the command line in-process: (exit status, stderr lines)."""
    from diffusion_lab.cli import main

    rc = main(list(argv))
    err = capsys.readouterr().err
    return rc, err.strip().splitlines()


def _refused(capsys, tmp_path, match, *argv):
    import re

    rc, lines = _cli(capsys, *argv)
    assert rc == 2 and len(lines) == 1 and "Traceback" not in lines[0], lines
    assert re.search(match, lines[0]), lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["sample", "evaluate"])
def test_cli_autoencoder_is_not_a_generator(capsys, tmp_path, command):
    out = ["--out", str(tmp_path / "x.png")] if command == "sample" else []
    _refused(capsys, tmp_path, "is an autoencoder, not a generator.*mnist_latent",
             command, "--checkpoint", "mnist_ae", "--steps", "1", "--num", "1", *out)


def test_cli_train_model_autoencoder_points_at_its_command(capsys, tmp_path):
    _refused(capsys, tmp_path, "train-autoencoder", "train", "--model", "autoencoder", "--base-channels", "8",
             "--steps", "1", "--out", str(tmp_path / "x.safetensors"))


def _float_flags():
    """Every (subcommand, flag) whose type is a float, found from the parser itself."""
    import argparse

    from diffusion_lab.cli import _parser, finite_float

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    found = []
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.type is not float, f"{name} {action.option_strings} takes NaN: use finite_float"
            if action.type is finite_float:
                found.append((name, action.option_strings[0]))
    return found


@pytest.mark.parametrize("command,flag", _float_flags())
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf"])
def test_cli_float_flags_refuse_nan_and_inf(capsys, tmp_path, command, flag, bad):
    required = {"sample": ["--checkpoint", "mnist_cfg", "--out", str(tmp_path / "x.png")],
                "evaluate": ["--checkpoint", "mnist_cfg"]}.get(command, ["--out", str(tmp_path / "x.safetensors")])
    _refused(capsys, tmp_path, f"{flag}.*must be a finite number", command, *required, f"{flag}={bad}")


@pytest.mark.parametrize("prompt", ["", "  ", "?!."])
def test_cli_prompt_without_words(capsys, tmp_path, prompt):
    _refused(capsys, tmp_path, "has no words", "sample", "--checkpoint", "mnist_text", "--prompt", prompt,
             "--steps", "1", "--num", "1", "--out", str(tmp_path / "x.png"))


def test_cli_misleading_messages(capsys, tmp_path, monkeypatch):
    _refused(capsys, tmp_path, "text model: use 0..9, or --prompt", "sample", "--checkpoint", "mnist_text",
             "--labels", "10", "--steps", "1", "--out", str(tmp_path / "x.png"))
    _refused(capsys, tmp_path, r"see `python -m diffusion_lab sample --help`", "sample", "--checkpoint",
             "mnist_cfg", "--bogus", "--out", str(tmp_path / "x.png"))
    monkeypatch.setenv("WORLD_SIZE", "abc")
    _refused(capsys, tmp_path, "WORLD_SIZE must be a whole number", "train", "--steps", "1",
             "--out", str(tmp_path / "x.safetensors"))


def test_cli_train_autoencoder_flag_and_out_folder(capsys, tmp_path):
    _refused(capsys, tmp_path, "--autoencoder mnist_cfg is not an autoencoder checkpoint.*mnist_ae", "train",
             "--autoencoder", "mnist_cfg", "--steps", "1", "--out", str(tmp_path / "x.safetensors"))
    (tmp_path / "file").write_text("")
    _refused_keep = _cli(capsys, "train", "--steps", "1", "--out", str(tmp_path / "file" / "x.safetensors"))
    assert _refused_keep[0] == 2 and "is a file, not a folder" in _refused_keep[1][0], _refused_keep
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_data_folder_that_is_a_file(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("DIFFUSION_LAB_DATA", str(tmp_path / "file"))
    with pytest.raises(ValueError, match="DIFFUSION_LAB_DATA .* is a file, not a folder"):
        load_data("mnist", verbose=False)


def test_cli_resume_onto_another_architecture_names_the_file(capsys, tmp_path):
    tiny = ["--steps", "1", "--batch-size", "4", "--channel-mults", "1,2", "--no-attention", "-T", "20"]
    for name, width in (("a", "8"), ("b", "16")):
        out = str(tmp_path / f"{name}.safetensors")
        assert _cli(capsys, "train", *tiny, "--base-channels", width, "--out", out)[0] == 0
    (tmp_path / "a.train.safetensors").write_bytes((tmp_path / "b.train.safetensors").read_bytes())
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()}
    rc, lines = _cli(capsys, "train", "--resume", "--steps", "1", "--out", str(tmp_path / "a.safetensors"))
    assert rc == 2 and len(lines) == 1 and "Traceback" not in lines[0], lines
    assert "train-state file" in lines[0] and "a.train.safetensors" in lines[0] and "train anew" in lines[0]
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.iterdir()} == before


def test_cli_unwritable_out_folder_is_named(capsys, tmp_path):
    import os

    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("this user may write anywhere")
        rc, lines = _cli(capsys, "sample", "--checkpoint", "mnist_cfg", "--out", str(folder / "x.png"))
        assert rc == 2 and len(lines) == 1 and f"the folder {folder} is not writable" in lines[0], lines
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o700)


def test_cli_train_latent_with_shipped_autoencoder_name(capsys, tmp_path):
    out = tmp_path / "latent.safetensors"
    rc, lines = _cli(capsys, "train", "--autoencoder", "mnist_ae", "--steps", "1", "--batch-size", "4",
                     "--base-channels", "8", "--no-attention", "--out", str(out))
    assert rc == 0, lines  # the bare name resolves, and channel mults fit the latents without --channel-mults
    assert out.exists()
