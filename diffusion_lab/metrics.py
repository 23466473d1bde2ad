"""Sample-quality numbers measured in a small classifier's feature space (see classifier.py).

Frechet distance (Heusel et al. 2017, https://arxiv.org/abs/1706.08500, the "FID" formula) between
Gaussians fitted to two sets of features:   FD = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))
It is biased upwards at small sample counts, so we always print the *real-data floor*: the same
distance between two halves of the real test set at the same sample count.
"""

from __future__ import annotations

import math

import torch


def frechet_distance(feats_a: torch.Tensor, feats_b: torch.Tensor) -> float:
    """FD between Gaussians fitted to (N, D) and (M, D) feature sets."""
    a, b = feats_a.double(), feats_b.double()
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D); got {tuple(a.shape)} and {tuple(b.shape)}.")
    if len(a) < 2 or len(b) < 2:
        raise ValueError("need at least 2 samples on each side to estimate a covariance.")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = torch.cov(a.T), torch.cov(b.T)
    return gaussian_frechet(mu_a, cov_a, mu_b, cov_b)


def frechet_bootstrap_std(feats_a: torch.Tensor, feats_b: torch.Tensor, rounds: int = 50, seed: int = 0) -> float:
    """How much FD(a, b) would move with another set of samples of a's size: the standard deviation of
    FD over bootstrap resamples of a (drawn with replacement; Efron 1979). Two FDs closer than about
    twice this are not told apart by the measurement."""
    g = torch.Generator().manual_seed(seed)
    fds = [frechet_distance(feats_a[torch.randint(len(feats_a), (len(feats_a),), generator=g)], feats_b)
           for _ in range(rounds)]
    return float(torch.tensor(fds).std())


def gaussian_frechet(mu_a, cov_a, mu_b, cov_b) -> float:
    """Closed form for two Gaussians. Tr((S_a S_b)^(1/2)) = sum sqrt(eig(S_a^(1/2) S_b S_a^(1/2))),
    whose matrix is symmetric PSD, so a symmetric eigen-solver suffices (tiny negative eigenvalues
    from rounding are treated as 0)."""
    evals, evecs = torch.linalg.eigh(cov_a)
    sqrt_a = evecs @ torch.diag(evals.clamp(min=0).sqrt()) @ evecs.T
    middle = torch.linalg.eigvalsh(sqrt_a @ cov_b @ sqrt_a).clamp(min=0).sqrt().sum()
    fd = (mu_a - mu_b).pow(2).sum() + torch.trace(cov_a) + torch.trace(cov_b) - 2 * middle
    return float(fd)


def class_accuracy(predicted: torch.Tensor, requested: torch.Tensor) -> float:
    """Fraction of conditional samples the classifier assigns to the class that was asked for."""
    return float((predicted == requested).float().mean())


def class_entropy(predicted: torch.Tensor, num_classes: int) -> float:
    """Entropy of the predicted-class histogram / log(num_classes): 1 = all classes equally often
    (diverse), 0 = one class only (mode collapse)."""
    p = torch.bincount(predicted, minlength=num_classes).double() / len(predicted)
    p = p[p > 0]
    return float(-(p * p.log()).sum() / math.log(num_classes))


def within_class_spread(feats: torch.Tensor, labels: torch.Tensor) -> float:
    """Mean over classes of the average distance of a class's features from their centroid:
    how varied the images of one class are (guidance trades this away for adherence)."""
    spreads = []
    for c in labels.unique():
        f = feats[labels == c].double()
        if len(f) > 1:
            spreads.append((f - f.mean(0)).norm(dim=1).mean())
    if not spreads:
        raise ValueError("need at least two samples of some class to measure spread.")
    return float(torch.stack(spreads).mean())
