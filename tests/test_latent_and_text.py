"""Latent diffusion and text prompts (chapters 10-11): the autoencoder, the tokenizer and its bad
inputs, the text encoder, cross-attention, checkpoints that round-trip, and the command line."""

import json

import numpy as np
import pytest
import torch

from diffusion_lab import UNet, load_checkpoint, load_data, sample
from diffusion_lab.autoencoder import (
    AutoencoderConfig,
    autoencoder_of,
    build_autoencoder,
    load_autoencoder,
    set_latent_scale,
    train_autoencoder,
)
from diffusion_lab.checkpoints import CheckpointError
from diffusion_lab.cli import main
from diffusion_lab.guidance import guided_eps
from diffusion_lab.text import (
    BOS,
    PAD,
    TextEncoder,
    Tokenizer,
    class_prompt,
    image_attributes,
    null_tokens,
    prompt_class,
    random_prompts,
    slant,
    vocabulary,
)
from diffusion_lab.training import TrainConfig, train
from diffusion_lab.unet import CrossAttention, attention_weights

TOK = Tokenizer(vocabulary("mnist"))


# --------------------------------------------------------------------------- tokenizer


def test_tokenizer_encodes_bos_words_pad_and_decodes_back():
    t = TOK.encode(["a thick seven", "Digit 7", ""])
    assert t.shape == (3, 8) and t.dtype == torch.long
    assert t[:, 0].tolist() == [BOS] * 3 and t[2, 1:].tolist() == [PAD] * 7
    assert t[0, 1:4].tolist() == [TOK.ids["a"], TOK.ids["thick"], TOK.ids["seven"]]
    assert TOK.decode(t) == ["a thick seven", "digit 7", ""]


def test_unknown_word_lists_the_vocabulary():
    with pytest.raises(ValueError, match=r"unknown word 'purple' in prompt 'a purple seven'; the vocabulary is: "
                                         r"zero, 0, one, 1, .*thick.*"):
        TOK.encode("a purple seven")
    with pytest.raises(ValueError, match="unknown word '<pad>'"):  # specials are not words
        TOK.encode("<pad> seven")
    with pytest.raises(ValueError, match="at most 7 fit"):
        TOK.encode("a thick thin upright slanted digit seven now".replace(" now", " 7"))
    with pytest.raises(ValueError, match="a prompt is a string"):
        TOK.encode([7])
    with pytest.raises(ValueError, match="no text vocabulary for 'cifar10'"):
        vocabulary("cifar10")


def test_prompt_classes_and_articles():
    assert prompt_class("a thick seven", "mnist") == 7 and prompt_class("digit 7", "mnist") == 7
    assert prompt_class("a thick digit", "mnist") == -1 and prompt_class("a one or a 7", "mnist") == -1
    assert prompt_class("an ankle boot", "fashion_mnist") == 9 and prompt_class("a shirt", "fashion_mnist") == 6
    assert prompt_class("a t-shirt", "fashion_mnist") == 0
    assert [class_prompt(c, "mnist") for c in (1, 7, 8)] == ["a one", "a seven", "an eight"]
    assert class_prompt(1, "fashion_mnist") == "trousers" and class_prompt(9, "fashion_mnist") == "an ankle boot"
    for ds in ("mnist", "fashion_mnist"):  # every canonical prompt tokenizes and names its class
        tok = Tokenizer(vocabulary(ds))
        for c in range(10):
            tok.encode(class_prompt(c, ds))
            assert prompt_class(class_prompt(c, ds), ds) == c


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist"])
def test_random_prompts_name_the_right_class_and_tokenize(dataset):
    data = load_data(dataset, "train", limit=400, verbose=False)
    attrs = image_attributes(data.images, data.labels, dataset)
    for level in attrs.values():  # terciles within each class
        counts = torch.bincount(level, minlength=3)
        assert counts.min() > 80, counts
    prompts = random_prompts(data.labels, attrs, dataset, torch.Generator().manual_seed(0))
    tok = Tokenizer(vocabulary(dataset))
    tok.encode(prompts)
    named = [prompt_class(p, dataset) for p in prompts]
    assert all(n in (-1, int(y)) for n, y in zip(named, data.labels))
    assert 0.8 < sum(n >= 0 for n in named) / len(named) < 1.0  # a few name no class ("a thick digit")


