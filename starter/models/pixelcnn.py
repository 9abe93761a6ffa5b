"""Autoregressive models with masked convolutions (notebook 03), reused by the code prior of notebook 04.

Raster order: pixel (i, j) may only depend on pixels above it, or to its left on the same row.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.base import Autoregressive
from starter.models.caching import ConvCache, conv_inputs, input_patch, patch, pointwise
from starter.models.registry import register


def causal_mask(kernel_size: int, mask_type: str) -> torch.Tensor:
    """(k, k) mask of a raster-order convolution: rows above the centre, and the centre row up to the centre
    column, which is excluded for type "A" (first layer) and included for type "B" (later layers)."""
    if mask_type not in {"A", "B"}:
        raise ValueError(f"mask_type must be 'A' or 'B', got {mask_type!r}")
    mask = torch.zeros(kernel_size, kernel_size)
    centre = kernel_size // 2
    mask[:centre] = 1
    mask[centre, : centre + (mask_type == "B")] = 1
    return mask


class MaskedConv2d(nn.Conv2d):
    """A 'same'-padded convolution whose kernel is multiplied by a fixed mask before every use.

    Rows and columns of the mask that are all zero are cut from the kernel (with the padding shifted to match):
    the output is the same, with fewer multiply-adds (a 3x3 type-B kernel keeps 2x3 taps, a 7x7 type-A one 4x7).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        mask_type: str = "B",
        mask: torch.Tensor | None = None,
        dilation: int = 1,
    ):
        mask = causal_mask(kernel_size, mask_type) if mask is None else mask
        rows, cols = mask.shape
        super().__init__(
            in_channels,
            out_channels,
            (rows, cols),
            dilation=dilation,
            padding=(dilation * (rows // 2), dilation * (cols // 2)),
        )
        self.register_buffer("mask", mask.clone())
        kept_rows, kept_cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        top, bottom, left, right = int(kept_rows[0]), int(kept_rows[-1]), int(kept_cols[0]), int(kept_cols[-1])
        self.window = (top, bottom + 1, left, right + 1)
        self.pad = tuple(
            dilation * p for p in (cols // 2 - left, right - cols // 2, rows // 2 - top, bottom - rows // 2)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom, left, right = self.window
        kernel = (self.weight * self.mask)[:, :, top:bottom, left:right]
        return F.conv2d(F.pad(x, self.pad), kernel, self.bias, dilation=self.dilation)


class ResidualBlock(nn.Module):
    """PixelRNN paper, figure 5: ReLU, 1x1 (2h -> h), ReLU, masked 3x3 type B (h -> h), ReLU, 1x1 (h -> 2h), + input.
    `num_classes` > 0: the block also holds a learned per-class bias, which its model adds after it."""

    def __init__(self, channels: int, num_classes: int = 0):
        super().__init__()
        half = channels // 2
        self.reduce = nn.Conv2d(channels, half, 1)
        self.masked = MaskedConv2d(half, half, 3, "B")
        self.expand = nn.Conv2d(half, channels, 1)
        self.classes = nn.Embedding(num_classes, channels) if num_classes else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.expand(F.relu(self.masked(F.relu(self.reduce(F.relu(x))))))


@register("pixelcnn", "pixels", channels=64, blocks=5)
class PixelCNN(Autoregressive):
    """7x7 mask-A conv, residual blocks of mask-B convs, two 1x1 layers, a `levels`-way softmax per position.
    `num_classes` set: a learned per-class bias is added after every block (class-conditional model)."""

    def __init__(
        self,
        levels: int = 256,
        channels: int = 64,
        blocks: int = 5,
        embed: int = 0,
        num_classes: int = 0,
        image_size: tuple[int, int] = (28, 28),
    ):
        super().__init__(levels, embed, num_classes, image_size)
        self.first = MaskedConv2d(embed or 1, channels, 7, "A")
        self.blocks = nn.ModuleList(ResidualBlock(channels, num_classes) for _ in range(blocks))
        self.head = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, levels, 1)
        )

    def condition_terms(
        self, condition: torch.Tensor | None
    ) -> tuple[torch.Tensor | float, list[torch.Tensor | float]]:
        """What the condition adds after the first layer and after each block: here a per-class bias (N, C, 1, 1)
        per block (zeros without a condition)."""
        return 0.0, [
            block.classes(condition)[:, :, None, None] if block.classes is not None and condition is not None else 0.0
            for block in self.blocks
        ]

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Integer grid -> (N, levels, H, W) logits; position (i, j) sees only positions before it."""
        after_first, after_blocks = self.condition_terms(condition)
        h = self.first(self.inputs(x)) + after_first
        for block, term in zip(self.blocks, after_blocks):
            h = block(h) + term
        return self.head(h)

    def cached_steps(self, grid: torch.Tensor, condition: torch.Tensor | None) -> ResidualSteps:
        """Cached convolutions (`ResidualSteps`)."""
        return ResidualSteps(self, grid, condition)


class ResidualSteps:
    """Position-by-position logits of a `PixelCNN` (residual blocks), a `CodePrior` or a `BottomPrior`."""

    def __init__(self, model: PixelCNN, grid: torch.Tensor, condition: torch.Tensor | None):
        self.model = model
        caches = conv_inputs(model, grid, condition)
        self.first = ConvCache(model.first, caches[model.first])
        self.masked = [ConvCache(block.masked, caches[block.masked]) for block in model.blocks]
        self.after_first, self.after_blocks = model.condition_terms(condition)

    def logits(self, i: int, j: int) -> torch.Tensor:
        """(N, levels) logits at (i, j); every position before it must have been recorded."""
        h = self.first.at(i, j) + patch(self.after_first, i, j)
        for block, masked, term in zip(self.model.blocks, self.masked, self.after_blocks):
            masked.write(i, j, pointwise(block.reduce, F.relu(h)).relu())
            h = h + pointwise(block.expand, F.relu(masked.at(i, j))) + patch(term, i, j)
        return pointwise(self.model.head, h)[:, :, 0, 0]

    def record(self, i: int, j: int, values: torch.Tensor) -> None:
        """The values drawn at (i, j), (N,) integers, become inputs of the first layer."""
        self.first.write(i, j, input_patch(self.model, values))


def receptive_field(model: nn.Module, height: int, width: int, position: tuple[int, int]) -> torch.Tensor:
    """(H, W) bool map of the input pixels that the logits at `position` depend on, found by autograd."""
    x = (torch.rand(1, 1, height, width) * (model.levels - 1)).requires_grad_()
    logits = model(x)
    (gradient,) = torch.autograd.grad(logits[0, :, position[0], position[1]].sum(), x)
    return gradient[0, 0].abs() > 0
