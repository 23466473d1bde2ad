"""The command line: train writes a checkpoint, sample writes .npz / .png, errors exit 2."""

import numpy as np
import pytest

from diffusion_lab.cli import main


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "tiny.safetensors"
    rc = main(["train", "--dataset", "mnist", "--conditional", "--steps", "3", "--batch-size", "8",
               "--base-channels", "8", "--channel-mults", "1,2", "--no-attention", "-T", "50",
               "--out", str(out)])
    assert rc == 0 and out.exists() and out.with_suffix(".json").exists()
    return out


def test_sample_npz_with_labels(checkpoint, tmp_path):
    out = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(checkpoint), "--steps", "3", "--labels", "0,1,2",
                 "--guidance", "2", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["images"].dtype == np.uint8 and data["images"].shape == (3, 28, 28, 1)
    assert data["labels"].dtype == np.int64 and data["labels"].tolist() == [0, 1, 2]


def test_sample_unconditional_and_per_class(checkpoint, tmp_path):
    out = tmp_path / "u.npz"
    assert main(["sample", "--checkpoint", str(checkpoint), "--steps", "2", "--num", "4", "--out", str(out)]) == 0
    assert np.load(out)["labels"].tolist() == [-1] * 4
    png = tmp_path / "grid.png"
    assert main(["sample", "--checkpoint", str(checkpoint), "--sampler", "ddpm", "--per-class", "1",
                 "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_requests_exit_2(checkpoint, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(checkpoint), "--steps", "0", "--out", str(tmp_path / "a.npz")]) == 2
    assert "steps must be" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "a.jpg")]) == 2
    assert main(["sample", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "a.npz")]) == 2
    assert "no checkpoint config" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(checkpoint), "--labels", "3,12", "--out", str(tmp_path / "b.npz")]) == 2
    assert "outside the classes" in capsys.readouterr().err


def test_train_takes_its_defaults_from_trainconfig(checkpoint):
    """The recipe lives in one place: flags not given fall back to TrainConfig's defaults."""
    import json

    from diffusion_lab.training import TrainConfig

    t = json.loads(checkpoint.with_suffix(".json").read_text())["training"]
    assert t["base_channels"] == 8 and t["T"] == 50 and t["attention"] is False and t["channel_mults"] == [1, 2]
    defaults = TrainConfig()
    fields = ("lr", "warmup", "ema_decay", "p_uncond", "schedule", "prediction", "loss_weighting", "num_res_blocks")
    for field in fields:
        assert t[field] == getattr(defaults, field), field


def test_evaluate_reports_precision_recall_and_model_calls(checkpoint, capsys):
    import json

    assert main(["evaluate", "--checkpoint", str(checkpoint), "--sampler", "heun", "--steps", "2", "--num", "20",
                 "--guidance", "2", "--karras"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["sampler"] == "heun" and r["nfe"] == 3 and r["karras"] is True and r["num"] == 20
    for key in ("precision", "recall", "precision_real", "recall_real"):
        assert 0.0 <= r[key] <= 1.0, key


@pytest.mark.parametrize("sampler", ["euler", "heun", "dpmpp2m"])
def test_sample_with_every_ode_sampler(checkpoint, tmp_path, sampler):
    out = tmp_path / "s.npz"
    assert main(["sample", "--checkpoint", str(checkpoint), "--sampler", sampler, "--steps", "3", "--per-class", "1",
                 "--guidance", "3", "--spacing", "trailing", "--final-sigma", "sigma_min", "--out", str(out)]) == 0
    assert np.load(out)["images"].shape == (10, 28, 28, 1)
