"""The gated PixelCNN (van den Oord et al., 2016, notebook 03): vertical and horizontal stacks without the blind
spot, gated units, and its cached sampling steps."""

from __future__ import annotations

import torch
from torch import nn

from starter.models.base import Autoregressive
from starter.models.caching import ConvCache, conv_inputs, input_patch, pointwise
from starter.models.pixelcnn import MaskedConv2d
from starter.models.registry import register


def vertical_mask(kernel_size: int, include_centre_row: bool) -> torch.Tensor:
    """Vertical stack: every column of the rows above (and of the centre row in later layers)."""
    mask = torch.zeros(kernel_size, kernel_size)
    mask[: kernel_size // 2 + include_centre_row] = 1
    return mask


def horizontal_mask(kernel_size: int, include_centre: bool) -> torch.Tensor:
    """Horizontal stack: a 1 x k row, the pixels to the left (and the centre in later layers)."""
    mask = torch.zeros(1, kernel_size)
    mask[0, : kernel_size // 2 + include_centre] = 1
    return mask


class GatedBlock(nn.Module):
    """Gated PixelCNN layer (van den Oord et al., 2016): vertical and horizontal stacks, tanh * sigmoid gates,
    vertical features fed into the horizontal stack, residual connection on the horizontal stack; `dropout` on the
    horizontal stack's gated features while training. `num_classes` > 0: per-class biases of both stacks."""

    def __init__(self, channels: int, dilation: int = 1, num_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        self.vertical = MaskedConv2d(channels, 2 * channels, 3, mask=vertical_mask(3, True), dilation=dilation)
        self.horizontal = MaskedConv2d(channels, 2 * channels, 3, mask=horizontal_mask(3, True), dilation=dilation)
        self.vertical_to_horizontal = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        self.classes = nn.Embedding(num_classes, 4 * channels) if num_classes else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, v: torch.Tensor, h: torch.Tensor, condition: torch.Tensor | None = None):
        v_features = self.vertical(v)
        h_features = self.horizontal(h) + self.vertical_to_horizontal(v_features)
        if self.classes is not None and condition is not None:
            bias_v, bias_h = self.classes(condition)[:, :, None, None].chunk(2, dim=1)
            v_features, h_features = v_features + bias_v, h_features + bias_h
        v_value, v_gate = v_features.chunk(2, dim=1)
        h_value, h_gate = h_features.chunk(2, dim=1)
        v_out = torch.tanh(v_value) * torch.sigmoid(v_gate)
        h_out = h + self.out(self.dropout(torch.tanh(h_value) * torch.sigmoid(h_gate)))
        return v_out, h_out


@register("gated_pixelcnn", "pixels", channels=64, blocks=7)
class GatedPixelCNN(Autoregressive):
    """Gated PixelCNN without the blind spot; same inputs and outputs as `PixelCNN`."""

    def __init__(
        self,
        levels: int = 256,
        channels: int = 64,
        blocks: int = 7,
        embed: int = 0,
        num_classes: int = 0,
        dilations: tuple[int, ...] = (1, 2, 1, 4, 1, 2, 1),
        image_size: tuple[int, int] = (28, 28),
        dropout: float = 0.0,
    ):
        super().__init__(levels, embed, num_classes, image_size)
        width = embed or 1
        self.first_vertical = MaskedConv2d(width, channels, 3, mask=vertical_mask(3, False))
        self.first_horizontal = MaskedConv2d(width, channels, 3, mask=horizontal_mask(3, False))
        self.blocks = nn.ModuleList(
            GatedBlock(channels, dilations[i % len(dilations)], num_classes, dropout) for i in range(blocks)
        )
        self.head = nn.Sequential(nn.ELU(), nn.Conv2d(channels, levels, 1))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """Integer grid -> (N, levels, H, W) logits; position (i, j) sees only positions before it."""
        inputs = self.inputs(x)
        v, h = self.first_vertical(inputs), self.first_horizontal(inputs)
        for block in self.blocks:
            v, h = block(v, h, condition)
        return self.head(h)

    def cached_steps(self, grid: torch.Tensor, condition: torch.Tensor | None) -> GatedSteps:
        """A row of the vertical stack at a time, the horizontal stack position by position (`GatedSteps`)."""
        return GatedSteps(self, grid, condition)


class GatedSteps:
    """Position-by-position logits of a `GatedPixelCNN` or `GatedCodePrior`. The vertical stack sees only the rows
    above, so a whole row of it is computed when the row starts; the horizontal stack goes position by position."""

    def __init__(self, model: GatedPixelCNN, grid: torch.Tensor, condition: torch.Tensor | None):
        self.model = model
        caches = conv_inputs(model, grid, condition)
        # each block's per-class biases of its vertical and horizontal stacks, computed once (zeros unconditioned)
        self.biases = [
            block.classes(condition)[:, :, None, None].chunk(2, dim=1)
            if block.classes is not None and condition is not None
            else (0.0, 0.0)
            for block in model.blocks
        ]
        convs = [model.first_vertical, model.first_horizontal]
        convs += [conv for block in model.blocks for conv in (block.vertical, block.horizontal)]
        self.caches = {conv: ConvCache(conv, caches[conv]) for conv in convs}
        self.v_features: list[torch.Tensor] = []

    def start_row(self, i: int) -> None:
        """Compute row i of every layer's vertical stack (all of it depends on rows above i only)."""
        v, self.v_features = self.caches[self.model.first_vertical].row(i), []
        for block, (bias_v, _) in zip(self.model.blocks, self.biases):
            self.caches[block.vertical].write_row(i, v)
            features = self.caches[block.vertical].row(i)
            self.v_features.append(features)
            value, gate = (features + bias_v).chunk(2, dim=1)
            v = torch.tanh(value) * torch.sigmoid(gate)

    def logits(self, i: int, j: int) -> torch.Tensor:
        """(N, levels) logits at (i, j); every position before it must have been recorded."""
        if j == 0:
            self.start_row(i)
        h = self.caches[self.model.first_horizontal].at(i, j)
        for block, v_features, (_, bias_h) in zip(self.model.blocks, self.v_features, self.biases):
            horizontal = self.caches[block.horizontal]
            horizontal.write(i, j, h)
            features = horizontal.at(i, j) + pointwise(block.vertical_to_horizontal, v_features[:, :, :, j : j + 1])
            value, gate = (features + bias_h).chunk(2, dim=1)
            h = h + pointwise(block.out, torch.tanh(value) * torch.sigmoid(gate))
        return pointwise(self.model.head, h)[:, :, 0, 0]

    def record(self, i: int, j: int, values: torch.Tensor) -> None:
        """The values drawn at (i, j), (N,) integers, become inputs of both first layers."""
        inputs = input_patch(self.model, values)
        for conv in (self.model.first_vertical, self.model.first_horizontal):
            self.caches[conv].write(i, j, inputs)
