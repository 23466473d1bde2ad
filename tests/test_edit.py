"""Inpainting (RePaint) and image-to-image (SDEdit), diffusion_lab/edit.py and `python -m diffusion_lab edit`."""

import numpy as np
import pytest
import torch

import diffusion_lab as dl
from diffusion_lab import edit
from diffusion_lab.data import to_uint8


@pytest.fixture(scope="module")
def shipped():
    return dl.load_pretrained("mnist_cfg")


def _digits(n=3):
    return dl.load_data("mnist", "train", verbose=False).images[:n]


def test_inpainting_keeps_the_known_pixels_bit_for_bit(shipped):
    model, schedule, _ = shipped
    x = _digits()
    mask = torch.ones(28, 28)
    mask[14:] = 0
    out = edit.inpaint(model, schedule, x, mask, y=torch.tensor([1, 2, 3]), guidance=3.0, steps=4, jumps=1,
                       jump_length=2)
    assert (to_uint8(out)[:, :14] == to_uint8(x)[:, :14]).all()
    assert (out[..., 14:, :] - x[..., 14:, :]).abs().max() > 0.1  # the hidden half was generated anew
    again = edit.inpaint(model, schedule, x, mask, y=torch.tensor([1, 2, 3]), guidance=3.0, steps=4, jumps=1,
                         jump_length=2)
    torch.testing.assert_close(out, again, rtol=0, atol=0)  # one seed, one result


def test_resampling_walk_and_model_calls():
    assert edit.repaint_positions(4, 0, 2) == [0, 1, 2, 3, 4]
    assert edit.repaint_positions(4, 1, 2) == [0, 1, 2, 0, 1, 2, 3, 4]
    assert edit.inpaint_model_calls(25, 2, 5) == 25 + 4 * 2 * 5


def test_strength_moves_from_the_input_to_a_new_image(shipped):
    model, schedule, _ = shipped
    x = _digits()
    small, full = (edit.image_to_image(model, schedule, x, s, steps=10) for s in (0.05, 1.0))
    assert (small - x).abs().mean() < 0.1 < (full - x).abs().mean()


@pytest.mark.parametrize("mask,match", [(torch.ones(28, 28), "nothing to inpaint"),
                                        (torch.zeros(14, 28), "does not fit"), (torch.full((28, 28), 0.5), "only 0")])
def test_bad_masks_are_refused(shipped, mask, match):
    model, schedule, _ = shipped
    with pytest.raises(ValueError, match=match):
        edit.inpaint(model, schedule, _digits(), mask, steps=2)


def test_bad_strength_and_images_are_refused(shipped):
    model, schedule, _ = shipped
    for s in (0, 1.5):
        with pytest.raises(ValueError, match=r"strength must be in \(0, 1\]"):
            edit.image_to_image(model, schedule, _digits(), s)
    with pytest.raises(ValueError, match="do not fit this model"):
        edit.image_to_image(model, schedule, torch.zeros(2, 3, 28, 28), 0.5)


def test_the_ancestral_step_is_ddim_with_eta_1_on_the_vp_path():
    # the general posterior step (a, b) against samplers.ddim_step(eta=1), the closed form on the VP path
    from diffusion_lab.samplers import ddim_step

    schedule = dl.make_schedule("linear", 1000)
    x, eps, z = (torch.randn(2, 1, 4, 4, generator=torch.Generator().manual_seed(k), dtype=torch.float64)
                 for k in range(3))
    for t, s in ((999, 899), (500, 460), (40, 0), (40, -1)):
        lv = lambda u: (1.0, 0.0, -1) if u < 0 else (float(schedule.alpha_bar[u]) ** 0.5,
                                                     (1 - float(schedule.alpha_bar[u])) ** 0.5, u)
        a_t, b_t, _ = lv(t)
        x0 = (x - b_t * eps) / a_t
        ours = edit.ancestral_step(x0, eps, lv(t), lv(s), z)
        theirs, _ = ddim_step(x, eps, t, s, schedule, eta=1.0, noise=z)
        torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    # forward noise up keeps the marginal: from x_s ~ N(a_s x0, b_s^2) to N(a_t x0, b_t^2) on the linear path
    x0 = torch.full((200_000,), 0.5, dtype=torch.float64)
    lo, hi = (0.7, 0.3, 0.3), (0.2, 0.8, 0.8)
    x_s = lo[0] * x0 + lo[1] * torch.randn_like(x0)
    x_t = edit.noise_up(x_s, lo, hi, torch.randn_like(x0))
    assert abs(x_t.mean().item() - 0.1) < 0.01 and abs(x_t.std().item() - 0.8) < 0.01


@pytest.mark.parametrize("name", ["mnist_flow", "mnist_latent", "mnist_text", "mnist_uncond"])
def test_every_kind_of_generator_edits_and_keeps_the_known_pixels(name):
    from diffusion_lab.autoencoder import autoencoder_of
    from diffusion_lab.checkpoints import pretrained_path

    model, schedule, config = dl.load_pretrained(name)
    ae = autoencoder_of(pretrained_path(name), config)
    x = _digits(2)
    if name == "mnist_text":
        from diffusion_lab.text import tokenizer_of
        y = tokenizer_of(config).encode("a seven").expand(2, -1)
    else:
        y = None if name == "mnist_uncond" else torch.tensor([7, 7])
    mask = torch.ones(28, 28)
    mask[:, 10:20] = 0
    out = edit.inpaint(model, schedule, x, mask, y=y, guidance=None if y is None else 3.0, steps=3, jumps=1,
                       jump_length=2, autoencoder=ae)
    assert out.shape == x.shape and (to_uint8(out)[:, :, :10] == to_uint8(x)[:, :, :10]).all()
    assert (out[..., 10:20] - x[..., 10:20]).abs().max() > 0.1
    redrawn = edit.image_to_image(model, schedule, x, 0.5, y=y, steps=4, autoencoder=ae)
    assert redrawn.shape == x.shape and torch.isfinite(redrawn).all() and (redrawn - x).abs().max() > 0.05


