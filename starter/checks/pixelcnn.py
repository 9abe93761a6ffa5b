"""Check cells of notebook 03 (PixelCNN): causality of masked layers and models, sampling order and temperature."""

from __future__ import annotations

import copy

import torch
from torch.nn import functional as F

from starter.checks import CheckFailed, CheckRun, check, expect, expect_raises, expect_shape
from starter.checks.architecture import behaves_like, expect_same_as, matchings
from starter.checks.kernel import Handle
from starter.checks.sampling import expect_draws_follow_softmax, order_stand_in, raster_draws
from starter.models import pixelcnn as reference
from starter.probes import general
from starter.probes.pixelcnn import dependency_map, masked_stack
from starter.probes.stand_in import Probe
from starter.report import Report

SIZE = 8  # causality is checked exhaustively on SIZE x SIZE inputs


def first_leak(seen: torch.Tensor | None, strict: bool) -> tuple | None:
    """The first (output position, input position) pair of a dependency map that breaks raster-order causality.

    `strict`: an output may not see its own position (mask A); otherwise it may (mask B).
    """
    expect(
        seen is not None,
        "the output does not depend on the input through differentiable operations "
        "(scale the input with x.float() / 255 rather than converting it to integers)",
    )
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


def _layer_facts(MaskedConv2d: Handle, in_channels: int, out_channels: int, kernel_size: int, mask_type: str) -> dict:
    """Everything the check needs to know about one of the student's masked layers, as data: whether it is a
    module, its output, buffers and parameter names, what each output depends on (by autograd), and the same again
    after the layer gets new weights (what an optimiser step does)."""
    kernel = MaskedConv2d.kernel
    layer = MaskedConv2d(in_channels, out_channels, kernel_size, mask_type)
    facts = {"layer": layer, **kernel.run(general.describe, layer)}
    if not facts["module"]:
        return facts
    facts["output"] = layer(torch.randn(2, in_channels, SIZE, SIZE))
    if not torch.is_tensor(facts["output"]) or tuple(facts["output"].shape) != (2, out_channels, SIZE, SIZE):
        return facts
    facts["buffers"] = dict(kernel.run(general.buffers, layer))
    facts["parameters"] = [name for name, _ in kernel.run(general.parameters, layer)]
    facts["mask"] = facts["buffers"].get("mask")
    facts["seen"] = kernel.run(dependency_map, layer, in_channels, SIZE)
    kernel.run(general.load_parameters, layer, [torch.randn_like(p) for _, p in kernel.run(general.parameters, layer)])
    facts["seen_after_training"] = kernel.run(dependency_map, layer, in_channels, SIZE)
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
    expect(
        "mask" not in facts["parameters"],
        "the mask is an nn.Parameter: the optimiser would change it; store it with self.register_buffer('mask', mask)",
    )
    expect(
        "mask" in facts["buffers"],
        "no buffer named 'mask': store it with self.register_buffer('mask', mask) so "
        "that it moves with .to(device) and is saved, but is not trained",
    )


def _mask_in_every_forward(facts: dict, strict: bool) -> None:
    if first_leak(facts["seen_after_training"], strict):
        raise CheckFailed(
            "after the optimiser changes the weights, the layer sees later pixels: multiply the weights "
            "by the mask in forward(), every time (masking them once in __init__ is not enough)"
        )


def _mask_values(mask: torch.Tensor, kernel_size: int, mask_type: str) -> None:
    mask = mask.float()
    expect(
        tuple(mask.shape[-2:]) == (kernel_size, kernel_size),
        f"the mask should be {kernel_size}x{kernel_size}, found shape {tuple(mask.shape)}",
    )
    wrong = (mask.reshape(-1, kernel_size, kernel_size) != reference.causal_mask(kernel_size, mask_type)).any(0)
    if wrong.any():
        rows = sorted({int(i) for i in wrong.nonzero()[:, 0]})
        raise CheckFailed(
            f"mask {mask_type} ({kernel_size}x{kernel_size}) differs from the pattern in rows {rows}: "
            f"ones in every row above the centre and left of the centre in its row; the centre is "
            f"{'0 in mask A' if mask_type == 'A' else '1 in mask B'}; zeros below"
        )


def _stack_map(MaskedConv2d: Handle) -> torch.Tensor | None:
    kernel = MaskedConv2d.kernel
    return kernel.run(dependency_map, kernel.run(masked_stack, MaskedConv2d), 1, SIZE, positive=True)


def _computes_a_masked_convolution(facts: dict, kernel_size: int, mask_type: str) -> None:
    x, what = torch.randn(2, 1, SIZE, SIZE), f"MaskedConv2d(1, 4, {kernel_size}, {mask_type!r})"
    found = behaves_like(facts["layer"], reference.MaskedConv2d(1, 4, kernel_size, mask_type), (x,), what)
    expect_same_as(
        found,
        what,
        {
            "the bias is missing: F.conv2d(x, self.weight * self.mask, self.bias, padding=...)": lambda ref: F.conv2d(
                x, ref.weight * ref.mask, padding=kernel_size // 2
            )
        },
    )


