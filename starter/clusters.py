"""k-means clusters of images, a discrete latent found without labels: a prior conditioned on an image's cluster,
with the cluster drawn from its share of the training set, is an unconditional prior p(k) = sum_c p(c) p(k | c)."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch.nn import functional as F

from starter.models.sampling import sample


def nearest(points: torch.Tensor, centres: torch.Tensor, batch_size: int = 10_000) -> torch.Tensor:
    """The index of the nearest centre (Euclidean) of each point: (N, D), (K, D) -> (N,)."""
    return torch.cat([torch.cdist(part, centres).argmin(1) for part in points.split(batch_size)])


def deskew(images: torch.Tensor) -> torch.Tensor:
    """Each of (N, H, W) or (N, 1, H, W) images sheared upright, its ink's centre of mass moved to the image's centre
    (same shape): row y moves sideways by -a (y - y0), where a = cov(x, y) / var(y) of the ink's positions, so a
    digit written with a slant and the same digit written upright come out alike to a pixel distance."""
    flat = images.reshape(-1, 1, *images.shape[-2:]).float()  # (N, 1, H, W)
    height, width = flat.shape[-2:]
    rows, columns = torch.arange(height, device=flat.device), torch.arange(width, device=flat.device)
    ys, xs = torch.meshgrid(rows.float(), columns.float(), indexing="ij")
    ink = flat.flatten(1)
    total = ink.sum(1).clamp(min=1e-6)
    x0, y0 = (ink * xs.flatten()).sum(1) / total, (ink * ys.flatten()).sum(1) / total
    dx, dy = xs.flatten() - x0[:, None], ys.flatten() - y0[:, None]
    slant = (ink * dx * dy).sum(1) / (ink * dy**2).sum(1).clamp(min=1e-6)
    # For each output position (u, v), in affine_grid's units ([-1, 1] from corner to corner), read the input at
    # x = u + a v + x0, y = v + y0 (the slant and the ink's centre converted to those units)
    theta = torch.zeros(len(flat), 2, 3, device=flat.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, 0, 1] = slant * (height - 1) / (width - 1)
    theta[:, 0, 2] = x0 / (width - 1) * 2 - 1
    theta[:, 1, 2] = y0 / (height - 1) * 2 - 1
    grid = F.affine_grid(theta, list(flat.shape), align_corners=True)
    return F.grid_sample(flat, grid, align_corners=True).reshape(images.shape)


CLUSTER_ON = ("pixels", "deskewed", "neighbours")


def cluster_points(
    train: torch.Tensor, test: torch.Tensor, on: str = "pixels", dims: int = 50, neighbours: int = 10, rounds: int = 2
) -> tuple[torch.Tensor, torch.Tensor]:
    """The points (N, D) that k-means groups, of the training and the test images ((N, H, W) or (N, 1, H, W)),
    fitted on the training images. `pixels`: the pixels. `deskewed`: the pixels of the images deskewed. `neighbours`:
    each image deskewed and scaled to unit length (its slant and the weight of its ink left out) and projected on the
    training images' first `dims` principal axes; then, `rounds` times, each point replaced by the mean of the points
    of its `neighbours` nearest training images (all of them if there are fewer), which pulls a digit toward the
    crowd of its own kind."""
    if on not in CLUSTER_ON:
        raise ValueError(f"cluster on one of {CLUSTER_ON}, got {on!r}")
    if on == "pixels":
        return train.flatten(1).float(), test.flatten(1).float()
    train, test = deskew(train).flatten(1), deskew(test).flatten(1)
    if on == "deskewed":
        return train, test
    train, test = F.normalize(train, dim=1), F.normalize(test, dim=1)
    centre, axes = train.mean(0), torch.linalg.eigh(torch.cov(train.T)).eigenvectors[:, -dims:]  # largest variances
    train, test = (train - centre) @ axes, (test - centre) @ axes
    count = min(neighbours, len(train))
    near = [
        torch.cat([torch.cdist(part, train).topk(count, largest=False).indices for part in points.split(1000)])
        for points in (train, test)
    ]
    for _ in range(rounds):
        train, test = train[near[0]].mean(1), train[near[1]].mean(1)
    return train, test


def kmeans(points: torch.Tensor, k: int, iterations: int = 20, seed: int = 0) -> torch.Tensor:
    """k centres (k, D) of (N, D) points by Lloyd's iterations from a k-means++ start (each new centre drawn with
    probability proportional to its squared distance from the nearest chosen one); a centre that loses all its
    points stays where it is."""
    if not 1 <= k <= len(points):
        raise ValueError(f"k must be between 1 and the number of points ({len(points)}), got {k}")
    points = points.float()
    generator = torch.Generator().manual_seed(seed)
    centres = points[torch.randint(len(points), (1,), generator=generator)]
    closest = torch.cdist(points, centres)[:, 0] ** 2
    for _ in range(k - 1):
        weights = closest if closest.sum() > 0 else torch.ones_like(closest)  # all points alike: any of them
        chosen = points[torch.multinomial(weights.cpu(), 1, generator=generator)]
        centres = torch.cat([centres, chosen])
        closest = torch.minimum(closest, torch.cdist(points, chosen)[:, 0] ** 2)
    for _ in range(iterations):
        members = nearest(points, centres)
        counts = torch.bincount(members, minlength=k)
        sums = torch.zeros_like(centres).index_add_(0, members, points)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp(min=1)[:, None], centres)
    return centres


def find_clusters(
    train: torch.Tensor, test: torch.Tensor, k: int, seed: int = 0, on: str = "pixels"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each training and test image's k-means cluster (N,), as `train-prior --clusters k --cluster-on on` finds
    them: k centres of the training images' `cluster_points`, then each image's nearest."""
    points, test_points = cluster_points(train, test, on)
    centres = kmeans(points, k, seed=seed)
    return nearest(points, centres), nearest(test_points, centres)