def test_thickness_and_slant_measure_what_they_say():
    img = -torch.ones(2, 1, 28, 28)
    img[0, 0, 4:24, 13:15] = 1  # a thin upright stroke
    img[1, 0, 4:24, 11:17] = 1  # a thick one
    ink = (img > 0).float().flatten(1).mean(1)
    assert ink[1] > 2 * ink[0]
    sheared = -torch.ones(1, 1, 28, 28)
    for r in range(4, 24):
        sheared[0, 0, r, 8 + (24 - r) // 2 : 10 + (24 - r) // 2] = 1  # leans right
    s = slant((torch.cat([img, sheared]) + 1) / 2)
    assert s[0] < 0.01 and s[2] > 0.4


# --------------------------------------------------------------------------- text encoder, cross-attention


def test_text_encoder_shapes_and_padding_is_ignored():
    enc = TextEncoder(len(TOK), dim=32, depth=2, heads=4).eval()
    t = TOK.encode(["a seven", "7"])
    out = enc(t)
    assert out.shape == (2, 8, 32)
    short = t[:, :3]  # the same prompts with less padding: the real tokens' outputs must not move
    torch.testing.assert_close(enc(short)[short != PAD], out[t != PAD])


def test_attention_weights_are_the_softmax_of_scaled_scores_with_padding_masked():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 5, 8, generator=g), torch.randn(2, 3, 8, generator=g)
    keep = torch.tensor([[True, True, False], [True, True, True]])
    w = attention_weights(q, k, keep)
    ref = torch.einsum("bnd,bld->bnl", q, k) / 8**0.5
    ref[0, :, 2] = -1e9
    torch.testing.assert_close(w, ref.softmax(-1))
    assert torch.allclose(w.sum(-1), torch.ones(2, 5)) and (w[0, :, 2] == 0).all()


def test_cross_attention_starts_as_identity_and_stores_maps():
    ca = CrossAttention(16, 32)
    h, ctx = torch.randn(2, 16, 7, 7), torch.randn(2, 4, 32)
    keep = torch.tensor([[True, True, False, False], [True] * 4])
    assert torch.equal(ca(h, ctx, keep), h)  # zero-initialised output projection
    ca.keep_attention = True
    ca(h, ctx, keep)
    assert ca.attention.shape == (2, 49, 4) and (ca.attention[0, :, 2:] == 0).all()


def text_unet():
    """A small latent text U-Net, moved away from its zero-initialised output layers."""
    m = UNet(image_size=7, in_channels=4, base_channels=16, channel_mults=(1,), vocab_size=len(TOK)).eval()
    for p in [*m.cross.parameters(), *m.conv_out.parameters()]:
        torch.nn.init.normal_(p, std=0.2)
    return m


