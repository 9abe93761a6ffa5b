"""The pieces that cached sampling is made of (Fast PixelCNN++, Ramachandran et al. 2017), shared by the models'
own cached steps: each masked convolution keeps its padded input map in a `ConvCache`, written one position at a
time and read one output position (or row) at a time; 1x1 convolutions and activations run on (N, C, 1, 1) patches.
A forward pass over the starting grid fills every cache, so image completion needs nothing special."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class ConvCache:
    """The padded input map of one masked convolution: written one position (or row) at a time, read one output
    position (or row) at a time."""

    def __init__(self, conv: nn.Conv2d, inputs: torch.Tensor):
        top, bottom, left, right = conv.window
        self.kernel = (conv.weight * conv.mask)[:, :, top:bottom, left:right]
        self.bias, self.dilation = conv.bias, conv.dilation
        self.padded = F.pad(inputs, conv.pad)
        self.left, self.top = conv.pad[0], conv.pad[2]
        self.span = tuple(d * (k - 1) + 1 for d, k in zip(conv.dilation, self.kernel.shape[2:]))
        self.matrix = self.kernel.flatten(1).T  # (C * kh * kw, out): one position is a matrix product

    def write(self, i: int, j: int, value: torch.Tensor) -> None:
        """Store the input at (i, j): `value` is (N, C, 1, 1). (A negative padding has cut inputs never read.)"""
        row, column = self.top + i, self.left + j
        if row < self.padded.shape[2] and column < self.padded.shape[3]:
            self.padded[:, :, row, column] = value[:, :, 0, 0]

    def write_row(self, i: int, values: torch.Tensor) -> None:
        """Store row i of the input: `values` is (N, C, 1, W)."""
        width = min(values.shape[3], self.padded.shape[3] - self.left)
        if self.top + i < self.padded.shape[2]:
            self.padded[:, :, self.top + i, self.left : self.left + width] = values[:, :, 0, :width]

    def at(self, i: int, j: int) -> torch.Tensor:
        """The convolution's output at (i, j), (N, out, 1, 1)."""
        rows, columns = self.dilation
        window = self.padded[:, :, i : i + self.span[0] : rows, j : j + self.span[1] : columns]
        return torch.addmm(self.bias, window.flatten(1), self.matrix)[:, :, None, None]

    def row(self, i: int) -> torch.Tensor:
        """The convolution's output along row i, (N, out, 1, W)."""
        return F.conv2d(self.padded[:, :, i : i + self.span[0]], self.kernel, self.bias, dilation=self.dilation)


def conv_inputs(model: nn.Module, grid: torch.Tensor, condition: torch.Tensor | None) -> dict[nn.Module, torch.Tensor]:
    """One forward pass over `grid`; returns the input that each masked convolution (a Conv2d with a mask) received."""
    seen: dict[nn.Module, torch.Tensor] = {}
    hooks = [
        conv.register_forward_pre_hook(lambda conv, args: seen.__setitem__(conv, args[0].clone()))
        for conv in model.modules()
        if isinstance(conv, nn.Conv2d) and hasattr(conv, "mask")
    ]
    try:
        model(grid) if condition is None else model(grid, condition)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def patch(values: torch.Tensor | float, i: int, j: int) -> torch.Tensor | float:
    """(N, C, H, W) -> the (N, C, 1, 1) patch at (i, j); per-sample terms (N, C, 1, 1) and zeros pass through."""
    return values[:, :, i : i + 1, j : j + 1] if torch.is_tensor(values) and values.shape[2] > 1 else values


def pointwise(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution (or a Sequential of them and activations) on (N, C, 1, 1) patches, as a matrix product
    (conv2d's set-up costs more than the arithmetic on one position)."""
    if isinstance(layer, nn.Sequential):
        for part in layer:
            x = pointwise(part, x)
        return x
    if isinstance(layer, nn.Conv2d):
        return F.linear(x.flatten(1), layer.weight.flatten(1), layer.bias)[:, :, None, None]
    return layer(x)


def input_patch(model: nn.Module, values: torch.Tensor) -> torch.Tensor:
    """(N,) drawn integers -> the (N, C, 1, 1) network inputs at their position (intensities or embeddings)."""
    return model.inputs(values.view(-1, 1, 1, 1) if model.embedding is None else values.view(-1, 1, 1))
