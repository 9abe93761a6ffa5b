"""MaskGIT (notebook 06): training hides a share of each grid, and parallel decoding fills a grid in `steps` steps,
never changing a code once it is kept."""

from __future__ import annotations

import math

import pytest
import torch

from starter.models.maskgit import MaskGITPrior, decode_in_parallel, masked_share


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
