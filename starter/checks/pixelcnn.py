"""Check cells of notebook 03 (PixelCNN): causality of masked layers and models, sampling order and temperature."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from starter.checks import (CheckFailed, CheckRun, Report, expect, expect_raises, expect_same_parameter_count,
                            expect_shape, layer_calls, observe, parameter_count)
from starter.checks.sampling import expect_draws_follow_softmax
from starter.models import pixelcnn as reference

SIZE = 8  # causality is checked exhaustively on SIZE x SIZE inputs


def positive(module: nn.Module) -> nn.Module:
    """Make every parameter positive: with positive inputs no ReLU is ever off, so autograd sees every dependency
    the architecture allows (random weights can hide some behind units that happen to be off)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.abs_()
    return module


def dependency_map(network: Callable[[torch.Tensor], torch.Tensor], channels: int, draws: int = 1) -> torch.Tensor | None:
    """(SIZE*SIZE, SIZE, SIZE) bool: which input pixels the output at each raster position depends on, by autograd
    on positive inputs (the union over `draws` of them); None when the output does not depend on the input through
    differentiable operations."""
    seen = torch.zeros(SIZE * SIZE, SIZE, SIZE, dtype=torch.bool)
    for _ in range(draws):
        x = (torch.rand(1, channels, SIZE, SIZE) + 0.1).requires_grad_()
        out = network(x)
        if not out.requires_grad:
            return None
        for position in range(SIZE * SIZE):
            i, j = divmod(position, SIZE)
            (grad,) = torch.autograd.grad(out[0, :, i, j].sum(), x, retain_graph=True, allow_unused=True)
            if grad is None:
                return None
            seen[position] |= grad[0].abs().sum(0) > 0
    return seen


def first_leak(seen: torch.Tensor | None, strict: bool) -> tuple | None:
    """The first (output position, input position) pair of a dependency map that breaks raster-order causality.

    `strict`: an output may not see its own position (mask A); otherwise it may (mask B).
    """
    expect(seen is not None, "the output does not depend on the input through differentiable operations "
                             "(scale the input with x.float() / 255 rather than converting it to integers)")
    order = torch.arange(SIZE * SIZE).view(SIZE, SIZE)
    for position in range(SIZE * SIZE):
        leaks = seen[position] & (order >= position if strict else order > position)
        if leaks.any():
            return divmod(position, SIZE), divmod(int(leaks.flatten().nonzero()[0]), SIZE)
    return None


def _no_leak(seen: torch.Tensor | None, strict: bool, what: str) -> None:
    leak = first_leak(seen, strict)
    if leak:
        (i, j), (a, b) = leak
        relation = "itself" if (a, b) == (i, j) else f"input pixel {(a, b)}, which comes later in raster order"
        raise CheckFailed(f"{what}: output pixel {(i, j)} depends on {relation}")


def _layer_facts(MaskedConv2d: type, in_channels: int, out_channels: int, kernel_size: int, mask_type: str) -> dict:
    """Everything the check needs to know about one of the student's masked layers, as data."""
    layer = MaskedConv2d(in_channels, out_channels, kernel_size, mask_type)
    facts = {"type": type(layer).__name__, "module": isinstance(layer, nn.Module)}
    if not facts["module"]:
        return facts
    facts["output"] = layer(torch.randn(2, in_channels, SIZE, SIZE))
    if not torch.is_tensor(facts["output"]) or tuple(facts["output"].shape) != (2, out_channels, SIZE, SIZE):
        return facts
    facts["buffers"], facts["parameters"] = [n for n, _ in layer.named_buffers()], [n for n, _ in layer.named_parameters()]
    facts["mask"] = layer.mask if torch.is_tensor(getattr(layer, "mask", None)) else None
    facts["seen"] = dependency_map(layer, in_channels)
    with torch.no_grad():  # what training does: the optimiser changes the weights
        layer.weight.normal_()
    facts["seen_after_training"] = dependency_map(layer, in_channels)
    return facts


