"""Sampling from the autoregressive models, position by position in raster order; cached by default.

Each course model (`starter.models.base.Autoregressive`) that can be sampled faster than by whole forward passes
says how (its `cached_steps`, next to the forward pass it mirrors: `PixelCNN`, `GatedPixelCNN`, `TransformerPrior`);
any other model of integer grids, such as a notebook's own, is sampled by whole forward passes (`NaiveSteps`). Both
are `SamplingSteps`, and give the same draws from the same seed.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.base import Autoregressive, SamplingSteps


class NaiveSteps:
    """Logits at (i, j) from a whole forward pass, over the rows up to i (later rows cannot matter) unless the
    condition is a grid that the model needs whole (a bottom prior's top codes)."""

    def __init__(self, model: nn.Module, grid: torch.Tensor, condition: torch.Tensor | None):
        self.model, self.grid, self.condition = model, grid, condition
        self.crop = condition is None or condition.dim() == 1

    def logits(self, i: int, j: int) -> torch.Tensor:
        """(N, levels) logits at (i, j), from the grid as drawn so far."""
        rows = self.grid[..., : i + 1, :] if self.crop else self.grid
        logits = self.model(rows) if self.condition is None else self.model(rows, self.condition)
        return logits[:, :, i, j]

    def record(self, i: int, j: int, values: torch.Tensor) -> None:
        """Nothing to do: the grid itself holds the drawn values."""


def sampling_steps(model: nn.Module, grid: torch.Tensor, condition: torch.Tensor | None, cached: bool) -> SamplingSteps:
    """The model's own cached steps if it has them; whole forward passes otherwise (or with cached=False)."""
    steps = model.cached_steps(grid, condition) if cached and isinstance(model, Autoregressive) else None
    return NaiveSteps(model, grid, condition) if steps is None else steps


@torch.no_grad()
def sample(
    model: nn.Module,
    n: int,
    temperature: float = 1.0,
    image_size: tuple[int, int] | None = None,
    condition: torch.Tensor | None = None,
    start: torch.Tensor | None = None,
    first_row: int = 0,
    cached: bool = True,
    top_k: int | None = None,
    top_k_from_row: int = 0,
    guidance: float = 1.0,
) -> torch.Tensor:
    """Draw n integer grids ((n, 1, H, W) pixels or (n, H, W) codes) position by position, in raster order.

    `image_size`: (H, W), the model's own by default. `condition`: class labels (n,), or the top codes of a bottom
    prior, on the model's device. With `start` and `first_row`, rows before `first_row` are kept from `start`
    (image completion). `cached=False`: a whole forward pass per position (the same draws, 5-20x slower).
    `top_k`: draw each position from its k most likely values only, from row `top_k_from_row` on (rows before it,
    which settle what the image shows, are drawn from the whole distribution).
    `guidance`: classifier-free guidance of a model trained with class dropout (its `null_class`): each position's
    logits are u + guidance * (c - u), c given the class and u given "no class"; 1 is plain conditional sampling,
    larger values follow the class more closely and draw less varied grids.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    course_model = isinstance(model, Autoregressive)  # else any model of pixel grids, e.g. yours from notebook 03
    if course_model and model.conditional and condition is None:
        raise ValueError(f"{type(model).__name__} is conditional: pass its `condition`")
    model.eval()
    device = next(model.parameters(), torch.empty(0)).device
    shape = model.grid_shape(n, image_size or model.image_size) if course_model else (n, 1, *(image_size or (28, 28)))
    grid = torch.zeros(shape, dtype=torch.long, device=device) if start is None else start.clone().long().to(device)
    steps = sampling_steps(model, grid, condition, cached)
    free = None if guidance == 1 else sampling_steps(model, grid, unconditional(model, condition), cached)
    height, width = shape[-2], shape[-1]
    for i in range(first_row, height):
        for j in range(width):
            logits = steps.logits(i, j)
            if free is not None:
                unguided = free.logits(i, j)
                logits = unguided + guidance * (logits - unguided)
            logits = logits / temperature
            if top_k is not None and i >= top_k_from_row:
                logits = logits.masked_fill(logits < logits.topk(top_k, dim=1).values[:, -1:], float("-inf"))
            probs = F.softmax(logits, dim=1)
            drawn = torch.multinomial(probs, 1).squeeze(1)
            grid[..., i, j] = drawn.view(grid[..., i, j].shape)
            steps.record(i, j, drawn)
            if free is not None:
                free.record(i, j, drawn)
    return grid


def unconditional(model: nn.Module, condition: torch.Tensor) -> torch.Tensor:
    """The "no class" condition, one per label of `condition`, of a model trained with class dropout."""
    if not isinstance(model, Autoregressive) or model.null_class is None:
        raise ValueError(f"{type(model).__name__} was not trained with class dropout: it has no 'no class' to guide by")
    return torch.full_like(condition, model.null_class)
