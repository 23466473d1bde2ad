"""The CIFAR-10 track: the recipe TrainConfig resolves for 32x32 colour images, attention at chosen
resolutions, colour training end to end on the shipped images, the offline evaluation, and a missing
training set that fails with the fix instead of hanging."""

import pickle

import pytest
import torch

from diffusion_lab import load_checkpoint, load_data
from diffusion_lab.cli import main, train_command
from diffusion_lab.data import DataError
from diffusion_lab.evaluate import evaluate_model, largest_num, real_floor
from diffusion_lab.training import RECIPES, TrainConfig, hflip, saved_settings, train
from diffusion_lab.unet import Attention, UNet

TINY = dict(dataset="cifar10", base_channels=8, num_res_blocks=1, T=50, batch_size=4, warmup=2, checkpoint_every=0,
            amp=False, attention_resolutions=(16,))  # DDPM's attention at 16x16 too: the option, end to end


def test_the_dataset_chooses_the_defaults_and_a_setting_given_wins():
    cifar, mnist = TrainConfig(dataset="cifar10"), TrainConfig(dataset="mnist")
    for name, value in RECIPES["cifar10"].items():
        assert getattr(cifar, name) == value, name
    for name, value in RECIPES["mnist"].items():
        assert getattr(mnist, name) == value, name
    assert RECIPES["cifar10"] != RECIPES["mnist"]
    assert cifar.hflip and not mnist.hflip and cifar.attention_resolutions == () and cifar.attention
    assert TrainConfig(dataset="cifar10", lr=1e-3, hflip=False).lr == 1e-3
    assert TrainConfig(dataset="cifar10", model="minimal").base_channels == 64, "the minimal U-Net keeps its width"
    assert train_command(vars(TrainConfig(dataset="cifar10", steps=5))) == (
        "python -m diffusion_lab train --dataset cifar10 --model unet --conditional --steps 5 --seed 0")
    assert "--attention-resolutions 16 --no-hflip" in train_command(
        vars(TrainConfig(dataset="cifar10", attention_resolutions=(16,), hflip=False)))


def test_hflip_mirrors_left_right_the_images_it_is_told_to():
    x = torch.arange(2 * 3 * 2 * 4, dtype=torch.float32).reshape(2, 3, 2, 4)
    out = hflip(x, torch.tensor([True, False]))
    assert torch.equal(out[0, 1, 0], torch.tensor([11.0, 10.0, 9.0, 8.0])), "row 0 of channel 1, reversed"
    assert torch.equal(out[0], x[0, :, :, [3, 2, 1, 0]]) and torch.equal(out[1], x[1])


def test_attention_at_the_resolutions_asked_for():
    unet = UNet(image_size=32, in_channels=3, base_channels=8, num_res_blocks=2, attention_resolutions=(16,))
    attentive = [name for name, m in unet.named_modules() if isinstance(m, Attention)]
    # level 1 (16x16): 2 blocks down, 3 up; plus the middle's (8x8)
    assert len(attentive) == 6 and "mid_attn" in attentive, attentive
    plain = UNet(image_size=32, in_channels=3, base_channels=8, num_res_blocks=2)
    assert len([m for m in plain.modules() if isinstance(m, Attention)]) == 1
    with pytest.raises(ValueError, match="levels are 28, 14, 7 pixels wide"):
        UNet(image_size=28, attention_resolutions=(16,))


def test_colour_training_end_to_end_and_the_offline_evaluation(tmp_path):
    """Train a few steps on the 20 shipped CIFAR-10 images (flips on), reload, and grade the model
    with the shipped CIFAR-10 classifier beside its real-data floor."""
    data = load_data("cifar10", "test", verbose=False)
    r = train(TrainConfig(steps=3, **TINY), out=tmp_path / "c", data=data, progress=False, device="cpu")
    model, schedule, config = load_checkpoint(r.checkpoint)
    assert config["image_shape"] == [3, 32, 32] and config["training"]["hflip"] is True
    assert saved_settings(config)["attention_resolutions"] == (16,)
    result = evaluate_model(model, schedule, "cifar10", num=20, steps=2)
    assert result["num"] == 20 and 0 <= result["class_accuracy"] <= 1 and result["fd"] > result["fd_real_floor"] > 0


def test_the_default_sample_count_fits_the_shipped_reference_features():
    from diffusion_lab.classifier import load_classifier

    _, info, feats, labels = load_classifier("cifar10")
    most = largest_num(labels, conditional=True)
    assert 100 <= most < 1000, "CIFAR-10's 1,000 held-out images give a class-balanced floor for a few hundred"
    real_floor(feats, most, labels)
    with pytest.raises(ValueError, match=f"use --num <= {most}"):
        real_floor(feats, most + 10, labels)
    assert "held out" in info["test_images"]


def test_offline_cifar10_training_fails_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DIFFUSION_LAB_DATA", str(tmp_path))
    assert main(["train", "--dataset", "cifar10", "--steps", "1", "--out", str(tmp_path / "c.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("error: No CIFAR-10 train data"), err
    assert "download --dataset cifar10" in err and "DIFFUSION_LAB_DATA" in err
    assert list(tmp_path.iterdir()) == []


def test_empty_attention_resolutions_on_the_command_line(tmp_path):
    out = tmp_path / "m.safetensors"
    assert main(["train", "--steps", "1", "--batch-size", "2", "--base-channels", "8", "--channel-mults", "1,2",
                 "--attention-resolutions", "none", "-T", "20", "--data-limit", "8", "--out", str(out)]) == 0
    assert load_checkpoint(out)[2]["training"]["attention_resolutions"] == []


class _Payload:
    """A pickle that runs code when loaded: it would create the file `marker`."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_cifar10_files_other_than_the_official_ones_are_never_unpickled(tmp_path):
    """CIFAR-10's python files are pickles: torchvision unpickles them only after each file's MD5 matched
    the official one, so a planted file is refused as damaged and its code never runs."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "code_ran"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        (folder / name).write_bytes(pickle.dumps(_Payload(marker)))
    for split in ("train", "test"):
        with pytest.raises(DataError, match="are damaged"):
            load_data("cifar10", split, root=tmp_path, verbose=False)
    assert not marker.exists(), "a planted pickle ran"


def test_the_recipe_is_one_table_with_a_complete_row_per_dataset():
    from diffusion_lab.data import DATASETS
    from diffusion_lab.training import RECIPE_SETTINGS
    assert set(RECIPES) == set(DATASETS)
    for dataset, row in RECIPES.items():
        assert tuple(row) == RECIPE_SETTINGS, dataset
        cfg = TrainConfig(dataset=dataset)
        assert all(getattr(cfg, name) == value for name, value in row.items()), dataset