def _layer(facts: dict, channels: int, out_channels: int) -> dict:
    expect(facts["module"], f"MaskedConv2d(...) should build an nn.Module, found {facts['type']}")
    expect_shape(facts["output"], (2, out_channels, SIZE, SIZE), "layer(x) ('same' padding)")
    return facts


def _sees_centre(seen: torch.Tensor) -> None:
    centre = seen[4 * SIZE + 4]
    expect(bool(centre[4, 4]), "a type-B layer should see the centre pixel (the current position's features)")
    expect(bool(centre[4, 3] and centre[3, 5]), "the layer does not see the pixels to the left and above")


def _mask_is_a_buffer(facts: dict) -> None:
    expect("mask" not in facts["parameters"], "the mask is an nn.Parameter: the optimiser would change it; store it "
                                              "with self.register_buffer('mask', mask)")
    expect("mask" in facts["buffers"], "no buffer named 'mask': store it with self.register_buffer('mask', mask) so "
                                       "that it moves with .to(device) and is saved, but is not trained")


def _mask_in_every_forward(facts: dict, strict: bool) -> None:
    if first_leak(facts["seen_after_training"], strict):
        raise CheckFailed("after the optimiser changes the weights, the layer sees later pixels: multiply the weights "
                          "by the mask in forward(), every time (masking them once in __init__ is not enough)")


def _mask_values(mask: torch.Tensor, kernel_size: int, mask_type: str) -> None:
    mask = mask.float()
    expect(tuple(mask.shape[-2:]) == (kernel_size, kernel_size),
           f"the mask should be {kernel_size}x{kernel_size}, found shape {tuple(mask.shape)}")
    wrong = (mask.reshape(-1, kernel_size, kernel_size) != reference.causal_mask(kernel_size, mask_type)).any(0)
    if wrong.any():
        rows = sorted({int(i) for i in wrong.nonzero()[:, 0]})
        raise CheckFailed(f"mask {mask_type} ({kernel_size}x{kernel_size}) differs from the pattern in rows {rows}: "
                          f"ones in every row above the centre and left of the centre in its row; the centre is "
                          f"{'0 in mask A' if mask_type == 'A' else '1 in mask B'}; zeros below")


def _stack_map(MaskedConv2d: type) -> torch.Tensor | None:
    stack = nn.Sequential(MaskedConv2d(1, 8, 7, "A"), nn.ReLU(), MaskedConv2d(8, 8, 3, "B"), nn.ReLU(),
                          MaskedConv2d(8, 8, 3, "B"))
    return dependency_map(positive(stack), 1)


def check_masked_conv(MaskedConv2d: type, hidden: bool = False) -> Report:
    """MaskedConv2d(in, out, kernel_size, mask_type) keeps the size and never looks at later pixels, whatever its weights."""
    size_a, size_b = (7, 5) if hidden else (5, 3)
    with CheckRun("MaskedConv2d", seed=int(hidden), hidden=hidden, student=MaskedConv2d) as run:
        a = run.step(f"builds MaskedConv2d(1, 4, {size_a}, 'A') and keeps the image size", lambda: _layer(
            observe(lambda: _layer_facts(MaskedConv2d, 1, 4, size_a, "A")), 1, 4))
        b = run.step(f"builds MaskedConv2d(1, 4, {size_b}, 'B') and keeps the image size", lambda: _layer(
            observe(lambda: _layer_facts(MaskedConv2d, 1, 4, size_b, "B")), 1, 4))
        run.step("the mask is a buffer named 'mask' (moves with the layer, never trained)", lambda: _mask_is_a_buffer(a))
        run.step("type A: no output sees its own pixel or a later one", lambda: _no_leak(a["seen"], True, "mask A"))
        run.step("type B: no output sees a later pixel, but each sees its own", lambda: (
            _no_leak(b["seen"], False, "mask B"), _sees_centre(b["seen"])))
        run.step("the masks have exactly the A and B patterns", lambda: (
            _mask_values(a["mask"], size_a, "A"), _mask_values(b["mask"], size_b, "B")))
        run.step("still causal after the weights change (masked in every forward)", lambda: (
            _mask_in_every_forward(a, True), _mask_in_every_forward(b, False)))
        run.step("a random A-B-B stack is causal over the whole image", lambda: _no_leak(
            observe(lambda: _stack_map(MaskedConv2d)), True, "the stack"))
    return run.report


