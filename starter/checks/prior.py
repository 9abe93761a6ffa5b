"""Check cells of notebook 04 (prior over codes): encoding, the categorical prior, sampling code grids."""

from __future__ import annotations

import copy

import torch
from torch.nn import functional as F

from starter.checks import CheckFailed, CheckRun, check, expect, expect_integer, expect_raises, expect_shape
from starter.checks.architecture import behaves_like, expect_same_as, matchings
from starter.checks.kernel import Handle
from starter.checks.sampling import expect_draws_follow_softmax, order_stand_in, raster_draws
from starter.models.pixelcnn import causal_mask
from starter.models.prior import CodePrior
from starter.probes import general
from starter.probes.stand_in import Probe
from starter.report import Report

CODES = 16  # of the stand-in VQ-VAE


def _encodes_like_reference(encode_codes: Handle, n: int, batch_size: int) -> None:
    """On a stand-in VQ-VAE whose encode gives other codes to a call on more than `batch_size` images: the codes
    returned show how the images were batched."""
    stand_in, images = {"weight": torch.randn(CODES, 1, 4, 4), "limit": batch_size}, torch.rand(n, 1, 28, 28)
    codes = encode_codes(encode_codes.kernel.run(Probe, **stand_in), images, batch_size)
    shape = tuple(getattr(codes, "shape", ()))
    hints = {
        (n - n % batch_size, 7, 7): "the last, smaller batch is missing",
        (batch_size, 7, 7): "only the first batch: concatenate the codes of every batch (torch.cat)",
    }
    hint = hints.get(
        shape,
        "vqvae.encode gives the (n, 7, 7) code indices, the encoder alone gives vectors"
        if len(shape) == 4
        else "concatenate the (n, 7, 7) grids along dim 0",
    )
    expect_shape(codes, (n, 7, 7), f"encode_codes(vqvae, {n} images, batch_size={batch_size})", hint)
    expect_integer(codes, "codes")
    model = Probe(**stand_in)
    expected = torch.cat([model.encode(chunk) for chunk in images.split(batch_size)])
    wrong = codes != expected
    if wrong.any():
        oversized = int(((codes - expected) % CODES == 1).flatten(1).all(1).sum())
        if oversized:
            raise CheckFailed(
                f"vqvae.encode got more than batch_size={batch_size} images at once ({oversized} of the {n} images "
                "were encoded in such a call): encode batch by batch (images.split(batch_size))"
            )
        raise CheckFailed(f"{int(wrong.sum())} code indices differ from vqvae.encode(images)")


@check
def check_encode_codes(encode_codes: Handle, n: int = 20, batch_size: int = 7, hidden: bool = False) -> Report:
    """encode_codes(vqvae, images, batch_size) -> (N, 7, 7) int64 code grids, batch by batch (on a small
    random VQ-VAE)."""
    with CheckRun("encode_codes", encode_codes.kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            f"({n}, 1, 28, 28) images in batches of {batch_size} -> ({n}, 7, 7) indices equal to the VQ-VAE's",
            lambda: _encodes_like_reference(encode_codes, n, batch_size),
            hints={RuntimeError: "concatenate the (n, 7, 7) grids along dim 0 (torch.cat's default)"},
        )
    return run.report


def perturbed_grids(num_codes: int, size: int = 7) -> torch.Tensor:
    """A random grid, then for each position p the same grid with every position from p on
    redrawn: (1 + size², size, size)."""
    grid = torch.randint(num_codes, (size * size,))
    grids = [grid]
    for p in range(size * size):
        changed = grid.clone()
        changed[p:] = torch.randint(num_codes, (size * size - p,))
        grids.append(changed)
    return torch.stack(grids).view(-1, size, size)


def first_future_dependency(logits: torch.Tensor) -> tuple | None:
    """From a model's logits on `perturbed_grids`: the first position whose logits changed when it or a later
    position changed, or None."""
    size = logits.shape[-1]
    for p in range(size * size):
        i, j = divmod(p, size)
        if not torch.allclose(logits[1 + p, :, i, j], logits[0, :, i, j], atol=1e-5):
            return i, j
    return None


def _prior_is_causal(logits: torch.Tensor) -> None:
    leak = first_future_dependency(logits)
    expect(
        leak is None,
        f"the logits at position {leak} change when that position or a later one changes: "
        "is the first layer mask A and every later one mask B?",
    )


def _logits(out: torch.Tensor) -> None:
    expect(
        not (out.min() >= 0 and torch.allclose(out.sum(1), torch.ones(1))),
        "the output is probabilities: return the logits (F.cross_entropy and the sampler apply the softmax)",
    )
    expect(out.min() < 0, "every output is >= 0: no activation after the last 1x1 convolution, logits can be negative")