def purity(members: torch.Tensor, labels: torch.Tensor, k: int) -> tuple[float, torch.Tensor]:
    """(The share of points whose label is the most common one in their cluster, each cluster's most common label
    (k,)): how well clusters found without labels follow them. An empty cluster's label is 0."""
    counts = torch.zeros(k, int(labels.max()) + 1, dtype=torch.long).index_put_(
        (members.cpu(), labels.cpu()), torch.ones(len(labels), dtype=torch.long), accumulate=True
    )
    return float(counts.max(1).values.sum()) / len(labels), counts.argmax(1)


@torch.no_grad()
def mixture_nats_per_code(
    prior: torch.nn.Module, codes: torch.Tensor, shares: torch.Tensor, batch_size: int = 500
) -> float:
    """Nats per code of (N, H, W) `codes` under the unconditional prior sum_c shares[c] p(codes | c) of a prior
    conditioned on one of len(shares) clusters: -log of that sum for each grid (a log-sum-exp over the clusters),
    averaged over the grids and divided by the positions."""
    prior.eval()
    log_shares = shares.to(codes.device).log()
    total = 0.0
    for grids in codes.long().split(batch_size):
        per_cluster = []
        for cluster in range(len(shares)):
            condition = torch.full((len(grids),), cluster, device=grids.device)
            log_p = -F.cross_entropy(prior(grids, condition), grids, reduction="none").flatten(1).sum(1)
            per_cluster.append(log_p + log_shares[cluster])
        total -= float(torch.logsumexp(torch.stack(per_cluster), 0).sum())
    return total / codes.numel()


def draw_clusters(shares: torch.Tensor | list[float], n: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """n clusters (n,), each drawn independently by its share p(c)."""
    return torch.multinomial(torch.as_tensor(shares).float().cpu(), n, replacement=True).to(device)


@torch.no_grad()
def sample_mixture(
    prior: torch.nn.Module,
    n: int,
    shares: torch.Tensor,
    sampler: Callable[..., torch.Tensor] = sample,
    **sampling: Any,
) -> torch.Tensor:
    """n grids from the unconditional prior sum_c shares[c] p(k | c): each grid's cluster drawn from `shares`, then
    the grid by `sampler(prior, n, condition=clusters, **sampling)`."""
    clusters = draw_clusters(shares, n, next(prior.parameters()).device)
    return sampler(prior, n, condition=clusters, **sampling)
