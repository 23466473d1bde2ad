"""Inpainting (RePaint) and image-to-image (SDEdit), diffusion_lab/edit.py."""

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
