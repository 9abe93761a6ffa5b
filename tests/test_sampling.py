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


def guided_prior() -> TransformerPrior:
    """A small class-conditional transformer prior trained with class dropout: it has a "no class" embedding."""
    torch.manual_seed(0)
    model = TransformerPrior(num_codes=16, grid=4, width=16, layers=2, heads=2, num_classes=4, class_dropout=0.2)
    with torch.no_grad():  # weights large enough for the class to change the draws
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    return model.eval()


def test_class_dropout_hides_the_class_while_training_only():
    model = guided_prior()
    assert model.null_class == 4 and model.classes.num_embeddings == 5
    grid, labels = torch.randint(16, (64, 4, 4)), torch.randint(4, (64,))
    no_class = torch.full_like(labels, 4)
    with torch.no_grad():
        assert torch.equal(model(grid, labels), model(grid, labels))  # evaluation: the class as given
        model.train().class_dropout, model.drop.p = 1.0, 0.0
        for block in model.blocks:
            block.attention.dropout, block.mlp[-1].p = 0.0, 0.0
        torch.testing.assert_close(model(grid, labels), model.eval()(grid, no_class))  # every class hidden
        model.train().class_dropout = 0.5
        hidden = (model(grid, labels) - model.eval()(grid, labels)).flatten(1).abs().amax(1) > 0
    assert 16 < int(hidden.sum()) < 48  # about half the grids saw "no class"
    with pytest.raises(ValueError, match="set num_classes too"):
        TransformerPrior(num_codes=16, grid=4, width=16, layers=1, heads=2, class_dropout=0.1)


def test_guidance_draws_from_the_unconditional_logits_plus_scale_times_the_difference():
    model, labels = guided_prior(), torch.tensor([0, 1, 2, 3, 1, 0])
    torch.manual_seed(5)
    guided = sample(model, 6, 0.8, condition=labels, guidance=3.0)
    torch.manual_seed(5)
    naive = sample(model, 6, 0.8, condition=labels, guidance=3.0, cached=False)
    assert torch.equal(guided, naive)
    torch.manual_seed(5)  # the definition, one position at a time over whole forward passes
    grid = torch.zeros(6, 4, 4, dtype=torch.long)
    with torch.no_grad():
        for i in range(4):
            for j in range(4):
                given = model(grid, labels)[:, :, i, j]
                free = model(grid, torch.full_like(labels, model.null_class))[:, :, i, j]
                probs = torch.softmax((free + 3.0 * (given - free)) / 0.8, dim=1)
                grid[:, i, j] = torch.multinomial(probs, 1).squeeze(1)
    assert torch.equal(guided, grid)
    torch.manual_seed(5)
    plain = sample(model, 6, 0.8, condition=labels)
    assert not torch.equal(plain, guided)  # a scale of 3 changes the draws; 1 is plain conditional sampling
    torch.manual_seed(5)
    assert torch.equal(sample(model, 6, 0.8, condition=labels, guidance=1.0), plain)


def test_guidance_needs_labels_and_a_model_trained_with_class_dropout():
    model, shape, condition = models()["transformer prior conditional"]
    with pytest.raises(ValueError, match="not trained with class dropout"):
        sample(model, 3, condition=condition, guidance=2.0)
    with pytest.raises(ValueError, match="not trained with class dropout"):
        sample(models()["code prior"][0], 3, image_size=(5, 5), guidance=2.0)
    with pytest.raises(ValueError, match="pass its `condition`"):
        sample(guided_prior(), 3, condition=None, guidance=2.0)
