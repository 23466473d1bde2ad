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
    assert TrainConfig(steps=None, minutes=None).steps == 1000, "no budget given: the default number of steps"
    assert TrainConfig(minutes=3).steps is None, "minutes alone: no step limit (as on the command line)"


def test_interrupted_save_leaves_no_partial_file(tmp_path, monkeypatch):
    import diffusion_lab.checkpoints as ck
    from diffusion_lab import build_model

    m = build_model("unet", image_size=8, base_channels=8, channel_mults=[1, 2])
    cfg = {"schedule": {"name": "linear", "T": 10}}

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
    assert torch.equal(loss_weight(t, s, "simple"), torch.ones(4))
    eps_w = loss_weight(t, s, "min_snr")
    torch.testing.assert_close(eps_w, torch.minimum(snr, torch.tensor(5.0)) / snr)
    assert eps_w[0] < 1e-3 and eps_w[-1] == 1.0, "clean t count little, noisy t fully (eps target)"
    v_w = loss_weight(t, s, "min_snr", prediction="v")
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


# --------------------------------------------------------------------------- the functions train() calls


def test_drop_labels_replaces_labels_at_the_rate_p_uncond():
    from diffusion_lab.training import drop_labels

    y = torch.arange(200_000) % 10
    for p in (0.0, 0.1, 0.5):
        out = drop_labels(y, p, null_label=10, generator=torch.Generator().manual_seed(0))
        dropped = out == 10
        assert abs(dropped.float().mean().item() - p) < 0.005, p  # 5 sigma of a binomial at p = 0.5 is 0.0056
        assert torch.equal(out[~dropped], y[~dropped]), "kept labels are unchanged"
    assert torch.equal(y, torch.arange(200_000) % 10), "the input is not modified"
    a = drop_labels(y[:50], 0.3, 10, torch.Generator().manual_seed(7))
    b = drop_labels(y[:50], 0.3, 10, torch.Generator().manual_seed(7))
    assert torch.equal(a, b) and (a == 10).any(), "the same generator seed drops the same labels"


def test_ema_decay_warms_up_then_holds():
    from diffusion_lab.training import ema_decay_at

    assert ema_decay_at(0, 0.999) == pytest.approx(0.1)
    assert ema_decay_at(8, 0.999) == pytest.approx(0.5)
    assert ema_decay_at(80, 0.999) == pytest.approx(0.9)
    assert ema_decay_at(100_000, 0.999) == 0.999
    decays = [ema_decay_at(s, 0.999) for s in range(20_000)]
    assert decays == sorted(decays), "never decreasing"
    assert ema_decay_at(0, 0.0) == 0.0, "decay 0: the EMA is the raw weights"


def test_ema_update_is_a_moving_average():
    from diffusion_lab.training import ema_update

    model, ema = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.detach().clone() for p in ema.parameters()]
    ema_update(ema, model, decay=0.9)
    for e, b, p in zip(ema.parameters(), before, model.parameters()):
        torch.testing.assert_close(e, 0.9 * b + 0.1 * p)
    ema_update(ema, model, decay=0.0)
    for e, p in zip(ema.parameters(), model.parameters()):
        assert torch.equal(e, p)
    # A constant model: the average converges to it geometrically, (1 - decay)^n of the gap left.
    ema, target = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    gap = (ema.weight - target.weight).detach().clone()
    for _ in range(10):
        ema_update(ema, target, decay=0.5)
    torch.testing.assert_close(ema.weight - target.weight, gap * 0.5**10)