# --------------------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("edit")
    imgs = to_uint8(_digits(2))  # (N, 28, 28, 1), as `sample` writes them
    np.savez(d / "in.npz", images=imgs[..., 0])
    np.savez(d / "in_nhwc.npz", images=imgs)
    np.savez(d / "in_float.npz", images=imgs.astype(np.float32))
    np.savez(d / "in_small.npz", images=imgs[:, :20, :20, 0])
    np.savez(d / "other.npz", pictures=imgs)
    m = np.ones((28, 28), bool)
    m[14:] = False
    np.savez(d / "mask.npz", mask=m)
    np.savez(d / "mask_u8.npz", mask=np.stack([m, m]).astype(np.uint8))
    np.savez(d / "mask_ones.npz", mask=np.ones((28, 28), np.uint8))
    np.savez(d / "mask_wide.npz", mask=np.ones((28, 30), bool))
    np.savez(d / "mask_255.npz", mask=m.astype(np.uint8) * 255)
    return d


def _edit(files, *flags):
    from diffusion_lab.cli import main
    return main(["edit", "--images", str(files / "in.npz"), "--steps", "2", *flags])


@pytest.mark.parametrize("how", [["--mask", "mask.npz", "--labels", "5"], ["--mask", "mask_u8.npz"],
                                 ["--strength", "0.4", "--labels", "1,2"]])
def test_edit_writes_images_and_labels_and_keeps_the_known_half(files, how, tmp_path, capsys):
    flags = [str(files / v) if v.endswith(".npz") else v for v in how]
    out = tmp_path / "out.npz"
    assert _edit(files, "--checkpoint", "mnist_cfg", *flags, "--out", str(out)) == 0
    got, src = np.load(out), np.load(files / "in.npz")["images"]
    assert got["images"].shape == (2, 28, 28, 1) and got["images"].dtype == np.uint8
    assert got["labels"].tolist() == ({"--labels": [5, 5]} if "5" in how else
                                      {"--labels": [1, 2]} if "1,2" in how else {"--labels": [-1, -1]})["--labels"]
    if "--mask" in how:
        assert (got["images"][:, :14, :, 0] == src[:, :14]).all()


EDIT_BAD = [
    (["--mask", "mask_wide.npz"], "a mask of shape (28, 30) does not fit 2 images of 28x28"),
    (["--mask", "mask_ones.npz"], "keeps every pixel of an image, so there is nothing to inpaint"),
    (["--mask", "mask_255.npz"], "the mask must be bool or uint8 of 0 and 1"),
    (["--strength", "0"], "strength must be in (0, 1]"),
    (["--strength", "1.01"], "strength must be in (0, 1]"),
    (["--strength", "inf"], "argument --strength: must be a finite number"),
    (["--strength", "0.5", "--images", "in_float.npz"], "images must be uint8 pixels 0..255, got float32"),
    (["--strength", "0.5", "--images", "in_small.npz"], "images of shape (2, 20, 20) do not fit this checkpoint"),
    (["--strength", "0.5", "--images", "other.npz"], "holds pictures, not `images`"),
    (["--strength", "0.5", "--images", "missing.npz"], "no such file"),
    ([], "one of the arguments --mask --strength is required"),
    (["--mask", "mask.npz", "--strength", "0.5"], "not allowed with argument"),
    (["--strength", "0.5", "--jumps", "2"], "--jumps is inpainting's"),
    (["--mask", "mask.npz", "--labels", "1,2,3"], "--labels gives 3 classes for 2 images"),
    (["--mask", "mask.npz", "--labels", "10"], "--labels 10 is not a class of this checkpoint"),
    (["--mask", "mask.npz", "--prompt", "seven"], "--prompt needs a text-conditioned checkpoint"),
    (["--mask", "mask.npz", "--checkpoint", "mnist_ae"], "is an autoencoder, not a generator"),
    (["--mask", "mask.npz", "--checkpoint", "mnist_uncond", "--labels", "1"], "unconditional: drop --labels."),
    (["--mask", "mask.npz", "--checkpoint", "mnist_uncond", "--guidance", "3"], "--guidance needs labels"),
]


@pytest.mark.parametrize("flags,expected", EDIT_BAD, ids=[" ".join(f) for f, _ in EDIT_BAD])
def test_edit_refuses_bad_input_in_one_line_and_writes_nothing(files, flags, expected, tmp_path, capsys):
    from diffusion_lab.cli import main
    flags = [str(files / v) if v.endswith(".npz") else v for v in flags]
    if "--checkpoint" not in flags:
        flags += ["--checkpoint", "mnist_cfg"]
    if "--images" not in flags:
        flags += ["--images", str(files / "in.npz")]
    out = tmp_path / "out.npz"
    assert main(["edit", "--steps", "2", *flags, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err and err.count("\n") == 0 and "Traceback" not in err, err
    assert not out.exists() and list(tmp_path.iterdir()) == []