def test_text_unet_conditions_on_tokens_and_null_prompt_is_the_default():
    m = text_unet()
    x, t = torch.randn(2, 4, 7, 7), torch.tensor([10, 900])
    a, b = m(x, t, TOK.encode(["a seven"] * 2)), m(x, t, TOK.encode(["a one"] * 2))
    assert a.shape == x.shape and not torch.allclose(a, b)
    torch.testing.assert_close(m(x, t, None), m(x, t, null_tokens(TOK.encode(["seven"] * 2))))
    with pytest.raises(ValueError, match="text-conditioned: y must be prompt tokens"):
        m(x, t, torch.tensor([3, 4]))
    with pytest.raises(ValueError, match="token ids must be integers in 0..31"):
        m(x, t, torch.full((2, 8), 99))
    with pytest.raises(ValueError, match="starts with BOS"):
        m(x, t, torch.zeros(2, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="labels .num_classes. or on text"):
        UNet(num_classes=10, vocab_size=30)


def test_guidance_over_text_uses_the_empty_prompt():
    m = text_unet()
    x, t, y = torch.randn(2, 4, 7, 7), torch.tensor([500, 500]), TOK.encode(["a seven", "a two"])
    with torch.no_grad():
        c, u = m(x, t, y), m(x, t, TOK.encode(["", ""]))
        torch.testing.assert_close(guided_eps(m, x, t, y, 3.0), u + 3.0 * (c - u), atol=1e-5, rtol=1e-5)


def test_existing_class_unet_has_no_new_weights():
    m = UNet(base_channels=8, channel_mults=(1, 2), num_classes=10)
    assert not any(k.startswith(("cross", "text_encoder")) for k in m.state_dict())


# --------------------------------------------------------------------------- autoencoder


def test_autoencoder_shapes_kl_and_scale():
    ae = build_autoencoder(base_channels=8)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    recon, kl = ae(x)
    assert recon.shape == x.shape and kl.shape == (3,) and (kl >= 0).all()
    assert ae.encode(x).shape == (3, 4, 7, 7)
    scale = set_latent_scale(ae, x)
    assert scale == pytest.approx(1 / ae.posterior(x)[0].std().item(), rel=1e-4)
    assert ae.encode(x).std().item() == pytest.approx(1.0, rel=1e-3)  # scaled to unit variance
    torch.testing.assert_close(ae.decode(ae.encode(x)), ae._run(ae.decoder, ae.posterior(x)[0]))
    with pytest.raises(ValueError, match=r"decode expects latents of shape \(B, 4, 7, 7\), got \(3, 1, 28, 28\)"):
        ae.decode(x)
    with pytest.raises(ValueError, match=r"autoencoder expects images of shape \(B, 1, 28, 28\)"):
        ae.encode(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="multiple of 4"):
        build_autoencoder(image_size=30)
    with pytest.raises(ValueError, match="kl_weight"):
        AutoencoderConfig(kl_weight=-1).validate()


def test_kl_is_the_closed_form_of_two_gaussians():
    ae = build_autoencoder(base_channels=8)
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    mean, log_var = ae.posterior(x)
    q = torch.distributions.Normal(mean, (0.5 * log_var).exp())
    ref = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).flatten(1).sum(1)
    torch.testing.assert_close(ae(x)[1], ref, rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def tiny_ae(tmp_path_factory):
    out = tmp_path_factory.mktemp("ae") / "ae.safetensors"
    data = load_data("mnist", "train", limit=500, verbose=False)
    ae, info = train_autoencoder(AutoencoderConfig(steps=30, base_channels=8, batch_size=16), out=out, data=data,
                                 progress=False)
    return out, ae, info


def test_autoencoder_training_lowers_the_error_and_round_trips(tiny_ae):
    out, ae, info = tiny_ae
    assert info["steps_done"] == 30
    test = load_data("fashion_mnist", "test", limit=200, verbose=False).images  # MNIST ships no test split
    from diffusion_lab.autoencoder import reconstruction_error

    err = reconstruction_error(ae, test)
    assert err["num"] == 200 and err["psnr_db"] == pytest.approx(10 * np.log10(4 / err["mse"]), abs=0.02)
    loaded = load_autoencoder(out)
    assert float(loaded.latent_scale) == pytest.approx(info["latent_scale"], rel=1e-4)
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    torch.testing.assert_close(loaded.decode(loaded.encode(x)), ae.decode(ae.encode(x)))
    config = json.loads(out.with_suffix(".json").read_text())
    assert config["latent_shape"] == [4, 7, 7] and "schedule" not in config


def test_latent_text_training_sampling_and_checkpoint(tiny_ae, tmp_path):
    ae_path, ae, _ = tiny_ae
    data = load_data("mnist", "train", limit=300, verbose=False)
    cfg = TrainConfig(steps=4, batch_size=8, base_channels=16, channel_mults=(1,), attention=False, T=50,
                      autoencoder=str(ae_path), text=True, checkpoint_every=0)
    r = train(cfg, out=tmp_path / "lt", data=data, progress=False)
    model, schedule, config = load_checkpoint(r.checkpoint)
    assert model.in_channels == 4 and model.image_size == 7 and model.num_classes is None
    assert config["text"]["vocab"] == vocabulary("mnist") and config["latent"]["latent_shape"] == [4, 7, 7]
    assert config["latent"]["autoencoder"].endswith("ae.safetensors")
    y = TOK.encode("a seven")
    torch.testing.assert_close(model(torch.zeros(1, 4, 7, 7), 3, y), r.model(torch.zeros(1, 4, 7, 7), 3, y))
    z = sample(model, schedule, 2, y=y, guidance=2.0, steps=3, progress=False)  # the same sampler, on latents
    assert z.shape == (2, 4, 7, 7)
    decoder = autoencoder_of(r.checkpoint, config)
    assert decoder.decode(z).shape == (2, 1, 28, 28)
    config["latent"]["autoencoder_sha256"] = "0" * 64
    with pytest.raises(CheckpointError, match="not the autoencoder .* was trained with"):
        autoencoder_of(r.checkpoint, config)


def test_class_conditional_latent_model_uses_labels(tiny_ae, tmp_path):
    data = load_data("mnist", "train", limit=300, verbose=False)
    cfg = TrainConfig(steps=2, batch_size=8, base_channels=16, channel_mults=(1,), attention=False, T=50,
                      autoencoder=str(tiny_ae[0]), checkpoint_every=0)
    r = train(cfg, data=data, progress=False)
    assert r.model.num_classes == 10 and r.model.text_encoder is None and r.model.in_channels == 4


# --------------------------------------------------------------------------- command line


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    ae, ck = folder / "ae.safetensors", folder / "text.safetensors"
    assert main(["train-autoencoder", "--steps", "2", "--batch-size", "8", "--base-channels", "8",
                 "--out", str(ae)]) == 0
    assert main(["train", "--text", "--autoencoder", str(ae), "--steps", "2", "--batch-size", "8",
                 "--base-channels", "8", "--channel-mults", "1", "--no-attention", "-T", "20", "--out", str(ck)]) == 0
    return ck


def test_sample_with_a_prompt_writes_the_prompts_class(text_checkpoint, tmp_path):
    out = tmp_path / "p.npz"
    assert main(["sample", "--checkpoint", str(text_checkpoint), "--prompt", "a thick seven", "--num", "3",
                 "--steps", "2", "--guidance", "3", "--out", str(out)]) == 0
    data = np.load(out)
    assert data["images"].shape == (3, 28, 28, 1) and data["labels"].tolist() == [7, 7, 7]
    assert main(["sample", "--checkpoint", str(text_checkpoint), "--prompt", "a thick digit", "--num", "2",
                 "--steps", "2", "--out", str(out)]) == 0
    assert np.load(out)["labels"].tolist() == [-1, -1]
    assert main(["sample", "--checkpoint", str(text_checkpoint), "--per-class", "1", "--steps", "2",
                 "--out", str(out)]) == 0
    assert np.load(out)["labels"].tolist() == list(range(10))


def test_sample_prompt_errors_are_one_line(text_checkpoint, tmp_path, capsys):
    out = str(tmp_path / "p.npz")
    assert main(["sample", "--checkpoint", str(text_checkpoint), "--prompt", "a purple seven", "--out", out]) == 2
    assert "unknown word 'purple'" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(text_checkpoint), "--prompt", "seven", "--clip", "--out", out]) == 2
    assert "drop --clip" in capsys.readouterr().err