def _block_facts(ResidualBlock: type, channels: int, x: torch.Tensor) -> dict:
    """The student's block: its size, its output with all weights zero, and what its own path (without the residual
    connection) depends on."""
    block = ResidualBlock(channels)
    facts = {"parameters": parameter_count(block)}
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.zero_()
        facts["zero_output"] = block(x)
        for parameter in block.parameters():
            parameter.uniform_(0.1, 0.5)  # positive weights, as `positive` explains
    facts["seen"] = dependency_map(lambda h: block(h) - h, channels)
    return facts


def _residual_block(facts: dict, channels: int, x: torch.Tensor) -> None:
    expect_same_parameter_count(facts["parameters"], reference.ResidualBlock(channels), f"ResidualBlock({channels})")
    expect(torch.allclose(facts["zero_output"], x), "with all weights zero the block should return its input: return "
                                                    "x + self.net(x) (the residual connection)")
    _no_leak(facts["seen"], False, "the block without its input")
    expect(bool(facts["seen"][4 * SIZE + 4][4, 4]), "the masked 3x3 convolution inside a block should be type B: its "
                                                    "input at (i, j) is a feature that already excludes pixel (i, j)")


def _model_facts(PixelCNN: type, channels: int, blocks: int, x: torch.Tensor) -> dict:
    """Everything the check needs to know about the student's PixelCNN(channels, blocks), as data."""
    model = PixelCNN(channels=channels, blocks=blocks)
    logits, calls = layer_calls(model, x)
    facts = {"logits": logits, "first_input": calls[0][1] if calls else None,
             "parameters": [parameter_count(PixelCNN(channels=c, blocks=b)) for c, b in ((channels, blocks), (8, 1))]}
    positive(model)
    facts["seen"] = dependency_map(lambda h: model(h * 200), 1)  # the model on float pixels, for autograd
    return facts


def _block_step(ResidualBlock: type, channels: int) -> None:
    x = torch.randn(2, channels, SIZE, SIZE)
    _residual_block(observe(lambda: _block_facts(ResidualBlock, channels, x)), channels, x)


def _model_step(PixelCNN: type, channels: int, blocks: int) -> dict:
    images = torch.randint(256, (2, 1, SIZE, SIZE))
    return observe(lambda: _model_facts(PixelCNN, channels, blocks, images))


def _scaled_input(first: torch.Tensor | None) -> None:
    expect(first is not None and first.is_floating_point(), "the first layer does not receive float pixels: scale the "
                                                            "input to [0, 1] with x.float() / 255")
    expect(first.min() >= 0 and first.max() <= 1 and first.max() > 0.5,
           f"the first layer receives values in [{first.float().min():.3g}, {first.float().max():.3g}]: scale the input "
           "to [0, 1] with x.float() / 255")


def _logits(out: torch.Tensor) -> None:
    expect(not (out.min() >= 0 and torch.allclose(out.sum(1), torch.ones(1))),
           "the output is probabilities: return the logits (F.cross_entropy and the sampler apply the softmax)")
    expect(out.min() < 0, "every output is >= 0: no activation after the last 1x1 convolution, logits can be negative")


def _sees_like_reference(seen: torch.Tensor, channels: int, blocks: int) -> None:
    ours = positive(reference.PixelCNN(channels=channels, blocks=blocks))
    expected = dependency_map(lambda h: ours(h * 200), 1)
    for position in ((4, 4), (7, 2)):
        index = position[0] * SIZE + position[1]
        found, wanted = seen[index], expected[index]
        expect(torch.equal(found, wanted), f"the logits at {position} see {int(found.sum())} pixels, the architecture "
               f"described sees {int(wanted.sum())}: first layer 7x7 mask A, then a 3x3 mask B in each residual block")