def _prior_variants(codes: torch.Tensor) -> dict:
    def forward(ref, embedded=None, first="A", end=lambda h: h):
        model = copy.deepcopy(ref)
        model.first.mask = causal_mask(7, first)
        h = model.first(model.embedding(codes).permute(0, 3, 1, 2) if embedded is None else embedded(model))
        for block in model.blocks:
            h = block(h)
        return end(model.head(h))

    n, size = len(codes), codes.shape[-1]
    return {
        "the embeddings were reshaped with .view/.reshape, which mixes positions and channels: move the channels "
        "first with .permute(0, 3, 1, 2)": lambda ref: forward(
            ref, lambda m: m.embedding(codes).view(n, -1, size, size)
        ),
        "the nn.Embedding layer is never used: look the codes up in it, self.embedding(codes)": lambda ref: forward(
            ref, lambda m: codes[:, None].float().expand(-1, m.first.in_channels, -1, -1)
        ),
        "is the first layer mask A and every later one mask B?": lambda ref: forward(ref, first="B"),
        "the output is probabilities: return the logits (F.cross_entropy and the sampler apply the "
        "softmax)": lambda ref: forward(ref, end=lambda h: h.softmax(1)),
        "every output is >= 0: no activation after the last 1x1 convolution, logits can be negative": lambda ref: (
            forward(ref, end=F.relu)
        ),
    }


def _prior_step(Prior: Handle, num_codes: int, channels: int, blocks: int) -> dict:
    model = Prior(num_codes=num_codes, channels=channels, blocks=blocks)
    codes = torch.randint(num_codes, (2, 7, 7))
    return {"model": model, "codes": codes, "logits": model(codes)}


def _same_layers(model: Handle, num_codes: int, channels: int, blocks: int) -> None:
    found = model.kernel.run(general.parameters, model)
    next(
        matchings(
            found,
            CodePrior(num_codes, channels=channels, blocks=blocks),
            f"Prior(num_codes={num_codes}, channels={channels}, blocks={blocks})",
        )
    )


def _causal(model: Handle, num_codes: int) -> None:
    model.kernel.run(general.set_training, model, False)
    _prior_is_causal(model(perturbed_grids(num_codes)))


@check
def check_prior(
    Prior: Handle, num_codes: int = 16, channels: int = 16, blocks: int = 2, hidden: bool = False
) -> Report:
    """Prior(num_codes, ...) embeds (N, 7, 7) code indices and returns (N, num_codes, 7, 7) causal logits."""
    with CheckRun("Prior", Prior.kernel, seed=int(hidden), hidden=hidden) as run:
        facts = run.step(
            f"builds Prior(num_codes={num_codes}, channels={channels}, blocks={blocks}) and runs it",
            lambda: _prior_step(Prior, num_codes, channels, blocks),
            hints={
                RuntimeError: "the layers' channel counts do not fit together: the embedding gives "
                "`embed` channels, the first convolution takes `embed` and gives `channels`"
            },
        )
        run.step(
            f"(2, 7, 7) code grids -> (2, {num_codes}, 7, 7) logits",
            lambda: expect_shape(facts["logits"], (2, num_codes, 7, 7), "prior(codes)"),
        )
        run.step("returns logits, not probabilities", lambda: _logits(facts["logits"]))
        run.step(
            "the layers of the stack described (embedding 32, 7x7 mask A, residual blocks, head)",
            lambda: _same_layers(facts["model"], num_codes, channels, blocks),
        )
        run.step(
            "computes the stack described: nn.Embedding, permute, mask A, residual blocks, 1x1 head; no logit "
            "depends on its own position or a later one",
            lambda: expect_same_as(
                behaves_like(
                    facts["model"], CodePrior(num_codes, channels=channels, blocks=blocks), (facts["codes"],), "Prior"
                ),
                "Prior",
                _prior_variants(facts["codes"]),
                diagnose=lambda: _causal(facts["model"], num_codes),
            ),
        )
    return run.report


def _samples_in_order(sample_codes: Handle, n: int) -> None:
    """Judged by the grids drawn: the stand-in's answers depend on the order and the number of the calls."""
    stand_in = order_stand_in(64, crop=False)
    codes = sample_codes(sample_codes.kernel.run(Probe, **stand_in), n, 1.0)
    expect_shape(codes, (n, 7, 7), f"sample_codes(prior, {n}, 1.0)")
    expect_integer(codes, "the sampled codes")
    expect(
        torch.equal(codes, raster_draws(stand_in, n, (7, 7), pixels=False, crop=False)),
        "codes were not drawn one position at a time in raster order, one prior call per position, each given the "
        "ones before",
    )


def _rejects_bad_temperature(sample_codes: Handle) -> None:
    for bad in (0.0, -0.5):
        expect_raises(
            lambda: sample_codes(sample_codes.kernel.run(Probe, **order_stand_in(64, crop=False)), 1, bad),
            ValueError,
            f"temperature={bad} should raise ValueError",
        )


@check
def check_sample_codes(sample_codes: Handle, n: int = 3, hidden: bool = False) -> Report:
    """sample_codes(prior, n, temperature) -> (n, 7, 7) grids drawn in raster order from softmax(logits / T)."""
    kernel = sample_codes.kernel
    with CheckRun("sample_codes", kernel, seed=int(hidden), hidden=hidden) as run:
        run.step(
            "draws follow softmax(logits / T) at T = 0.5, 1 and 2 (4900 draws each, not the argmax)",
            lambda: expect_draws_follow_softmax(
                lambda logits, t: sample_codes(kernel.run(Probe, logits), 100, t), 16, 4900
            ),
        )
        run.step(
            "draws 7x7 grids of integer codes in raster order, one prior call per position",
            lambda: _samples_in_order(sample_codes, n),
        )
        run.step("temperature <= 0 raises ValueError", lambda: _rejects_bad_temperature(sample_codes))
    return run.report
