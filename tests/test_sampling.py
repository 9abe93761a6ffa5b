"""Cached sampling computes what the whole network computes: the same logits at every position, the same draws."""

from __future__ import annotations

import pytest
import torch

from starter.models.gated_pixelcnn import GatedPixelCNN
from starter.models.pixelcnn import PixelCNN
from starter.models.prior import CodePrior, GatedCodePrior
from starter.models.sampling import NaiveSteps, sample, sampling_steps
from starter.models.transformer import TransformerPrior
from starter.models.two_level import BottomPrior


def models() -> dict[str, tuple[torch.nn.Module, tuple[int, ...], torch.Tensor | None]]:
    """Every kind of autoregressive model in the course, small and randomly initialised: (model, shape, condition)."""
    torch.manual_seed(0)
    labels = torch.tensor([1, 3, 0])
    return {
        "pixelcnn": (PixelCNN(levels=4, channels=8, blocks=2), (3, 1, 6, 5), None),
        "pixelcnn conditional": (PixelCNN(levels=4, channels=8, blocks=2, num_classes=4), (3, 1, 6, 5), labels),
        "gated pixelcnn": (GatedPixelCNN(levels=4, channels=8, blocks=4, dilations=(1, 2)), (3, 1, 6, 5), None),
        "code prior": (CodePrior(num_codes=16, grid=5, channels=8, blocks=2, embed=4), (3, 5, 5), None),
        "gated code prior conditional": (
            GatedCodePrior(num_codes=16, grid=5, channels=8, blocks=3, embed=4, num_classes=4, dropout=0.5),
            (3, 5, 5),
            labels,
        ),
        "bottom prior": (
            BottomPrior(num_codes=16, top_codes=8, channels=8, blocks=2, embed=4),
            (3, 7, 7),
            torch.randint(8, (3, 4, 4)),
        ),
        "transformer prior": (TransformerPrior(num_codes=16, grid=5, width=16, layers=2, heads=2), (3, 5, 5), None),
        "transformer prior conditional": (
            TransformerPrior(num_codes=16, grid=5, width=16, layers=2, heads=4, num_classes=4, dropout=0.5),
            (3, 5, 5),
            labels,
        ),
    }


@pytest.mark.parametrize("kind", list(models()))
def test_cached_logits_equal_the_whole_network_at_every_position(kind):
    model, shape, condition = models()[kind]
    model.eval()
    grid = torch.randint(model.levels, shape)
    with torch.no_grad():
        whole = model(grid) if condition is None else model(grid, condition)
        drawn = torch.zeros_like(grid)  # filled in as `sample` fills it: the value, then `record`
        steps = sampling_steps(model, drawn, condition, cached=True)
        assert not isinstance(steps, NaiveSteps)
        for i in range(shape[-2]):
            for j in range(shape[-1]):
                torch.testing.assert_close(steps.logits(i, j), whole[:, :, i, j], atol=1e-5, rtol=1e-5)
                drawn[..., i, j] = grid[..., i, j]
                steps.record(i, j, grid[..., i, j].reshape(-1))


@pytest.mark.parametrize("kind", list(models()))
def test_cached_sampling_draws_what_naive_sampling_draws(kind):
    model, shape, condition = models()[kind]
    draws = []
    for cached in (False, True):
        torch.manual_seed(7)
        draws.append(sample(model, shape[0], 0.9, shape[-2:], condition=condition, cached=cached))
    assert torch.equal(*draws)


@pytest.mark.parametrize("kind", ["pixelcnn", "gated pixelcnn"])
def test_cached_completion_keeps_the_given_rows_and_draws_what_naive_draws(kind):
    model, shape, _ = models()[kind]
    start = torch.randint(model.levels, shape)
    draws = []
    for cached in (False, True):
        torch.manual_seed(3)
        draws.append(sample(model, shape[0], image_size=shape[-2:], start=start, first_row=3, cached=cached))
    assert torch.equal(*draws)
    assert torch.equal(draws[0][..., :3, :], start[..., :3, :])


def test_dropout_acts_while_training_only():
    model, shape, condition = models()["gated code prior conditional"]
    grid = torch.randint(model.levels, shape)
    with torch.no_grad():
        assert not torch.equal(model.train()(grid, condition), model(grid, condition))
        assert torch.equal(model.eval()(grid, condition), model(grid, condition))


def test_top_k_draws_only_the_k_most_likely_values():
    model, shape, _ = models()["code prior"]
    torch.manual_seed(0)
    grids = sample(model, 4, image_size=shape[-2:], top_k=2)
    steps = sampling_steps(model, torch.zeros_like(grids), None, cached=True)
    with torch.no_grad():
        for i in range(shape[-2]):
            for j in range(shape[-1]):
                best_two = steps.logits(i, j).topk(2, dim=1).indices
                assert (best_two == grids[:, i, j, None]).any(1).all()
                steps.record(i, j, grids[:, i, j])
    assert torch.equal(
        sample(model, 4, image_size=shape[-2:], top_k=1), sample(model, 4, image_size=shape[-2:], top_k=1)
    )


def test_top_k_from_a_row_leaves_the_rows_before_it_untruncated():
    model, shape, _ = models()["code prior"]
    torch.manual_seed(0)
    free = sample(model, 64, image_size=shape[-2:])
    torch.manual_seed(0)
    grids = sample(model, 64, image_size=shape[-2:], top_k=1, top_k_from_row=2)
    assert torch.equal(grids[:, :2], free[:, :2])  # the same draws before row 2
    with torch.no_grad():
        assert torch.equal(grids[:, 2:], model(grids).argmax(1)[:, 2:])  # the most likely code from row 2 on
    assert not torch.equal(free[:, 2:], model(free).argmax(1)[:, 2:])