def test_prompt_on_a_class_model_says_what_to_use(tmp_path, capsys):
    ck = tmp_path / "c.safetensors"
    assert main(["train", "--conditional", "--steps", "1", "--batch-size", "4", "--base-channels", "8",
                 "--channel-mults", "1", "--no-attention", "-T", "20", "--out", str(ck)]) == 0
    assert main(["sample", "--checkpoint", str(ck), "--prompt", "seven", "--out", str(tmp_path / "x.npz")]) == 2
    assert "use --labels or --per-class" in capsys.readouterr().err


# --------------------------------------------------------------------------- exercise checks, maps, widget


def test_attention_maps_cover_the_image_and_sum_to_one_over_tokens():
    from diffusion_lab.unet import cross_attention_maps

    m = UNet(image_size=8, in_channels=1, base_channels=8, channel_mults=(1, 2), vocab_size=len(TOK)).eval()
    y = TOK.encode(["a thick seven", "7"])
    maps = cross_attention_maps(m, torch.randn(2, 1, 8, 8), 500, y)
    assert maps.shape == (2, 8, 8, 8)  # (B, L, H, W): blocks at 4x4 are resized to 8x8
    torch.testing.assert_close(maps.sum(1), torch.ones(2, 8, 8))
    assert (maps[1, 2:] == 0).all() and all(ca.attention is None and not ca.keep_attention for ca in m.cross)
    with pytest.raises(ValueError, match="not text-conditioned"):
        cross_attention_maps(UNet(base_channels=8, channel_mults=(1,)), torch.randn(1, 1, 28, 28), 0, None)


def test_latent_as_image_tiles_channels():
    from diffusion_lab.course.plots import latent_as_image

    z = torch.arange(16.0).reshape(1, 4, 2, 2)
    tiles = latent_as_image(z, spread=1.0)
    assert tiles.shape == (1, 1, 4, 4) and tiles[0, 0, 0].tolist() == [0, 1, 4, 5]
    assert latent_as_image(z, size=28).shape == (1, 1, 28, 28)


def test_the_recipe_picks_the_unet_levels_for_the_latents(tiny_ae):
    """A latent model's levels come from its autoencoder's latent size, in TrainConfig (the command line
    and Python alike): halve only while the size divides, at most the image recipe's three levels."""
    from diffusion_lab.checkpoints import read_config
    from diffusion_lab.training import latent_channel_mults

    assert latent_channel_mults(7) == (1,) and latent_channel_mults(14) == (1, 2)
    assert latent_channel_mults(32) == (1, 2, 2)
    ae_path = str(tiny_ae[0])
    size = read_config(ae_path)["latent_shape"][-1]
    assert TrainConfig(autoencoder=ae_path).channel_mults == latent_channel_mults(size) == (1,)
    assert TrainConfig(autoencoder=ae_path, channel_mults=(1, 1)).channel_mults == (1, 1)  # given wins
    assert TrainConfig().channel_mults == (1, 2, 2)  # images: the dataset's default
