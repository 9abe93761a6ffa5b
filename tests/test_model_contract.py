"""The model contract (starter.models.base): what the trainers and the sampler rely on, declared by every kind."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from starter.checkpoints import save_checkpoint
from starter.cli import COMMANDS, parser_for
from starter.models.base import Autoregressive, CodeGrid, GridModel, PriorMismatch, SamplingSteps
from starter.models.pixelcnn import MaskedConv2d
from starter.models.registry import kinds
from starter.models.sampling import NaiveSteps, sample, sampling_steps
from starter.models.two_level import BottomPrior, TwoLevelVQVAE
from starter.models.vq import VQVAE
from starter.trainers import Session, code_datasets

AUTOREGRESSIVE = {"pixels", "codes", "bottom codes"}  # the families drawn position by position
CODE_GRIDS = {"codes", "masked codes", "bottom codes"}
SMALL = {  # every kind of grid model, small: its config
    "pixelcnn": dict(levels=4, channels=8, blocks=2),
    "gated_pixelcnn": dict(levels=4, channels=8, blocks=3),
    "prior": dict(num_codes=8, grid=4, channels=8, blocks=2, embed=4),
    "gated_prior": dict(num_codes=8, grid=4, channels=8, blocks=3, embed=4),
    "transformer_prior": dict(num_codes=8, grid=4, width=16, layers=2, heads=2),
    "maskgit_prior": dict(num_codes=8, grid=4, width=16, layers=2, heads=2),
    "bottom_prior": dict(num_codes=8, top_codes=5, channels=8, blocks=2, embed=4),
}


def grid_models() -> dict[str, GridModel]:
    """A small model of every kind of grid model, and a class-conditional one of each kind that can be."""
    torch.manual_seed(0)
    models = {}
    for name, config in SMALL.items():
        models[name] = kinds()[name].model(**config).eval()
        if name != "bottom_prior":
            models[f"{name} conditional"] = kinds()[name].model(**config, num_classes=3).eval()
    return models


def condition_for(model: GridModel, n: int) -> torch.Tensor | None:
    """Class labels for a class-conditional model, top codes for a bottom prior, else None."""
    if model.num_classes:
        return torch.arange(n) % model.num_classes
    return torch.randint(model.top_codes, (n, 4, 4)) if model.conditional else None


def test_every_kind_declares_what_it_is():
    for name, kind in kinds().items():
        assert issubclass(kind.model, Autoregressive) == (kind.family in AUTOREGRESSIVE), name
        assert issubclass(kind.model, CodeGrid) == (kind.family in CODE_GRIDS), name
        assert issubclass(kind.model, GridModel) == (name in SMALL), name


@pytest.mark.parametrize("name", list(grid_models()))
def test_the_loss_is_a_scalar_and_conditioning_is_num_classes(name):
    model = grid_models()[name]
    assert model.conditional == (model.num_classes > 0 or isinstance(model, BottomPrior))
    grids = torch.randint(4, (3, 1, 5, 4)) if kinds()[name.split()[0]].family == "pixels" else None
    if grids is None:
        grids = torch.randint(model.num_codes, (3, model.grid, model.grid))
    loss = model.loss((grids, condition_for(model, 3) if model.conditional else torch.zeros(3, dtype=torch.long)))
    assert loss.dim() == 0 and torch.isfinite(loss)


@pytest.mark.parametrize("name", [name for name in grid_models() if name.split()[0] != "maskgit_prior"])
def test_cached_steps_satisfy_the_protocol_and_draw_what_naive_steps_draw(name):
    model = grid_models()[name]
    size = (5, 4) if kinds()[name.split()[0]].family == "pixels" else model.image_size
    condition = condition_for(model, 3)
    grid = torch.zeros(model.grid_shape(3, size), dtype=torch.long)
    with torch.no_grad():
        steps = model.cached_steps(grid, condition)
    assert isinstance(steps, SamplingSteps) and not isinstance(steps, NaiveSteps)
    assert isinstance(NaiveSteps(model, grid, condition), SamplingSteps)
    draws = []
    for cached in (True, False):
        torch.manual_seed(5)
        draws.append(sample(model, 3, image_size=size, condition=condition, cached=cached))
    assert torch.equal(*draws)


def test_any_module_of_pixel_grids_is_sampled_by_whole_forward_passes():
    class Own(nn.Module):  # a notebook's own PixelCNN: no course base
        def __init__(self):
            super().__init__()
            self.first = MaskedConv2d(1, 4, 3, "A")

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.first(x.float())

    model, grid = Own(), torch.zeros(2, 1, 3, 3, dtype=torch.long)
    assert isinstance(sampling_steps(model, grid, None, cached=True), NaiveSteps)
    assert sample(model, 2, image_size=(3, 3)).shape == (2, 1, 3, 3)


@pytest.mark.parametrize("name", [name for name in SMALL if kinds()[name].family in CODE_GRIDS])
def test_every_code_prior_rejects_a_vqvae_whose_codes_it_does_not_model(name):
    model = grid_models()[name]
    if isinstance(model, BottomPrior):
        model.check_fits(TwoLevelVQVAE(top_codes=model.top_codes, bottom_codes=model.num_codes))
        wrong = [TwoLevelVQVAE(top_codes=model.top_codes + 1, bottom_codes=model.num_codes)]
        wrong.append(TwoLevelVQVAE(top_codes=model.top_codes, bottom_codes=model.num_codes + 1))
        for vqvae in wrong:
            with pytest.raises(PriorMismatch):
                model.check_fits(vqvae)
        return
    model.check_fits(VQVAE(num_codes=model.num_codes), grid=model.grid)
    with pytest.raises(PriorMismatch, match=f"grids of {model.num_codes} codes, but the VQ-VAE"):
        model.check_fits(VQVAE(num_codes=model.num_codes + 1), grid=model.grid)
    with pytest.raises(PriorMismatch):
        model.check_fits(VQVAE(num_codes=model.num_codes), grid=model.grid + 1)


@pytest.mark.parametrize("flags, num_classes", [([], 0), (["--num-classes", "3"], 3), (["--conditional"], 10)])
@pytest.mark.parametrize("kind", ["prior", "gated_prior", "transformer_prior", "maskgit_prior"])
def test_train_prior_builds_its_model_with_num_classes_from_the_command_line(
    tmp_path, monkeypatch, flags, num_classes, kind
):
    config = {"num_codes": 16, "code_dim": 4, "hidden": 8}
    path = save_checkpoint(tmp_path / "vqvae.pt", VQVAE(**config), "vqvae", config)
    images = torch.utils.data.TensorDataset(torch.rand(4, 1, 28, 28), torch.arange(4))
    monkeypatch.setattr(Session, "data", lambda self, train, form="float", limit=None: images)
    args = parser_for(COMMANDS).parse_args(
        ["train-prior", "--vqvae", str(path), "--out", str(tmp_path / "out"), "--model", kind, *flags]
    )
    _, _, model, config = code_datasets(args, Session(args))
    assert model.num_classes == config["num_classes"] == num_classes
    assert model.conditional == (num_classes > 0)


def test_num_classes_and_conditional_are_one_option():
    with pytest.raises(SystemExit):
        parser_for(COMMANDS).parse_args(["train-prior", "--vqvae", "v.pt", "--conditional", "--num-classes", "3"])
