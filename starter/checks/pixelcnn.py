"""Check cells of notebook 03 (PixelCNN): causality of masked layers and models, sampling order and temperature."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from starter.checks import (CheckFailed, CheckRun, Report, expect, expect_raises, expect_same_parameter_count,
                            expect_shape, layer_calls)
from starter.checks.sampling import expect_draws_follow_softmax
from starter.models import pixelcnn as reference

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


def _mask_is_a_buffer(layer: nn.Module) -> None:
    buffers, parameters = dict(layer.named_buffers()), dict(layer.named_parameters())
    expect("mask" not in parameters, "the mask is an nn.Parameter: the optimiser would change it; store it with "
                                     "self.register_buffer('mask', mask)")
    expect("mask" in buffers, "no buffer named 'mask': store it with self.register_buffer('mask', mask) so that it "
                              "moves with .to(device) and is saved, but is not trained")


def _mask_in_every_forward(layer: nn.Module, strict: bool) -> None:
    """Training changes the weights: with fresh random weights the layer must still be causal."""
    with torch.no_grad():
        layer.weight.normal_()
    if first_leak(layer, layer.in_channels, strict):
        raise CheckFailed("after the optimiser changes the weights, the layer sees later pixels: multiply the weights "
                          "by the mask in forward(), every time (masking them once in __init__ is not enough)")


def _mask_values(layer: nn.Module, kernel_size: int, mask_type: str) -> None:
    mask = layer.mask.detach().float().cpu()
    expect(tuple(mask.shape[-2:]) == (kernel_size, kernel_size),
           f"the mask should be {kernel_size}x{kernel_size}, found shape {tuple(mask.shape)}")
    wrong = (mask.reshape(-1, kernel_size, kernel_size) != reference.causal_mask(kernel_size, mask_type)).any(0)
    if wrong.any():
        rows = sorted({int(i) for i in wrong.nonzero()[:, 0]})
        raise CheckFailed(f"mask {mask_type} ({kernel_size}x{kernel_size}) differs from the pattern in rows {rows}: "
                          f"ones in every row above the centre and left of the centre in its row; the centre is "
                          f"{'0 in mask A' if mask_type == 'A' else '1 in mask B'}; zeros below")


def check_masked_conv(MaskedConv2d: type, hidden: bool = False) -> Report:
    """MaskedConv2d(in, out, kernel_size, mask_type) keeps the size and never looks at later pixels, whatever its weights."""
    size_a, size_b = (7, 5) if hidden else (5, 3)
    with CheckRun("MaskedConv2d", seed=int(hidden), hidden=hidden) as run:
        a = run.step(f"builds MaskedConv2d(1, 4, {size_a}, 'A') and keeps the image size", lambda: _checked(
            _layer(MaskedConv2d, 1, 4, size_a, "A"), lambda layer: _same_size(layer, 1, 4)))
        b = run.step(f"builds MaskedConv2d(1, 4, {size_b}, 'B') and keeps the image size", lambda: _checked(
            _layer(MaskedConv2d, 1, 4, size_b, "B"), lambda layer: _same_size(layer, 1, 4)))
        run.step("the mask is a buffer named 'mask' (moves with the layer, never trained)", lambda: _mask_is_a_buffer(a))
        run.step("type A: no output sees its own pixel or a later one", lambda: _no_leak(a, 1, True, "mask A"))
        run.step("type B: no output sees a later pixel, but each sees its own", lambda: (
            _no_leak(b, 1, False, "mask B"), _sees_centre(b)))
        run.step("the masks have exactly the A and B patterns", lambda: (
            _mask_values(a, size_a, "A"), _mask_values(b, size_b, "B")))
        run.step("still causal after the weights change (masked in every forward)", lambda: (
            _mask_in_every_forward(a, True), _mask_in_every_forward(b, False)))
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


def _residual_block(ResidualBlock: type, channels: int) -> None:
    block = ResidualBlock(channels)
    expect_same_parameter_count(block, reference.ResidualBlock(channels), f"ResidualBlock({channels})")
    x = torch.randn(2, channels, SIZE, SIZE)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.zero_()
        expect(torch.allclose(block(x), x), "with all weights zero the block should return its input: return "
                                            "x + self.net(x) (the residual connection)")
        for parameter in block.parameters():
            parameter.normal_(0, 0.5)
    net = lambda h: block(h) - h  # noqa: E731 (the block's own path, without the residual connection)
    _no_leak(net, channels, False, "the block without its input")
    h = torch.randn(1, channels, SIZE, SIZE, requires_grad=True)
    (seen,) = torch.autograd.grad(net(h)[0, :, 4, 4].sum(), h)
    expect(seen[0, :, 4, 4].abs().sum() > 0, "the masked 3x3 convolution inside a block should be type B: its input at "
                                             "(i, j) is a feature that already excludes pixel (i, j)")


def _scaled_input(model: nn.Module) -> None:
    x = torch.randint(256, (2, 1, SIZE, SIZE))
    _, calls = layer_calls(model, x)
    first = calls[0][1].detach()
    expect(first.is_floating_point() and first.min() >= 0 and first.max() <= 1 and first.max() > 0.5,
           f"the first layer receives values in [{first.float().min():.3g}, {first.float().max():.3g}]: scale the input "
           "to [0, 1] with x.float() / 255")


def _logits(model: nn.Module) -> None:
    with torch.no_grad():
        out = model(torch.randint(256, (2, 1, SIZE, SIZE)))
    expect(not (out.min() >= 0 and torch.allclose(out.sum(1), torch.ones(1))),
           "the output is probabilities: return the logits (F.cross_entropy and the sampler apply the softmax)")
    expect(out.min() < 0, "every output is >= 0: no activation after the last 1x1 convolution, logits can be negative")


def _field(model: nn.Module, position: tuple[int, int], draws: int = 8) -> torch.Tensor:
    """(SIZE, SIZE) map of the pixels the logits at `position` depend on, over several random images (a single one
    can hide a dependency behind ReLUs that happen to be off)."""
    seen = torch.zeros(SIZE, SIZE, dtype=torch.bool)
    for _ in range(draws):
        x = (torch.rand(1, 1, SIZE, SIZE) * 255).requires_grad_()
        (grad,) = torch.autograd.grad(model(x)[0, :, position[0], position[1]].sum(), x)
        seen |= grad[0, 0].abs() > 0
    return seen


def _receptive_field_like_reference(model: nn.Module, channels: int, blocks: int) -> None:
    ours = reference.PixelCNN(channels=channels, blocks=blocks)
    for position in ((4, 4), (7, 2)):
        found, expected = _field(model, position), _field(ours, position)
        expect(torch.equal(found, expected), f"the logits at {position} see {int(found.sum())} pixels, the architecture "
               f"described sees {int(expected.sum())}: first layer 7x7 mask A, then a 3x3 mask B in each residual block")


def check_pixelcnn(PixelCNN: type, ResidualBlock: type, channels: int = 16, blocks: int = 2, hidden: bool = False) -> Report:
    """ResidualBlock(c) and PixelCNN(channels, blocks): (N, 1, H, W) intensities 0..255 -> (N, 256, H, W) causal logits."""
    with CheckRun("PixelCNN", seed=int(hidden), hidden=hidden) as run:
        run.step(f"ResidualBlock({channels}): the layers of the text, x + net(x), a type-B masked convolution",
                 lambda: _residual_block(ResidualBlock, channels))
        model = run.step(f"builds PixelCNN(channels={channels}, blocks={blocks})",
                         lambda: PixelCNN(channels=channels, blocks=blocks))
        run.step("(2, 1, 28, 28) integer images -> (2, 256, 28, 28) logits",
                 lambda: expect_shape(model(torch.randint(256, (2, 1, 28, 28))), (2, 256, 28, 28), "model(x)"))
        run.step("same number of parameters as the architecture described", lambda: [
            expect_same_parameter_count(PixelCNN(channels=c, blocks=b), reference.PixelCNN(channels=c, blocks=b),
                                        f"PixelCNN(channels={c}, blocks={b})") for c, b in ((channels, blocks), (8, 1))])
        run.step("reads the pixels scaled to [0, 1]", lambda: _scaled_input(model))
        run.step("returns logits", lambda: _logits(model))
        run.step("no logit sees its own pixel or a later one", lambda: _no_leak(_scaled_network(model), 1, True, "the model"))
        run.step("sees exactly the pixels the architecture sees",
                 lambda: _receptive_field_like_reference(model, channels, blocks))
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


def _sample_order(sample: Callable, height: int, width: int) -> None:
    model = _CountingModel()
    out = sample(model, 2, 1.0, (height, width))
    expect_shape(out, (2, 1, height, width), f"sample(model, 2, 1.0, image_size=({height}, {width}))")
    expected = torch.arange(height * width).view(1, 1, height, width).expand(2, 1, height, width)
    expect(torch.equal(out.long().cpu(), expected), "pixels were not sampled one at a time in raster order, each "
           "conditioned on the ones already drawn (or were not written back into the image)")
    expect(len(model.heights) == height * width,
           f"expected {height * width} network calls (one per pixel), found {len(model.heights)}")
    expect(min(model.heights) < height, "every call fed the full image: crop it to the rows needed so far (x[..., :i + 1, :])")


def _temperature_errors(sample: Callable) -> None:
    for bad in (0.0, -1.0):
        expect_raises(lambda: sample(_CountingModel(), 1, bad, (2, 2)), ValueError, f"temperature={bad} should raise ValueError")


def check_sample(sample: Callable, image_size: tuple[int, int] = (6, 6), hidden: bool = False) -> Report:
    """sample(model, n, temperature, image_size) draws pixels in raster order from softmax(logits / T), cropping rows."""
    with CheckRun("sample", seed=int(hidden), hidden=hidden) as run:
        run.step("draws follow softmax(logits / T) at T = 0.5, 1 and 2 (4000 draws each, not the argmax)",
                 lambda: expect_draws_follow_softmax(lambda model, t: sample(model, 500, t, (2, 4)), 256, 4000))
        run.step(f"draws a {image_size[0]}x{image_size[1]} image in raster order, one network call per pixel, on cropped rows",
                 lambda: _sample_order(sample, *image_size))
        run.step("temperature <= 0 raises ValueError", lambda: _temperature_errors(sample))
    return run.report
