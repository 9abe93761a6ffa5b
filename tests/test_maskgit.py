"""MaskGIT (notebook 06): training hides a share of each grid, parallel decoding fills a grid in `steps` steps,
never changing a code once it is kept, and decoding in raster order draws grids as often as `raster_nll` says."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from starter.models.maskgit import (
    MaskGITPrior,
    decode_in_parallel,
    decode_in_raster_order,
    masked_share,
    raster_nll,
)
from starter.models.transformer import TransformerPrior


def small(num_classes: int = 0) -> MaskGITPrior:
    torch.manual_seed(0)
    return MaskGITPrior(num_codes=16, grid=5, width=16, layers=2, heads=2, num_classes=num_classes).eval()


class Recorder(torch.nn.Module):
    """Wraps a MaskGIT model and keeps the grid it is given at each step."""

    def __init__(self, model: MaskGITPrior):
        super().__init__()
        self.model, self.inputs = model, []
        self.grid, self.num_codes, self.mask_token = model.grid, model.num_codes, model.mask_token

    def forward(self, codes, condition=None):
        self.inputs.append(codes.clone())
        return self.model(codes, condition)


def test_the_cosine_schedule_hides_all_at_the_start_and_none_at_the_end():
    shares = masked_share(torch.linspace(0, 1, 5))
    torch.testing.assert_close(shares[[0, -1]], torch.tensor([1.0, 0.0]), atol=1e-6, rtol=0)
    assert (shares.diff() < 0).all()


def test_training_hides_at_least_one_code_of_each_grid_and_scores_only_those():
    model = small()
    codes = torch.randint(16, (64, 5, 5))
    masked, where = model.hide(codes)
    assert where.flatten(1).sum(1).min() >= 1 and where.sum() < where.numel()
    assert torch.equal(masked[where], torch.full_like(masked[where], model.mask_token))
    assert torch.equal(masked[~where], codes[~where])
    loss = model.loss((codes, torch.zeros(64, dtype=torch.long)))
    assert loss.ndim == 0 and 0 < loss.item() < 2 * math.log(16)


@pytest.mark.parametrize("steps", [1, 3, 8])
def test_decoding_takes_steps_keeps_what_it_fixed_and_leaves_no_mask(steps):
    recorder = Recorder(small())
    torch.manual_seed(1)
    grids = decode_in_parallel(recorder, 6, steps)
    assert grids.shape == (6, 5, 5) and grids.min() >= 0 and grids.max() < 16
    assert len(recorder.inputs) == steps
    assert (recorder.inputs[0] == recorder.model.mask_token).all()
    for step, (before, after) in enumerate(zip(recorder.inputs, recorder.inputs[1:] + [grids])):
        kept = before != recorder.model.mask_token
        assert torch.equal(after[kept], before[kept]), "a code kept at an earlier step changed"
        hidden = (after == recorder.model.mask_token).flatten(1).sum(1)
        assert (hidden == int(25 * masked_share(torch.tensor((step + 1) / steps)))).all()


def test_one_step_draws_every_code_independently_from_the_all_mask_logits():
    model = small()
    torch.manual_seed(2)
    grids = decode_in_parallel(model, 4, steps=1)
    torch.manual_seed(2)
    with torch.no_grad():
        logits = model(torch.full((4, 5, 5), model.mask_token)).flatten(2).transpose(1, 2)
    expected = torch.multinomial(logits.softmax(-1).reshape(-1, 16), 1).view(4, 5, 5)
    assert torch.equal(grids, expected)


def test_a_conditional_model_decodes_for_the_classes_asked():
    model = small(num_classes=3)
    torch.manual_seed(3)
    first = decode_in_parallel(model, 3, 4, condition=torch.tensor([0, 1, 2]))
    torch.manual_seed(3)
    second = decode_in_parallel(model, 3, 4, condition=torch.tensor([2, 2, 2]))
    assert first.shape == second.shape == (3, 5, 5) and not torch.equal(first, second)
    with pytest.raises(ValueError):
        decode_in_parallel(model, 3, temperature=0)


def tiny_random_model() -> tuple[MaskGITPrior, torch.Tensor, torch.Tensor]:
    """A MaskGIT model over 2x2 grids of 3 codes with large random weights, every one of its 3^4 grids, and the
    log-probability `raster_nll` gives each."""
    torch.manual_seed(0)
    model = MaskGITPrior(num_codes=3, grid=2, width=16, layers=2, heads=2)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 1.0)
    grids = torch.cartesian_prod(*[torch.arange(3)] * 4).view(-1, 2, 2)
    log_p = torch.tensor([-4 * raster_nll(model, grid[None]) for grid in grids], dtype=torch.float64)
    return model, grids, log_p


def test_raster_order_likelihoods_of_every_grid_sum_to_one():
    """Filled in one code at a time, the later ones hidden, the model's grid probabilities are a distribution: over
    all 3^4 grids of 2x2 codes from 3 they sum to 1. (Leaving the later codes visible would not.)"""
    model, grids, log_p = tiny_random_model()
    torch.testing.assert_close(log_p.logsumexp(0), torch.tensor(0.0, dtype=torch.float64), atol=1e-5, rtol=0)
    with torch.no_grad():  # every code visible, each predicted from the others: not a distribution over grids
        seen = -F.cross_entropy(model(grids).flatten(2), grids.flatten(1), reduction="none").sum(1)
    assert abs(float(seen.double().logsumexp(0))) > 0.01
    assert raster_nll(model, grids) == pytest.approx(-float(log_p.mean()) / 4, rel=1e-5)


def test_raster_order_decoding_draws_grids_as_often_as_their_raster_likelihood_says():
    """20000 grids drawn code by code in raster order are spread over the 81 grids as `raster_nll` says (total
    variation under 0.02: 0.011 here, 0.033 if drawn at temperature 0.8); one parallel step, which draws every code
    independently, is not."""
    model, _, log_p = tiny_random_model()

    def total_variation(drawn: torch.Tensor) -> float:
        index = (drawn.flatten(1) * torch.tensor([27, 9, 3, 1])).sum(1)
        frequencies = torch.bincount(index, minlength=81).double() / len(drawn)
        return 0.5 * float((frequencies - log_p.exp()).abs().sum())

    torch.manual_seed(4)
    assert total_variation(decode_in_raster_order(model, 20000)) < 0.02
    assert total_variation(decode_in_parallel(model, 20000, steps=1)) > 0.1
    conditional = small(num_classes=3)
    torch.manual_seed(5)
    first = decode_in_raster_order(conditional, 3, condition=torch.tensor([0, 1, 2]))
    torch.manual_seed(5)
    second = decode_in_raster_order(conditional, 3, condition=torch.tensor([2, 2, 2]))
    assert first.shape == second.shape == (3, 5, 5) and not torch.equal(first, second)


def test_maskgit_starts_from_an_autoregressive_prior_s_weights():
    torch.manual_seed(0)
    prior = TransformerPrior(num_codes=16, grid=5, width=16, layers=2, heads=2)
    model = small()
    model.start_from(prior)
    for name, value in prior.state_dict().items():
        if name.split(".")[0] in {"blocks", "position", "norm", "head"}:
            assert torch.equal(model.state_dict()[name], value), name
    assert torch.equal(model.tokens.weight[:16], prior.embedding.weight)
    assert torch.equal(model.tokens.weight[16], prior.start)
    with pytest.raises(ValueError, match="unconditional"):
        small(num_classes=3).start_from(prior)
    with pytest.raises(RuntimeError, match="size mismatch"):
        model.start_from(TransformerPrior(num_codes=16, grid=5, width=32, layers=2, heads=2))


def test_maskgit_grows_deeper_from_a_trained_maskgit_and_predicts_what_it_did():
    trained = small()
    torch.manual_seed(1)
    deeper = MaskGITPrior(num_codes=16, grid=5, width=16, layers=4, heads=2).eval()
    deeper.grow_from(trained)
    for name, value in trained.state_dict().items():
        assert torch.equal(deeper.state_dict()[name], value), name
    codes = torch.randint(0, 17, (8, 5, 5))  # some of them [MASK] (16)
    assert torch.equal(deeper(codes), trained(codes))  # each new block starts as the identity
    deeper.train()
    deeper.loss((torch.randint(0, 16, (8, 5, 5)), None)).backward()
    for block in deeper.blocks[2:]:  # ... and learns: its output projections get gradients
        assert block.attention.out.weight.grad.abs().sum() > 0 and block.mlp[2].weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="fewer than 2 layers, not 2"):
        small().grow_from(trained)
    with pytest.raises(ValueError, match="class-conditional exactly when"):
        MaskGITPrior(num_codes=16, grid=5, width=16, layers=4, heads=2, num_classes=3).grow_from(trained)
    with pytest.raises(RuntimeError, match="size mismatch"):
        MaskGITPrior(num_codes=16, grid=5, width=32, layers=4, heads=2).grow_from(trained)
    with pytest.raises(ValueError, match="with 4 heads, not 2"):
        MaskGITPrior(num_codes=16, grid=5, width=16, layers=4, heads=4).grow_from(trained)