def check_pixelcnn(PixelCNN: type, ResidualBlock: type, channels: int = 16, blocks: int = 2, hidden: bool = False) -> Report:
    """ResidualBlock(c) and PixelCNN(channels, blocks): (N, 1, H, W) intensities 0..255 -> (N, 256, H, W) causal logits."""
    with CheckRun("PixelCNN", seed=int(hidden), hidden=hidden, student=(PixelCNN, ResidualBlock)) as run:
        run.step(f"ResidualBlock({channels}): the layers of the text, x + net(x), a type-B masked convolution",
                 lambda: _block_step(ResidualBlock, channels))
        facts = run.step(f"builds PixelCNN(channels={channels}, blocks={blocks}) and runs it on integer images",
                         lambda: _model_step(PixelCNN, channels, blocks))
        run.step(f"(2, 1, {SIZE}, {SIZE}) integer images -> (2, 256, {SIZE}, {SIZE}) logits",
                 lambda: expect_shape(facts["logits"], (2, 256, SIZE, SIZE), "model(x)"))
        run.step("same number of parameters as the architecture described", lambda: [
            expect_same_parameter_count(found, reference.PixelCNN(channels=c, blocks=b), f"PixelCNN(channels={c}, blocks={b})")
            for found, (c, b) in zip(facts["parameters"], ((channels, blocks), (8, 1)))])
        run.step("reads the pixels scaled to [0, 1]", lambda: _scaled_input(facts["first_input"]))
        run.step("returns logits", lambda: _logits(facts["logits"]))
        run.step("no logit sees its own pixel or a later one", lambda: _no_leak(facts["seen"], True, "the model"))
        run.step("sees exactly the pixels the architecture sees",
                 lambda: _sees_like_reference(facts["seen"], channels, blocks))
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


def _sampled_in_order(sample: Callable, height: int, width: int) -> tuple:
    model = _CountingModel()
    return sample(model, 2, 1.0, (height, width)), model.heights


def _sample_order(facts: tuple, height: int, width: int) -> None:
    out, heights = facts
    expect_shape(out, (2, 1, height, width), f"sample(model, 2, 1.0, image_size=({height}, {width}))")
    expected = torch.arange(height * width).view(1, 1, height, width).expand(2, 1, height, width)
    expect(torch.equal(out.long(), expected), "pixels were not sampled one at a time in raster order, each "
           "conditioned on the ones already drawn (or were not written back into the image)")
    expect(len(heights) == height * width, f"expected {height * width} network calls (one per pixel), found {len(heights)}")
    expect(min(heights) < height, "every call fed the full image: crop it to the rows needed so far (x[..., :i + 1, :])")


def _temperature_errors(sample: Callable) -> None:
    for bad in (0.0, -1.0):
        expect_raises(lambda: observe(lambda: sample(_CountingModel(), 1, bad, (2, 2))), ValueError,
                      f"temperature={bad} should raise ValueError")


def check_sample(sample: Callable, image_size: tuple[int, int] = (6, 6), hidden: bool = False) -> Report:
    """sample(model, n, temperature, image_size) draws pixels in raster order from softmax(logits / T), cropping rows."""
    with CheckRun("sample", seed=int(hidden), hidden=hidden, student=sample) as run:
        run.step("draws follow softmax(logits / T) at T = 0.5, 1 and 2 (4000 draws each, not the argmax)",
                 lambda: expect_draws_follow_softmax(lambda model, t: observe(lambda: sample(model, 500, t, (2, 4))), 256, 4000))
        run.step(f"draws a {image_size[0]}x{image_size[1]} image in raster order, one network call per pixel, on cropped rows",
                 lambda: _sample_order(observe(lambda: _sampled_in_order(sample, *image_size)), *image_size))
        run.step("temperature <= 0 raises ValueError", lambda: _temperature_errors(sample))
    return run.report
