"""Metrics against closed forms."""

import math

import pytest
import torch

from diffusion_lab.metrics import class_accuracy, class_entropy, frechet_distance, gaussian_frechet, within_class_spread


def test_gaussian_frechet_closed_form_for_diagonal_covariances():
    mu_a, mu_b = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 1.0, 0.0])
    va, vb = torch.tensor([1.0, 4.0, 9.0]), torch.tensor([4.0, 1.0, 9.0])
    expected = ((mu_a - mu_b) ** 2).sum() + ((va.sqrt() - vb.sqrt()) ** 2).sum()
    got = gaussian_frechet(mu_a.double(), torch.diag(va).double(), mu_b.double(), torch.diag(vb).double())
    assert math.isclose(got, expected.item(), rel_tol=1e-9)


def test_frechet_distance_of_samples():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20000, 4, generator=g)
    b = torch.randn(20000, 4, generator=g) * 2 + 1
    # N(0, I) vs N(1, 4I): ||1||^2 * 4 dims + 4 * (1 - 2)^2 = 8
    assert abs(frechet_distance(a, b) - 8.0) < 0.3
    assert frechet_distance(a, a) < 1e-6
    with pytest.raises(ValueError, match="features must be"):
        frechet_distance(a, torch.randn(10, 3))


def test_class_metrics():
    assert class_accuracy(torch.tensor([1, 2, 3, 3]), torch.tensor([1, 2, 3, 4])) == 0.75
    assert math.isclose(class_entropy(torch.arange(10).repeat(5), 10), 1.0)
    assert class_entropy(torch.zeros(50, dtype=torch.long), 10) == 0.0
    feats = torch.tensor([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [5.0, 5.0]])
    assert within_class_spread(feats, torch.tensor([0, 0, 1, 1])) == pytest.approx(0.5)


def test_real_floor_is_class_balanced_and_shrinks_with_more_samples():
    from diffusion_lab.evaluate import real_floor

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(2000) % 4
    feats = torch.randn(2000, 3, generator=g) + labels[:, None].float() * 3  # four separated clusters
    small, ref = real_floor(feats, 40, labels)
    large, _ = real_floor(feats, 400, labels)
    assert len(ref) == 1000 and large < small
    with pytest.raises(ValueError, match="exceeds half the test set"):
        real_floor(feats, 1001)
    rare = labels.clone()
    rare[rare == 3] = torch.where(torch.arange(int((rare == 3).sum())) < 40, 3, 0)  # class 3: 40 images left
    with pytest.raises(ValueError, match="of class 3"):
        real_floor(feats, 400, rare)  # 100 of each class wanted from about 20 in half the set


def test_frechet_half_std_is_the_spread_of_fresh_draws():
    """Half-sampling one set of n estimates the spread of FD over many independent sets of n."""
    from diffusion_lab.metrics import frechet_distance, frechet_half_std

    g = torch.Generator().manual_seed(0)
    reference = torch.randn(4000, 8, generator=g)
    draw = lambda: torch.randn(300, 8, generator=g) * 1.2 + 0.3  # noqa: E731
    fresh = torch.tensor([frechet_distance(draw(), reference) for _ in range(200)]).std()
    estimates = torch.tensor([frechet_half_std(draw(), reference, rounds=40) for _ in range(10)])
    assert 0.7 < float(estimates.mean() / fresh) < 1.3


def test_frechet_half_std_shrinks_with_more_samples():
    from diffusion_lab.metrics import frechet_half_std

    g = torch.Generator().manual_seed(0)
    reference = torch.randn(2000, 8, generator=g)
    small = frechet_half_std(torch.randn(50, 8, generator=g) + 0.3, reference, rounds=30)
    large = frechet_half_std(torch.randn(1000, 8, generator=g) + 0.3, reference, rounds=30)
    assert 0 < large < small
    with pytest.raises(ValueError, match="at least 8"):
        frechet_half_std(torch.randn(5, 8), reference)


def _mixture(n, modes, seed, only_mode=None):
    g = torch.Generator().manual_seed(seed)
    centres = torch.eye(modes, 12) * 20  # far-apart modes
    which = torch.randint(modes, (n,), generator=g) if only_mode is None else torch.full((n,), only_mode)
    return centres[which] + torch.randn(n, 12, generator=g)


def test_precision_recall_on_constructed_cases():
    from diffusion_lab.metrics import knn_radii, precision_recall

    real = _mixture(600, 10, seed=0)
    assert precision_recall(real, real) == (1.0, 1.0)  # each point lies in its own ball
    # another draw of the same distribution: k = 3 balls catch about 80% of it (measured 0.79-0.84)
    p, r = precision_recall(real, _mixture(600, 10, seed=1))
    assert p > 0.7 and r > 0.7, (p, r)
    p, r = precision_recall(real, _mixture(600, 10, seed=2, only_mode=3))  # mode collapse: one mode of ten
    assert p > 0.7 and r < 0.15, (p, r)
    p, r = precision_recall(real, _mixture(600, 10, seed=3) + 50)  # off the data altogether
    assert p == 0.0 and r == 0.0
    # the k-th neighbour, not counting the point itself: on a line 0, 1, 3, 7 with k = 1
    line = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(line, k=1).tolist() == [1.0, 1.0, 2.0, 4.0]
    with pytest.raises(ValueError, match="k must be"):
        knn_radii(line, k=4)
