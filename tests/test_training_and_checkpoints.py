"""A short real training run on the shipped offline data; checkpoints round-trip and resume."""

import pytest
import torch

from diffusion_lab import load_checkpoint, load_data, sample
from diffusion_lab.training import TrainConfig, lr_at, train

SMALL = dict(dataset="mnist", base_channels=16, channel_mults=(1, 2), attention=False, batch_size=32,
             lr=2e-3, warmup=10, checkpoint_every=0)


@pytest.fixture(scope="module")
def mnist():
    return load_data("mnist", "train", limit=2000, verbose=False)


def test_short_training_lowers_the_loss(mnist, tmp_path):
    r = train(TrainConfig(steps=120, **SMALL), out=tmp_path / "m", data=mnist, progress=False)
    first, last = sum(r.losses[:20]) / 20, sum(r.losses[-20:]) / 20
    assert r.step == 120 and last < 0.6 * first, (first, last)


def test_checkpoint_reloads_to_the_same_outputs(mnist, tmp_path):
    r = train(TrainConfig(steps=5, **SMALL), out=tmp_path / "m", data=mnist, progress=False)
    model, schedule, config = load_checkpoint(r.checkpoint)
    x, t, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 500, 999]), torch.tensor([1, 2, 10])
    assert torch.equal(model(x, t, y), r.model(x, t, y))
    assert config["dataset"] == "mnist" and config["training"]["steps_done"] == 5
    assert config["image_shape"] == [1, 28, 28] and len(config["classes"]) == 10
    assert schedule.T == 1000 and config["training"]["seed"] == 0


def test_resume_continues_from_the_saved_step(mnist, tmp_path):
    out = tmp_path / "m"
    train(TrainConfig(steps=6, **SMALL), out=out, data=mnist, progress=False)
    r = train(TrainConfig(steps=4, **SMALL), out=out, data=mnist, resume=True, progress=False)
    assert r.step == 10 and len(r.losses) == 4
    _, _, config = load_checkpoint(out)
    assert config["training"]["steps_done"] == 10


def test_label_dropout_and_lr_schedule():
    cfg = TrainConfig(lr=1e-3, warmup=10, steps=100)
    assert lr_at(0, 0.0, cfg) == pytest.approx(1e-4)
    assert lr_at(50, 0.0, cfg) == pytest.approx(1e-3)
    assert lr_at(99, 1.0, cfg) == pytest.approx(1e-4)
    with pytest.raises(ValueError, match="p_uncond"):
        TrainConfig(p_uncond=1.0).validate()
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(steps=None, minutes=None).validate()


def test_interrupted_save_leaves_no_partial_file(tmp_path, monkeypatch):
    import diffusion_lab.checkpoints as ck
    from diffusion_lab import build_model

    m = build_model("unet", image_size=8, base_channels=8, channel_mults=[1, 2])
    cfg = {"model": m.build_config, "schedule": {"name": "linear", "T": 10}}

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(ck, "save_file", boom)
    with pytest.raises(KeyboardInterrupt):
        ck.save_checkpoint(tmp_path / "x", m, cfg)
    assert list(tmp_path.iterdir()) == []


def test_min_snr_weights_follow_hang_et_al():
    from diffusion_lab import make_schedule
    from diffusion_lab.training import loss_weight

    s = make_schedule("linear", 1000)
    t = torch.tensor([0, 100, 300, 999])
    snr = s.snr[t].float()
    assert torch.equal(loss_weight(t, s, TrainConfig(loss_weighting="simple")), torch.ones(4))
    eps_w = loss_weight(t, s, TrainConfig(loss_weighting="min_snr"))
    torch.testing.assert_close(eps_w, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert eps_w[0] < 1e-3 and eps_w[-1] == 1.0, "clean t count little, noisy t fully (eps target)"
    v_w = loss_weight(t, s, TrainConfig(loss_weighting="min_snr", prediction="v"))
    torch.testing.assert_close(v_w, torch.minimum(snr, torch.tensor(5.0)) / (snr + 1))
    with pytest.raises(ValueError, match="loss_weighting"):
        TrainConfig(loss_weighting="snr").validate()
    with pytest.raises(ValueError, match="prediction"):
        TrainConfig(prediction="x0").validate()


def test_v_prediction_is_a_prediction_type_the_samplers_read(mnist, tmp_path):
    from diffusion_lab.samplers import model_eps

    r = train(TrainConfig(steps=5, prediction="v", **SMALL), out=tmp_path / "v", data=mnist, progress=False)
    model, schedule, config = load_checkpoint(r.checkpoint)
    assert config["training"]["prediction"] == "v" and model.prediction_type == r.model.prediction_type == "v"
    x, t, y = torch.randn(3, 1, 28, 28), torch.tensor([0, 500, 999]), torch.tensor([1, 2, 10])
    v = model(x, t, y)  # the network itself answers with v; the samplers convert (forward.eps_from_prediction)
    assert torch.equal(v, r.model(x, t, y))
    ab = schedule.alpha_bar.float()[t].view(-1, 1, 1, 1)
    eps = model_eps(model, x, t, ab, y, prediction=model.prediction_type)
    torch.testing.assert_close(eps, (1 - ab).sqrt() * x + ab.sqrt() * v)
    a = sample(model, schedule, 2, steps=3, y=[1, 2], progress=False)  # reads model.prediction_type
    b = sample(model, schedule, 2, steps=3, y=[1, 2], prediction_type="v", progress=False)
    c = sample(model, schedule, 2, steps=3, y=[1, 2], prediction_type="eps", progress=False)
    assert torch.equal(a, b) and not torch.allclose(a, c)
    eps_model, _, _ = load_checkpoint(train(TrainConfig(steps=1, **SMALL), data=mnist, out=tmp_path / "e",
                                            progress=False).checkpoint)
    assert eps_model.prediction_type == "eps"


def test_bf16_autocast_only_on_cpus_that_have_it(monkeypatch):
    from diffusion_lab import settings

    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    assert settings.autocast_dtype(torch.device("cpu")) is None, "emulated bf16 is ~10x slower: use float32"
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert settings.autocast_dtype(torch.device("cpu")) == torch.bfloat16
