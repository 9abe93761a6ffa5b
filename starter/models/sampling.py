"""Sampling from the autoregressive models, position by position in raster order; cached by default.

Cached sampling is the idea of Fast PixelCNN++ (Ramachandran et al. 2017).
Every activation of a causal network at position p depends only on the inputs before p. So while sampling, each
layer's output at p is computed once, from the cached outputs of the layer below at the positions its kernel reads,
and never again: the cost of a position is that of one column of the network (∝ the kernel sizes), not of the image.
Each masked convolution keeps its padded input map in a `ConvCache`; 1x1 convolutions and activations run as they
are on (N, C, 1, 1) patches. A forward pass over the starting grid fills every cache, so image completion (rows kept
from `start`) needs nothing special.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.pixelcnn import Autoregressive, GatedPixelCNN, MaskedConv2d, PixelCNN


class ConvCache:
    """The padded input map of one masked convolution: written one position (or row) at a time, read one output
    position (or row) at a time."""

    def __init__(self, conv: MaskedConv2d, inputs: torch.Tensor):
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
            self.padded[:, :, self.top + i, self.left: self.left + width] = values[:, :, 0, :width]

    def at(self, i: int, j: int) -> torch.Tensor:
        """The convolution's output at (i, j), (N, out, 1, 1)."""
        rows, columns = self.dilation
        window = self.padded[:, :, i: i + self.span[0]: rows, j: j + self.span[1]: columns]
        return torch.addmm(self.bias, window.flatten(1), self.matrix)[:, :, None, None]

    def row(self, i: int) -> torch.Tensor:
        """The convolution's output along row i, (N, out, 1, W)."""
        return F.conv2d(self.padded[:, :, i: i + self.span[0]], self.kernel, self.bias, dilation=self.dilation)


def conv_inputs(model: nn.Module, grid: torch.Tensor, condition: torch.Tensor | None) -> dict[nn.Module, torch.Tensor]:
    """One forward pass over `grid`; returns the input that each masked convolution received."""
    seen: dict[nn.Module, torch.Tensor] = {}
    hooks = [conv.register_forward_pre_hook(lambda conv, args: seen.__setitem__(conv, args[0].clone()))
             for conv in model.modules() if isinstance(conv, MaskedConv2d)]
    try:
        model(grid) if condition is None else model(grid, condition)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def patch(values: torch.Tensor | float, i: int, j: int) -> torch.Tensor | float:
    """(N, C, H, W) -> the (N, C, 1, 1) patch at (i, j); per-sample terms (N, C, 1, 1) and zeros pass through."""
    return values[:, :, i: i + 1, j: j + 1] if torch.is_tensor(values) and values.shape[2] > 1 else values


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


def input_patch(model: PixelCNN, values: torch.Tensor) -> torch.Tensor:
    """(N,) drawn integers -> the (N, C, 1, 1) network inputs at their position (intensities or embeddings)."""
    return model.inputs(values.view(-1, 1, 1, 1) if model.embedding is None else values.view(-1, 1, 1))


class NaiveSteps:
    """Logits at (i, j) from a whole forward pass, over the rows up to i (later rows cannot matter) unless the
    condition is a grid that the model needs whole (a bottom prior's top codes)."""

    def __init__(self, model: nn.Module, grid: torch.Tensor, condition: torch.Tensor | None):
        self.model, self.grid, self.condition = model, grid, condition
        self.crop = condition is None or condition.dim() == 1

    def logits(self, i: int, j: int) -> torch.Tensor:
        rows = self.grid[..., : i + 1, :] if self.crop else self.grid
        logits = self.model(rows) if self.condition is None else self.model(rows, self.condition)
        return logits[:, :, i, j]

    def record(self, i: int, j: int, values: torch.Tensor) -> None:
        """Nothing to do: the grid itself holds the drawn values."""


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


class GatedSteps:
    """Position-by-position logits of a `GatedPixelCNN` or `GatedCodePrior`. The vertical stack sees only the rows
    above, so a whole row of it is computed when the row starts; the horizontal stack goes position by position."""

    def __init__(self, model: GatedPixelCNN, grid: torch.Tensor, condition: torch.Tensor | None):
        self.model = model
        caches = conv_inputs(model, grid, condition)
        # each block's per-class biases of its vertical and horizontal stacks, computed once (zeros unconditioned)
        self.biases = [block.condition(condition)[:, :, None, None].chunk(2, dim=1)
                       if block.condition is not None and condition is not None else (0.0, 0.0) for block in model.blocks]
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
            features = horizontal.at(i, j) + pointwise(block.vertical_to_horizontal, v_features[:, :, :, j: j + 1])
            value, gate = (features + bias_h).chunk(2, dim=1)
            h = h + pointwise(block.out, torch.tanh(value) * torch.sigmoid(gate))
        return pointwise(self.model.head, h)[:, :, 0, 0]

    def record(self, i: int, j: int, values: torch.Tensor) -> None:
        """The values drawn at (i, j), (N,) integers, become inputs of both first layers."""
        inputs = input_patch(self.model, values)
        for conv in (self.model.first_vertical, self.model.first_horizontal):
            self.caches[conv].write(i, j, inputs)


def sampling_steps(model: nn.Module, grid: torch.Tensor, condition: torch.Tensor | None, cached: bool):
    """The cached steps for the course's PixelCNNs and priors; whole forward passes for any other model."""
    if cached and isinstance(model, GatedPixelCNN):
        return GatedSteps(model, grid, condition)
    if cached and isinstance(model, PixelCNN):
        return ResidualSteps(model, grid, condition)
    return NaiveSteps(model, grid, condition)


@torch.no_grad()
def sample(model: nn.Module, n: int, temperature: float = 1.0, image_size: tuple[int, int] | None = None,
           condition: torch.Tensor | None = None, start: torch.Tensor | None = None, first_row: int = 0,
           cached: bool = True, top_k: int | None = None, top_k_from_row: int = 0) -> torch.Tensor:
    """Draw n integer grids ((n, 1, H, W) pixels or (n, H, W) codes) position by position, in raster order.

    `image_size`: (H, W), the model's own by default. `condition`: class labels (n,), or the top codes of a bottom
    prior, on the model's device. With `start` and `first_row`, rows before `first_row` are kept from `start`
    (image completion). `cached=False`: a whole forward pass per position (the same draws, 5-20x slower).
    `top_k`: draw each position from its k most likely values only, from row `top_k_from_row` on (rows before it,
    which settle what the image shows, are drawn from the whole distribution).
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
    height, width = shape[-2], shape[-1]
    for i in range(first_row, height):
        for j in range(width):
            logits = steps.logits(i, j) / temperature
            if top_k is not None and i >= top_k_from_row:
                logits = logits.masked_fill(logits < logits.topk(top_k, dim=1).values[:, -1:], float("-inf"))
            probs = F.softmax(logits, dim=1)
            drawn = torch.multinomial(probs, 1).squeeze(1)
            grid[..., i, j] = drawn.view(grid[..., i, j].shape)
            steps.record(i, j, drawn)
    return grid