def test_diffusion_loss_is_eq_14():
    import torch.nn.functional as F

    from diffusion_lab import make_schedule, q_sample
    from diffusion_lab.forward import v_target
    from diffusion_lab.training import diffusion_loss, loss_weight

    torch.manual_seed(0)
    net = build_small_net()
    s = make_schedule("linear", 1000)
    x0, noise = torch.randn(6, 1, 8, 8), torch.randn(6, 1, 8, 8)
    t, y = torch.tensor([0, 10, 200, 500, 800, 999]), torch.tensor([1, 2, 3, 4, 10, 0])
    pred = net(q_sample(x0, t, s, noise), t, y)
    torch.testing.assert_close(diffusion_loss(net, x0, t, noise, s, y), F.mse_loss(pred, noise))
    per_image = (pred - noise).pow(2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(diffusion_loss(net, x0, t, noise, s, y, weighting="min_snr"),
                               (loss_weight(t, s, "min_snr") * per_image).mean())
    v = v_target(x0, noise, t, s)
    torch.testing.assert_close(diffusion_loss(net, x0, t, noise, s, y, prediction="v"), F.mse_loss(pred, v))
    with pytest.raises(ValueError, match="unknown prediction type"):
        diffusion_loss(net, x0, t, noise, s, y, prediction="x0")


def build_small_net():
    from diffusion_lab import UNet

    net = UNet(image_size=8, base_channels=8, channel_mults=(1, 2), attention=False, num_classes=10)
    torch.nn.init.normal_(net.conv_out.weight, std=0.1)  # not the zero init: outputs depend on the input
    return net


# --------------------------------------------------------------------------- the recipe and the models' records


@pytest.mark.parametrize("change", [
    dict(batch_size=0), dict(batch_size=2.5), dict(lr=0), dict(lr=float("nan")), dict(warmup=-1),
    dict(base_channels=7), dict(channel_mults=()), dict(channel_mults=(1, 0)), dict(num_res_blocks=0),
    dict(time_embedding="sideways"), dict(schedule="cosin"), dict(T=0), dict(prediction="x0"),
    dict(loss_weighting="snr"), dict(ema_decay=1.0), dict(grad_clip=0), dict(seed=-1), dict(checkpoint_every=-1),
    dict(data_limit=0), dict(steps=0), dict(minutes=-1), dict(dataset="imagenet"), dict(model="vit"),
    dict(conditional="yes"), dict(p_uncond=float("nan")),
])
def test_every_setting_is_checked(change):
    name = next(iter(change))
    with pytest.raises(ValueError, match=f"^{name} must be"):
        TrainConfig(**change).validate()


def test_defaults_that_depend_on_another_setting_are_resolved():
    from diffusion_lab.training import DEFAULT_WIDTH

    assert TrainConfig().base_channels == DEFAULT_WIDTH["unet"]
    assert TrainConfig(model="minimal").base_channels == DEFAULT_WIDTH["minimal"]
    assert TrainConfig(model="minimal", base_channels=32).base_channels == 32


def test_models_record_the_arguments_they_were_built_with():
    from diffusion_lab import UNet, build_model
    from diffusion_lab.models import model_record

    m = build_model("unet", image_size=8, base_channels=8, channel_mults=(1, 2), num_classes=10)
    assert m.config == {"image_size": 8, "in_channels": 1, "base_channels": 8, "channel_mults": [1, 2],
                        "num_res_blocks": 1, "attention": True, "num_classes": 10, "dropout": 0.0,
                        "time_embedding": "every", "vocab_size": None, "text_dim": 64, "text_depth": 2,
                        "text_heads": 4, "attention_resolutions": [], "prediction": "eps", "path": "vp"}, \
        "every argument, defaults included, tuples as lists"
    again = build_model(**{"name": model_record(m)["name"]}, **model_record(m)["kwargs"])
    assert again.config == m.config and type(again) is UNet
    assert UNet(8, 1, 8, (1, 2)).config["channel_mults"] == [1, 2], "positional arguments too"
    assert build_model("minimal", image_size=8, base_channels=8).config == {
        "image_size": 8, "in_channels": 1, "base_channels": 8, "num_classes": None, "prediction": "eps", "path": "vp"}


@pytest.mark.parametrize("name", ["unet", "minimal"])
def test_the_prediction_type_is_recorded_and_checked_once(name, tmp_path):
    """What a network outputs is part of its recorded config: a hand-built v model says so, an unknown
    type is refused where the model is built, and an old checkpoint (type under "training" only) loads."""
    import json

    from diffusion_lab import build_model, sample
    from diffusion_lab.checkpoints import load_checkpoint, save_checkpoint
    from diffusion_lab.forward import prediction_of

    model = build_model(name, image_size=8, base_channels=8, prediction="v")
    assert model.config["prediction"] == model.prediction_type == prediction_of(model) == "v"
    with pytest.raises(ValueError, match="unknown prediction type 'x0'; choose 'eps' or 'v'"):
        build_model(name, image_size=8, base_channels=8, prediction="x0")
    path = save_checkpoint(tmp_path / "old.safetensors", model, {"schedule": {"name": "linear", "T": 10},
                                                                 "training": {"prediction": "v"}})
    cfg_path = path.with_suffix(".json")
    cfg = json.loads(cfg_path.read_text())
    del cfg["model"]["kwargs"]["prediction"]  # as checkpoints saved before this was recorded
    cfg_path.write_text(json.dumps(cfg))
    old, schedule, _ = load_checkpoint(path)
    assert prediction_of(old) == "v"
    with pytest.raises(ValueError, match="unknown prediction type"):
        sample(old, schedule, 1, steps=2, prediction_type="x0", progress=False)


@pytest.mark.parametrize("name", ["mnist_cfg", "fashion_mnist_cfg", "mnist_uncond", "mnist_cfg_minimal",
                                  "mnist_cfg_unet", "mnist_cfg_unet_middle"])
def test_shipped_checkpoints_load_unchanged(name):
    """Their JSON predates register_to_config (only the arguments given): they still load, to a model whose
    record holds those arguments and the defaults."""
    import json

    from diffusion_lab.checkpoints import load_pretrained, pretrained_path

    saved = json.loads(pretrained_path(name).with_suffix(".json").read_text())
    model, _, config = load_pretrained(name)
    net = getattr(model, "net", model)  # a v-prediction model answers through a wrapper
    assert config == saved
    assert {k: net.config[k] for k in saved["model"]["kwargs"]} == saved["model"]["kwargs"]


def test_saved_settings_fill_what_old_checkpoints_lack():
    from diffusion_lab.checkpoints import load_pretrained
    from diffusion_lab.training import saved_settings

    _, _, config = load_pretrained("mnist_cfg")
    settings = saved_settings(config)
    assert settings["dataset"] == "mnist" and settings["channel_mults"] == (1, 2, 2)
    if "loss_weighting" not in config["training"]:
        assert settings["loss_weighting"] == "simple", "trained before min-SNR existed"
    TrainConfig(**settings).validate()


def test_resume_keeps_the_saved_dataset(tmp_path):
    fashion = load_data("fashion_mnist", "train", limit=200, verbose=False)
    small = SMALL | {"dataset": "fashion_mnist"}
    train(TrainConfig(steps=2, **small), out=tmp_path / "f", data=fashion, progress=False)
    r = train(TrainConfig(steps=1, **SMALL), out=tmp_path / "f", data=fashion, resume=True, progress=False)
    _, _, config = load_checkpoint(r.checkpoint)
    assert config["dataset"] == "fashion_mnist" and config["training"]["steps_done"] == 3
    with pytest.raises(ValueError, match="data holds 'fashion_mnist' images"):
        train(TrainConfig(steps=1, **SMALL), data=fashion, progress=False)


@pytest.mark.parametrize("name", ["unet", "minimal"])
def test_the_networks_own_defaults_are_the_recipes(name):
    """A network built with no arguments is the one `train` builds for MNIST: one recipe, not two."""
    from diffusion_lab import TrainConfig, build_model
    from diffusion_lab.data import dataset_info

    recipe = TrainConfig(dataset="mnist", model=name, conditional=False).model_kwargs(dataset_info("mnist"))
    built = build_model(name).config
    assert {k: built[k] for k in recipe} == recipe