@check
def check_masked_conv(MaskedConv2d: Handle, hidden: bool = False) -> Report:
    """MaskedConv2d(in, out, kernel_size, mask_type) keeps the size and never sees later pixels, whatever
    its weights."""
    size_a, size_b = (7, 5) if hidden else (5, 3)
    with CheckRun("MaskedConv2d", MaskedConv2d.kernel, seed=int(hidden), hidden=hidden) as run:
        a = run.step(
            f"builds MaskedConv2d(1, 4, {size_a}, 'A') and keeps the image size",
            lambda: _layer(_layer_facts(MaskedConv2d, 1, 4, size_a, "A"), 1, 4),
        )
        b = run.step(
            f"builds MaskedConv2d(1, 4, {size_b}, 'B') and keeps the image size",
            lambda: _layer(_layer_facts(MaskedConv2d, 1, 4, size_b, "B"), 1, 4),
        )
        run.step(
            "the mask is a buffer named 'mask' (moves with the layer, never trained)", lambda: _mask_is_a_buffer(a)
        )
        run.step("type A: no output sees its own pixel or a later one", lambda: _no_leak(a["seen"], True, "mask A"))
        run.step(
            "type B: no output sees a later pixel, but each sees its own",
            lambda: (_no_leak(b["seen"], False, "mask B"), _sees_centre(b["seen"])),
        )
        run.step(
            "the masks have exactly the A and B patterns",
            lambda: (_mask_values(a["mask"], size_a, "A"), _mask_values(b["mask"], size_b, "B")),
        )
        run.step(
            "still causal after the weights change (masked in every forward)",
            lambda: (_mask_in_every_forward(a, True), _mask_in_every_forward(b, False)),
        )
        run.step(
            "a random A-B-B stack is causal over the whole image",
            lambda: _no_leak(_stack_map(MaskedConv2d), True, "the stack"),
        )
        run.step(
            "computes F.conv2d(x, weight * mask, bias) with 'same' padding",
            lambda: (_computes_a_masked_convolution(a, size_a, "A"), _computes_a_masked_convolution(b, size_b, "B")),
        )
    return run.report


def _block_variants(x: torch.Tensor) -> dict:
    def inner(ref, mask_type="B", first_relu=True):
        block = copy.deepcopy(ref)
        block.masked.mask = reference.causal_mask(3, mask_type)
        return block.expand(F.relu(block.masked(F.relu(block.reduce(F.relu(x) if first_relu else x)))))

    return {
        "with all weights zero the block should return its input: return x + self.net(x) (the residual "
        "connection)": lambda ref: inner(ref),
        "the masked 3x3 convolution inside a block should be type B: its input at (i, j) is a feature that "
        "already excludes pixel (i, j)": lambda ref: x + inner(ref, "A"),
        "a block starts with a ReLU: ReLU, 1x1, ReLU, masked 3x3, ReLU, 1x1": lambda ref: (
            x + inner(ref, first_relu=False)
        ),
    }


def _block_step(ResidualBlock: Handle, channels: int) -> None:
    block, x, what = ResidualBlock(channels), torch.randn(2, channels, SIZE, SIZE), f"ResidualBlock({channels})"
    expect_same_as(behaves_like(block, reference.ResidualBlock(channels), (x,), what), what, _block_variants(x))


def _model_step(PixelCNN: Handle, channels: int, blocks: int) -> dict:
    images = torch.randint(256, (2, 1, SIZE, SIZE))
    model = PixelCNN(channels=channels, blocks=blocks)
    return {"model": model, "images": images, "logits": model(images)}


def _same_layers(PixelCNN: Handle, channels: int, blocks: int) -> None:
    for c, b in ((channels, blocks), (8, 1)):
        found = PixelCNN.kernel.run(general.parameters, PixelCNN(channels=c, blocks=b))
        next(matchings(found, reference.PixelCNN(channels=c, blocks=b), f"PixelCNN(channels={c}, blocks={b})"))


def _logits(out: torch.Tensor) -> None:
    expect(
        not (out.min() >= 0 and torch.allclose(out.sum(1), torch.ones(1))),
        "the output is probabilities: return the logits (F.cross_entropy and the sampler apply the softmax)",
    )
    expect(out.min() < 0, "every output is >= 0: no activation after the last 1x1 convolution, logits can be negative")


