"""Check cells of notebook 03 (PixelCNN): causality of masked layers and models, sampling order and temperature."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from starter.checks import CheckFailed, CheckRun, Report, expect, expect_raises, expect_shape

SIZE = 8  # causality is checked exhaustively on SIZE x SIZE inputs


def first_leak(network: Callable[[torch.Tensor], torch.Tensor], channels: int, strict: bool) -> tuple | None:
    """The first (output position, input position) pair that breaks raster-order causality, or None.

    `strict`: an output may not see its own position (mask A); otherwise it may (mask B).
    """
    x = torch.randn(1, channels, SIZE, SIZE, requires_grad=True)
    out = network(x)
    order = torch.arange(SIZE * SIZE).view(SIZE, SIZE)
    for position in range(SIZE * SIZE):
        i, j = divmod(position, SIZE)
        (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True, allow_unused=True)
        expect(grad is not None, "the output does not depend on the input through differentiable operations "
                                 "(scale the input with x.float() / 255 rather than converting it to integers)")
        seen = grad[0].abs().sum(0) > 0
        leaks = seen & (order >= position if strict else order > position)
        if leaks.any():
            return (i, j), divmod(int(leaks.flatten().nonzero()[0]), SIZE)
    return None


def _no_leak(network, channels: int, strict: bool, what: str) -> None:
    leak = first_leak(network, channels, strict)
    if leak:
        (i, j), (a, b) = leak
        relation = "itself" if (a, b) == (i, j) else f"input pixel {(a, b)}, which comes later in raster order"
        raise CheckFailed(f"{what}: output pixel {(i, j)} depends on {relation}")


def _layer(MaskedConv2d: type, *args) -> nn.Module:
    layer = MaskedConv2d(*args)
    expect(isinstance(layer, nn.Module), f"MaskedConv2d(...) should build an nn.Module, found {type(layer).__name__}")
    return layer


def _same_size(layer: nn.Module, channels: int, out_channels: int) -> None:
    expect_shape(layer(torch.randn(2, channels, SIZE, SIZE)), (2, out_channels, SIZE, SIZE), "layer(x) ('same' padding)")


def _sees_centre(layer: nn.Module) -> None:
    x = torch.randn(1, 1, SIZE, SIZE, requires_grad=True)
    (grad,) = torch.autograd.grad(layer(x)[0, :, 4, 4].sum(), x)
    expect(grad[0, 0, 4, 4] != 0, "a type-B layer should see the centre pixel (the current position's features)")
    expect(grad[0, 0, 4, 3] != 0 and grad[0, 0, 3, 5] != 0, "the layer does not see the pixels to the left and above")


def check_masked_conv(MaskedConv2d: type) -> Report:
    """MaskedConv2d(in, out, kernel_size, mask_type) keeps the size and never looks at later pixels."""
    with CheckRun("MaskedConv2d") as run:
        a = run.step("builds MaskedConv2d(1, 4, 5, 'A') and keeps the image size", lambda: _checked(
            _layer(MaskedConv2d, 1, 4, 5, "A"), lambda layer: _same_size(layer, 1, 4)))
        b = run.step("builds MaskedConv2d(1, 4, 3, 'B') and keeps the image size", lambda: _checked(
            _layer(MaskedConv2d, 1, 4, 3, "B"), lambda layer: _same_size(layer, 1, 4)))
        run.step("type A: no output sees its own pixel or a later one", lambda: _no_leak(a, 1, True, "mask A"))
        run.step("type B: no output sees a later pixel, but each sees its own", lambda: (
            _no_leak(b, 1, False, "mask B"), _sees_centre(b)))
        run.step("a random A-B-B stack is causal over the whole image", lambda: _no_leak(
            nn.Sequential(MaskedConv2d(1, 8, 7, "A"), nn.ReLU(), MaskedConv2d(8, 8, 3, "B"), nn.ReLU(),
                          MaskedConv2d(8, 8, 3, "B")), 1, True, "the stack"))
    return run.report


def _checked(value, test):
    test(value)
    return value


def _scaled_network(model: nn.Module) -> Callable:
    """View a PixelCNN as a function of float pixels so that autograd can trace dependencies."""
    return lambda x: model(x * 255)


def check_pixelcnn(PixelCNN: type) -> Report:
    """PixelCNN(channels, blocks) maps (N, 1, H, W) intensities 0..255 to (N, 256, H, W) causal logits."""
    with CheckRun("PixelCNN") as run:
        model = run.step("builds PixelCNN(channels=16, blocks=2)", lambda: PixelCNN(channels=16, blocks=2))
        run.step("(2, 1, 28, 28) integer images -> (2, 256, 28, 28) logits",
                 lambda: expect_shape(model(torch.randint(256, (2, 1, 28, 28))), (2, 256, 28, 28), "model(x)"))
        run.step("no logit sees its own pixel or a later one", lambda: _no_leak(_scaled_network(model), 1, True, "the model"))
    return run.report


class _CountingModel(nn.Module):
    """Puts all probability on (previous pixel in raster order + 1) % 256 and records the input heights it gets."""

    levels = 256

    def __init__(self):
        super().__init__()
        self.heights: list[int] = []
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.heights.append(x.shape[-2])
        n, _, h, w = x.shape
        previous = torch.cat([torch.full((n, 1), -1, dtype=torch.long), x.long().reshape(n, -1)[:, :-1]], 1)
        target = (previous + 1) % 256
        return torch.nn.functional.one_hot(target, 256).float().mul(50).view(n, h, w, 256).permute(0, 3, 1, 2)


def _sample_order(sample: Callable) -> None:
    model = _CountingModel()
    out = sample(model, 2, 1.0, (6, 6))
    expect_shape(out, (2, 1, 6, 6), "sample(model, 2, 1.0, image_size=(6, 6))")
    expected = torch.arange(36).view(1, 1, 6, 6).expand(2, 1, 6, 6)
    expect(torch.equal(out.long().cpu(), expected), "pixels were not sampled one at a time in raster order, each "
           "conditioned on the ones already drawn (or were not written back into the image)")
    expect(len(model.heights) == 36, f"expected 36 network calls (one per pixel), found {len(model.heights)}")
    expect(min(model.heights) < 6, "every call fed the full image: crop it to the rows needed so far (x[..., :i + 1, :])")


def _temperature_errors(sample: Callable) -> None:
    for bad in (0.0, -1.0):
        expect_raises(lambda: sample(_CountingModel(), 1, bad, (2, 2)), ValueError, f"temperature={bad} should raise ValueError")


def check_sample(sample: Callable) -> Report:
    """sample(model, n, temperature, image_size) draws pixels in raster order, cropping rows, and checks temperature."""
    with CheckRun("sample") as run:
        run.step("draws in raster order, one network call per pixel, on cropped rows", lambda: _sample_order(sample))
        run.step("temperature <= 0 raises ValueError", lambda: _temperature_errors(sample))
    return run.report
