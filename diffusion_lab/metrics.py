"""Sample-quality numbers measured in a small classifier's feature space (see classifier.py).

Frechet distance (Heusel et al. 2017, https://arxiv.org/abs/1706.08500, the "FID" formula) between
Gaussians fitted to two sets of features:   FD = ||mu_1 - mu_2||^2 + Tr(S_1 + S_2 - 2 (S_1 S_2)^(1/2))
It is biased upwards at small sample counts, so we always print the *real-data floor*: the same
distance between two halves of the real test set at the same sample count.

FD mixes two failures into one number. Improved precision and recall (Kynkaanniemi et al. 2019,
arXiv 1904.06991) separate them. Around every real feature put a ball reaching its k-th nearest real
neighbour: their union estimates the manifold of real images. Precision = the fraction of generated
samples inside it (are the samples realistic?); recall = the fraction of real samples inside the
generated samples' manifold, built the same way (do the samples cover all the real variety?).
Both depend on the set sizes, so the real and generated sets have the same size n.
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


def frechet_half_std(feats_a: torch.Tensor, feats_b: torch.Tensor, rounds: int = 50, seed: int = 0) -> float:
    """How much FD(a, b) would move with another set of samples of a's size n, by half-sampling: the
    standard deviation of FD over random halves of a, drawn without replacement.

    Why halves: a half of n points, taken from the n we have, varies around the full set's FD with
    variance sigma^2 (1/(n/2) - 1/n) = sigma^2 / n, the variance of FD from n fresh samples (the
    delete-d jackknife with d = n/2, whose factor (n - d)/d is then 1; Shao & Wu 1989, "A general
    theory for jackknife variance estimation", Annals of Statistics 17(3)). Resampling with replacement
    instead repeats points, which shrinks the fitted covariance and moves every resampled FD upwards,
    so a band built from those draws can miss the FD it was meant to surround.
    The band we report is centred on the full set's FD: fd +- fd_std. The reference set b is fixed
    (every model of one dataset and n is compared against the same b), so its noise is not counted.
    Two FDs closer than about twice the combined spread, 2 sqrt(std_1^2 + std_2^2), are not told apart.
    """
    if len(feats_a) < 8:
        raise ValueError(f"half-sampling needs at least 8 samples (halves of 4); got {len(feats_a)}.")
    g = torch.Generator().manual_seed(seed)
    half = len(feats_a) // 2
    fds = [frechet_distance(feats_a[torch.randperm(len(feats_a), generator=g)[:half]], feats_b)
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


def knn_radii(feats: torch.Tensor, k: int = 3, chunk: int = 1024) -> torch.Tensor:
    """Distance from each feature to its k-th nearest neighbour in the same set (itself excluded)."""
    if not 1 <= k < len(feats):
        raise ValueError(f"k must be in 1..{len(feats) - 1} for {len(feats)} samples, got {k}.")
    feats = feats.double()
    radii = [torch.cdist(feats[i : i + chunk], feats).kthvalue(k + 1, dim=1).values  # +1: the zero to itself
             for i in range(0, len(feats), chunk)]
    return torch.cat(radii)


def manifold_coverage(query: torch.Tensor, ref: torch.Tensor, ref_radii: torch.Tensor, chunk: int = 1024) -> float:
    """Fraction of `query` features inside at least one ball (ref_i, ref_radii_i)."""
    query, ref = query.double(), ref.double()
    inside = [(torch.cdist(query[i : i + chunk], ref) <= ref_radii[None, :]).any(dim=1)
              for i in range(0, len(query), chunk)]
    return float(torch.cat(inside).double().mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019, eq. 1-2) with k-NN balls, k = 3 as in the paper."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D); got {tuple(real.shape)} and {tuple(fake.shape)}.")
    precision = manifold_coverage(fake, real, knn_radii(real, k))
    recall = manifold_coverage(real, fake, knn_radii(fake, k))
    return precision, recall
