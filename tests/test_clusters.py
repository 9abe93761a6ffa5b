"""k-means clusters, a prior conditioned on them (`train-prior --clusters`), and the likelihood of its mixture."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F
from training_runs import TINY_PIXELCNN, TINY_RUN

from starter.checkpoints import load_model, read_checkpoint
from starter.cli import main as cli
from starter.clusters import (
    cluster_points,
    deskew,
    kmeans,
    mixture_nats_per_code,
    nearest,
    purity,
    sample_mixture,
)
from starter.config import CHECKPOINTS
from starter.data import load_mnist
from starter.models.prior import CodePrior


def blobs(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """300 points in 5 dimensions around 3 far-apart centres, and which centre each came from."""
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0] * 5, [10.0] * 5, [-10.0, 10.0, -10.0, 10.0, -10.0]])
    truth = torch.arange(3).repeat(100)
    return centres[truth] + torch.randn(300, 5, generator=generator), truth


def test_nearest_is_the_closest_centre():
    points, centres = torch.randn(50, 4), torch.randn(6, 4)
    brute = torch.tensor([min(range(6), key=lambda j: float((p - centres[j]).norm())) for p in points])
    assert torch.equal(nearest(points, centres, batch_size=7), brute)


def test_kmeans_finds_separate_blobs_and_each_centre_is_the_mean_of_its_points():
    points, truth = blobs()
    centres = kmeans(points, 3)
    members = nearest(points, centres)
    for cluster in range(3):  # each cluster is one blob, whole
        assert len(set(truth[members == cluster].tolist())) == 1 and (members == cluster).sum() == 100
        assert torch.allclose(centres[cluster], points[members == cluster].mean(0), atol=1e-5)


def test_kmeans_settles_where_lloyds_step_changes_nothing():
    """On overlapping data too: after enough iterations a further step (assign, then average) moves no centre."""
    points = torch.randn(400, 3, generator=torch.Generator().manual_seed(1))
    centres = kmeans(points, 5, iterations=100)
    members = nearest(points, centres)
    assert torch.allclose(torch.stack([points[members == j].mean(0) for j in range(5)]), centres, atol=1e-5)
    assert torch.equal(kmeans(points, 5, iterations=100), centres)  # the same seed, the same centres


def test_kmeans_refuses_impossible_k_and_copes_with_identical_points():
    with pytest.raises(ValueError, match="between 1 and the number of points"):
        kmeans(torch.randn(4, 2), 5)
    with pytest.raises(ValueError, match="between 1 and the number of points"):
        kmeans(torch.randn(4, 2), 0)
    same = torch.ones(10, 3)
    assert torch.equal(kmeans(same, 2), torch.ones(2, 3))


def test_purity_is_the_share_of_points_with_their_clusters_most_common_label():
    members, labels = torch.tensor([0, 0, 0, 1, 1, 3]), torch.tensor([3, 3, 1, 2, 2, 0])
    share, majority = purity(members, labels, k=4)
    assert share == pytest.approx(5 / 6) and majority.tolist() == [3, 2, 0, 0]  # cluster 2 is empty
    assert purity(labels, labels, k=4)[0] == 1.0


def slanted_bar(slope: float, shift: int = 0) -> torch.Tensor:
    """A (28, 28) image of a one-pixel line x = 14 + shift + slope (y - 13.5), rows 4 to 23."""
    image = torch.zeros(28, 28)
    for y in range(4, 24):
        image[y, round(14 + shift + slope * (y - 13.5))] = 1
    return image


@pytest.mark.parametrize("slope", [0.5, -0.3])
def test_deskew_stands_a_slanted_stroke_upright_at_the_centre(slope):
    upright = deskew(slanted_bar(slope, shift=-5)[None])[0]
    rows = upright[4:24]
    columns = (rows * torch.arange(28.0)).sum(1) / rows.sum(1)  # where each row's ink sits
    assert torch.allclose(columns, torch.full((20,), 13.5), atol=0.5)  # the middle column, within the rounding
    assert deskew(slanted_bar(0.0)[None, None]).shape == (1, 1, 28, 28)  # (N, 1, H, W) kept as it came


def test_deskew_moves_the_ink_to_the_centre_and_leaves_an_upright_centred_image_alone():
    corner = torch.zeros(1, 28, 28)
    corner[0, 2:6, 2:6] = 1
    moved = deskew(corner)[0]
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centre = torch.stack([(moved * ys).sum(), (moved * xs).sum()]) / moved.sum()
    assert torch.allclose(centre, torch.tensor([13.5, 13.5]), atol=1e-3) and moved.sum() == pytest.approx(16, rel=0.01)
    square = torch.zeros(1, 28, 28)
    square[0, 10:18, 10:18] = 1  # upright, its centre of mass at 13.5
    assert torch.allclose(deskew(square), square, atol=1e-5)


def ink_blots(n: int, seed: int = 0) -> torch.Tensor:
    """n (28, 28) images of random ink inside rows and columns 8 to 19, room to move them 3 pixels either way."""
    images = torch.zeros(n, 28, 28)
    images[:, 8:20, 8:20] = torch.rand(n, 12, 12, generator=torch.Generator().manual_seed(seed)) ** 4
    return images


def test_cluster_points_on_pixels_or_deskewed_pixels_are_those_pixels():
    train, test = ink_blots(20), ink_blots(5, seed=1)
    for on, transform in [("pixels", lambda x: x), ("deskewed", deskew)]:
        points = cluster_points(train, test, on)
        assert all(torch.equal(p, transform(x).flatten(1)) for p, x in zip(points, (train, test)))
    with pytest.raises(ValueError, match="cluster on one of"):
        cluster_points(train, test, "labels")


def test_neighbour_points_leave_out_the_weight_and_the_place_of_the_ink():
    train = ink_blots(30)
    moved = torch.roll(2 * train[:1], shifts=(3, -2), dims=(1, 2))  # twice the ink, 3 rows down, 2 columns left
    points, moved_points = cluster_points(train, moved, "neighbours", neighbours=5)
    assert moved_points.shape == (1, 50) and torch.allclose(moved_points[0], points[0], atol=1e-4)
    few = cluster_points(train[:4], moved, "neighbours")  # fewer training images than neighbours: the mean of all
    assert all(torch.allclose(p, torch.zeros_like(p), atol=1e-6) for p in few)  # of their centred points, 0


@pytest.mark.parametrize("rounds", [0, 1, 2])
def test_neighbour_points_are_averages_over_the_nearest_training_images(rounds):
    """With more principal axes than training images the projection keeps every distance between them; each round
    then replaces each point by the mean of its 3 nearest training points (a training image's own among them)."""
    train, test = ink_blots(20), ink_blots(4, seed=1)
    projected, test_projected = cluster_points(train, test, "neighbours", rounds=0)
    unit = F.normalize(deskew(train).flatten(1), dim=1)
    assert torch.allclose(torch.cdist(projected, projected), torch.cdist(unit, unit), atol=1e-4)
    near_train = torch.cdist(projected, projected).argsort(1)[:, :3]
    near_test = torch.cdist(test_projected, projected).argsort(1)[:, :3]
    expected_train, expected_test = projected, test_projected
    for _ in range(rounds):
        expected_train, expected_test = expected_train[near_train].mean(1), expected_train[near_test].mean(1)
    points = cluster_points(train, test, "neighbours", neighbours=3, rounds=rounds)
    assert torch.allclose(points[0], expected_train, atol=1e-5) and torch.allclose(points[1], expected_test, atol=1e-5)


@torch.no_grad()
def test_the_mixture_likelihood_is_the_log_of_the_weighted_sum_over_clusters():
    torch.manual_seed(0)
    prior = CodePrior(num_codes=8, channels=8, blocks=1, embed=4, num_classes=3).eval()
    codes, shares = torch.randint(8, (5, 7, 7)), torch.tensor([0.5, 0.3, 0.2])
    probability = torch.zeros(5, dtype=torch.float64)
    for cluster in range(3):  # p(grid) = sum_c p(c) prod_i p(code_i | earlier codes, c), written out
        log_probs = F.log_softmax(prior(codes, torch.full((5,), cluster)), 1).double()
        per_code = log_probs.gather(1, codes[:, None]).flatten(1)
        probability += shares[cluster].double() * per_code.sum(1).exp()
    expected = float(-probability.log().sum()) / codes.numel()
    assert mixture_nats_per_code(prior, codes, shares, batch_size=2) == pytest.approx(expected, rel=1e-5)
    one = torch.tensor([1.0, 0.0, 0.0])  # all weight on cluster 0: its conditional likelihood
    conditional = F.cross_entropy(prior(codes, torch.zeros(5, dtype=torch.long)), codes).item()
    assert mixture_nats_per_code(prior, codes, one) == pytest.approx(conditional, rel=1e-5)


def test_mixture_samples_draw_each_cluster_by_its_share():
    prior = CodePrior(num_codes=8, channels=8, blocks=1, embed=4, num_classes=3)
    seen = {}

    def recording(model, n, condition, **options):
        seen.update(condition=condition, **options)
        return torch.zeros(n, 7, 7, dtype=torch.long)

    torch.manual_seed(0)
    sample_mixture(prior, 3000, torch.tensor([0.2, 0.0, 0.8]), recording, temperature=0.5)
    shares = torch.bincount(seen["condition"], minlength=3) / 3000
    assert shares[1] == 0 and abs(shares[0] - 0.2) < 0.03 and seen["temperature"] == 0.5
    assert sample_mixture(prior, 4, torch.tensor([0.5, 0.5, 0.0])).shape == (4, 7, 7)  # the course's sampler


@pytest.mark.parametrize("on", [None, "deskewed", "neighbours"])
def test_cli_trains_a_prior_on_clusters_of_the_images_and_records_their_shares(tmp_path, monkeypatch, local_mnist, on):
    monkeypatch.setenv("COURSE_MNIST_DIR", str(local_mnist))
    common = ["train-prior", "--data", str(tmp_path / "data"), "--vqvae", str(CHECKPOINTS / "vqvae.pt")]
    out = tmp_path / "clusters"
    options = ["--clusters", "4", "--seed", "3", "--half", *(["--cluster-on", on] if on else [])]
    assert cli([*common, "--out", str(out), *TINY_RUN, *TINY_PIXELCNN, *options]) == 0
    prior, metrics = load_model(out / "checkpoint.pt")
    assert prior.num_classes == 4 and metrics["clusters"] == 4 and metrics["cluster_on"] == (on or "pixels")
    stored = read_checkpoint(out / "checkpoint.pt")["state_dict"].values()  # --half: float16 on disk, float32 loaded
    assert metrics["stored_as"] == "float16" and {w.dtype for w in stored if w.is_floating_point()} == {torch.float16}
    assert {w.dtype for w in prior.parameters()} == {torch.float32}
    images = load_mnist(train=True, limit=256, root=tmp_path / "data").tensors[0]
    points, _ = cluster_points(images, images[:1], on or "pixels")
    counts = torch.bincount(nearest(points, kmeans(points, 4, seed=3)), minlength=4)
    assert metrics["cluster_shares"] == pytest.approx((counts / 256).tolist())  # k-means on those points, its seed
    assert math.isclose(sum(metrics["cluster_shares"]), 1, rel_tol=1e-6)
    assert 0 < metrics["test_nats_per_code"] < math.log(128) + 0.5
    asked = []

    def recording(model, n, temperature, condition, **options):
        asked.append(condition)
        return torch.zeros(n, 7, 7, dtype=torch.long)

    monkeypatch.setattr("starter.cli.sample", recording)
    drawing = ["sample", "--data", str(tmp_path / "data"), "--checkpoint", str(out / "checkpoint.pt"), "--n", "1000"]
    assert cli([*drawing, "--out", str(tmp_path / "mixture.png")]) == 0
    drawn = torch.bincount(asked[0], minlength=4) / 1000  # unconditional: each grid's cluster drawn by its share
    assert torch.allclose(drawn, torch.tensor(metrics["cluster_shares"]), atol=0.05)
    assert cli([*drawing, "--condition", "2", "--out", str(tmp_path / "two.png")]) == 0
    assert torch.equal(asked[1], torch.full((1000,), 2))


@pytest.mark.parametrize(
    "clusters, extra, message",
    [
        ("4", ["--conditional"], "not allowed with argument"),
        ("4", ["--level", "top"], "--clusters is for one-level priors"),
        ("-2", [], "a whole number of at least 1, got -2"),
        ("2.5", [], "a whole number of at least 1, got 2.5"),
        ("300", ["--limit", "256"], "--clusters 300: k must be between 1 and the number of points (256)"),
        (None, ["--cluster-on", "deskewed"], "--cluster-on says what --clusters groups: set --clusters too"),
        ("4", ["--cluster-on", "labels"], "invalid choice: 'labels'"),
    ],
)
def test_cli_refuses_clusters_with_labels_two_levels_an_impossible_count_or_cluster_on_alone(
    tmp_path, monkeypatch, local_mnist, capsys, clusters, extra, message
):
    monkeypatch.setenv("COURSE_MNIST_DIR", str(local_mnist))
    common = ["train-prior", "--data", str(tmp_path / "data"), "--vqvae", str(CHECKPOINTS / "vqvae.pt")]
    with pytest.raises(SystemExit) as stopped:
        cli([*common, "--out", str(tmp_path / "out"), *(["--clusters", clusters] if clusters else []), *extra])
    assert message in str(stopped.value) + capsys.readouterr().err
