"""The contract of the course's models of integer grids (pixels or code indices), declared rather than probed for:
what the command line's trainers ask of every model (`GridModel`), what the sampler asks of an autoregressive one
(`Autoregressive`, its `SamplingSteps`), and what every prior over a VQ-VAE's code grids has (`CodeGrid`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from starter.train import StepSchedule


@runtime_checkable
class SamplingSteps(Protocol):
    """Position-by-position logits while grids are drawn in raster order: a model's cached steps, or `NaiveSteps`."""

    def logits(self, i: int, j: int) -> torch.Tensor:
        """(N, levels) logits at (i, j); every position before it has been recorded."""
        ...

    def record(self, i: int, j: int, values: torch.Tensor) -> None:
        """The values drawn at (i, j), (N,) integers."""
        ...


class GridModel(nn.Module):
    """A model of integer grids that the command line trains on (grids, condition) batches: its `loss`, its own
    optimizer if it has one. `num_classes` > 0: class-conditional, the condition is the class labels."""

    def __init__(self, num_classes: int = 0):
        super().__init__()
        self.num_classes = num_classes

    @property
    def conditional(self) -> bool:
        """Whether the model reads a condition: class labels (a subclass conditioned on something else says so)."""
        return self.num_classes > 0

    def loss(self, batch: tuple) -> torch.Tensor:
        """The training loss on a (grids, condition) batch."""
        raise NotImplementedError

    def make_optimizer(self, lr: float, steps: int) -> StepSchedule | None:
        """The model's own optimizer for `steps` steps; None: Adam, its learning rate decayed after every epoch."""
        return None


class Autoregressive(GridModel):
    """What every autoregressive model of the course shares: integer grids in, (N, levels, H, W) logits out, in
    raster order, with an optional `condition` (class labels, or a bottom prior's top codes).

    `embed` set: the input is a grid of integer symbols (code indices), embedded before the first layer;
    otherwise the input is a (N, 1, H, W) grid of intensities 0..levels-1, scaled to [0, 1].
    `image_size`: the grid that `starter.models.sampling.sample` draws unless told otherwise.
    """

    null_class: int | None = None  # the condition meaning "no class" (trained with class dropout), for guidance

    def __init__(self, levels: int, embed: int, num_classes: int, image_size: tuple[int, int]):
        super().__init__(num_classes)
        self.levels, self.embed_dim, self.image_size = levels, embed, image_size
        self.embedding = nn.Embedding(levels, embed) if embed else None

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """Integer grids -> float network inputs: embeddings (N, E, H, W), or intensities in [0, 1] (N, 1, H, W)."""
        if self.embedding is not None:
            return self.embedding(x.long()).permute(0, 3, 1, 2)
        return x.float() / (self.levels - 1)

    def grid_shape(self, n: int, image_size: tuple[int, int]) -> tuple[int, ...]:
        """The shape of n grids: (n, H, W) of codes, or (n, 1, H, W) of pixels."""
        return (n, *image_size) if self.embedding is not None else (n, 1, *image_size)

    def loss(self, batch: tuple) -> torch.Tensor:
        """The negative log-likelihood (`nll_loss`)."""
        return nll_loss(self, batch)

    def cached_steps(self, grid: torch.Tensor, condition: torch.Tensor | None) -> SamplingSteps | None:
        """Steps that draw into `grid` faster than whole forward passes; None: the sampler runs whole forward passes."""
        return None


def nll_loss(model: Autoregressive, batch: tuple) -> torch.Tensor:
    """Mean negative log-likelihood per position in nats, for starter.train.fit on (grids, condition) batches;
    a conditional model also gets the condition (labels, or the top codes of a bottom prior)."""
    x, condition = batch
    logits = model(x, condition if model.conditional else None)
    return F.cross_entropy(logits, x.squeeze(1).long() if x.dim() == 4 else x.long())


class PriorMismatch(ValueError):
    """A prior that does not model the code grids of the VQ-VAE it is used with."""


class CodeGrid:
    """What every prior over (N, grid, grid) code indices has: the codebook size, the grid, and a check that it fits
    a VQ-VAE."""

    num_codes: int
    grid: int

    def check_fits(self, vqvae: nn.Module, grid: int = 7) -> None:
        """Raise PriorMismatch unless this prior models the codebook size and grid of a VQ-VAE (or a quantizer)."""
        k = getattr(vqvae, "quantizer", vqvae).num_codes
        if (self.num_codes, self.grid) != (k, grid):
            raise PriorMismatch(
                f"this prior models {self.grid}x{self.grid} grids of {self.num_codes} codes, but the "
                f"VQ-VAE produces {grid}x{grid} grids of {k} codes: retrain the prior on its codes"
            )
