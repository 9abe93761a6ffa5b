"""Probes for notebook 03 (PixelCNN): which input pixels each output depends on, and a stack of the student's
masked layers."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from starter.probes.general import as_module


def dependency_map(
    network: Any,
    channels: int,
    size: int = 8,
    draws: int = 1,
    scale: float = 1.0,
    positive: bool = False,
    residual: bool = False,
) -> torch.Tensor | None:
    """(size², size, size) bool: which input pixels the output at each raster position depends on, by autograd
    on positive inputs (the union over `draws` of them); None when the output does not depend on the input through
    differentiable operations. `positive`: first make every parameter positive, so that with positive inputs no
    ReLU is ever off and autograd sees every dependency the architecture allows. `scale`: the network gets
    inputs * scale; `residual`: the dependency of network(h) - h."""
    if positive:
        with torch.no_grad():
            for parameter in as_module(network).parameters():
                parameter.abs_()
    positions = size * size
    seen = torch.zeros(positions, size, size, dtype=torch.bool)
    rows, cols = torch.arange(positions) // size, torch.arange(positions) % size
    for _ in range(draws):  # one copy of the input per output position, all in one batch
        x = (torch.rand(1, channels, size, size) + 0.1).expand(positions, -1, -1, -1).clone().requires_grad_()
        out = network(x * scale)
        if not torch.is_tensor(out) or not out.requires_grad or out.dim() != 4 or len(out) != positions:
            return None
        out = out - x if residual else out
        (grad,) = torch.autograd.grad(out[torch.arange(positions), :, rows, cols].sum(), x, allow_unused=True)
        if grad is None:
            return None
        seen |= grad.abs().sum(1) > 0
    return seen


def masked_stack(MaskedConv2d: type) -> nn.Module:
    """A 7x7 mask-A layer, then two 3x3 mask-B layers, with ReLUs between: a small stack of the student's layer."""
    return nn.Sequential(
        MaskedConv2d(1, 8, 7, "A"), nn.ReLU(), MaskedConv2d(8, 8, 3, "B"), nn.ReLU(), MaskedConv2d(8, 8, 3, "B")
    )