def _model_variants(images: torch.Tensor) -> dict:
    def forward(ref, inputs=None, first="A", inner="B", end=lambda h: h):
        model = copy.deepcopy(ref)
        model.first.mask = reference.causal_mask(7, first)
        for block in model.blocks:
            block.masked.mask = reference.causal_mask(3, inner)
        h = model.first(images.float() / 255 if inputs is None else inputs)
        for block in model.blocks:
            h = block(h)
        return end(model.head(h))

    scale = "the first layer does not receive the pixels scaled to [0, 1]: scale the input with x.float() / 255"
    return {
        scale: lambda ref: forward(ref, images.float()),
        f"{scale} (not binarised)": lambda ref: forward(ref, (images > 127).float()),
        "the first layer should be mask A (it must not see the pixel it predicts)": lambda ref: forward(ref, first="B"),
        "the masked 3x3 convolution inside a block should be type B": lambda ref: forward(ref, inner="A"),
        "the output is probabilities: return the logits (F.cross_entropy and the sampler apply the "
        "softmax)": lambda ref: forward(ref, end=lambda h: h.softmax(1)),
        "every output is >= 0: no activation after the last 1x1 convolution, logits can be negative": lambda ref: (
            forward(ref, end=F.relu)
        ),
    }


@check
def check_pixelcnn(
    PixelCNN: Handle, ResidualBlock: Handle, channels: int = 16, blocks: int = 2, hidden: bool = False
) -> Report:
    """ResidualBlock(c) and PixelCNN(channels, blocks): (N, 1, H, W) intensities 0..255 -> (N, 256, H, W)
    causal logits."""
    kernel = PixelCNN.kernel
    with CheckRun("PixelCNN", kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            f"ResidualBlock({channels}): the layers of the text, x + net(x), a type-B masked convolution",
            lambda: _block_step(ResidualBlock, channels),
        )
        facts = run.step(
            f"builds PixelCNN(channels={channels}, blocks={blocks}) and runs it on integer images",
            lambda: _model_step(PixelCNN, channels, blocks),
        )
        run.step(
            f"(2, 1, {SIZE}, {SIZE}) integer images -> (2, 256, {SIZE}, {SIZE}) logits",
            lambda: expect_shape(facts["logits"], (2, 256, SIZE, SIZE), "model(x)"),
        )
        run.step("the layers of the architecture described", lambda: _same_layers(PixelCNN, channels, blocks))
        run.step("returns logits", lambda: _logits(facts["logits"]))
        run.step(
            "no logit sees its own pixel or a later one",
            lambda: _no_leak(
                kernel.run(dependency_map, facts["model"], 1, SIZE, scale=200.0, positive=True), True, "the model"
            ),
        )
        run.step(
            "computes the architecture described (mask A first, residual blocks, 1x1 head, input / 255)",
            lambda: expect_same_as(
                behaves_like(
                    PixelCNN(channels=channels, blocks=blocks),
                    reference.PixelCNN(channels=channels, blocks=blocks),
                    (facts["images"],),
                    "PixelCNN",
                ),
                "PixelCNN",
                _model_variants(facts["images"]),
            ),
        )
    return run.report


def _sample_order(sample: Handle, height: int, width: int) -> None:
    """Judged by the image drawn: the stand-in's answers depend on the order, the number and the rows of the calls."""
    stand_in = order_stand_in(256, crop=True)
    out = sample(sample.kernel.run(Probe, **stand_in), 2, 1.0, (height, width))
    expect_shape(out, (2, 1, height, width), f"sample(model, 2, 1.0, image_size=({height}, {width}))")
    if torch.equal(out.long(), raster_draws(stand_in, 2, (height, width), pixels=True, crop=True)):
        return
    expect(
        not torch.equal(out.long(), raster_draws(stand_in, 2, (height, width), pixels=True, crop=False)),
        "every call fed the full image: crop it to the rows needed so far (x[..., :i + 1, :])",
    )
    raise CheckFailed(
        "pixels were not sampled one at a time in raster order, one network call per pixel, each conditioned on "
        "the ones already drawn (or were not written back into the image)"
    )


def _temperature_errors(sample: Handle) -> None:
    for bad in (0.0, -1.0):
        expect_raises(
            lambda: sample(sample.kernel.run(Probe, **order_stand_in(256, crop=True)), 1, bad, (2, 2)),
            ValueError,
            f"temperature={bad} should raise ValueError",
        )


@check
def check_sample(sample: Handle, image_size: tuple[int, int] = (6, 6), hidden: bool = False) -> Report:
    """sample(model, n, temperature, image_size) draws pixels in raster order from softmax(logits / T),
    cropping rows."""
    kernel = sample.kernel
    with CheckRun("sample", kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            "draws follow softmax(logits / T) at T = 0.5, 1 and 2 (4000 draws each, not the argmax)",
            lambda: expect_draws_follow_softmax(
                lambda logits, t: sample(kernel.run(Probe, logits), 500, t, (2, 4)), 256, 4000
            ),
        )
        run.step(
            f"draws a {image_size[0]}x{image_size[1]} image in raster order, one network call per pixel, on "
            f"cropped rows",
            lambda: _sample_order(sample, *image_size),
        )
        run.step("temperature <= 0 raises ValueError", lambda: _temperature_errors(sample))
    return run.report
