"""Check cells of notebook 04 (prior over codes): encoding, the categorical prior, sampling code grids."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from starter.checks import (CheckRun, Report, expect, expect_integer, expect_raises, expect_same_parameter_count,
                            expect_shape, layer_calls, observe, parameter_count)
from starter.checks.sampling import expect_draws_follow_softmax
from starter.models.prior import CodePrior
from starter.models.vq import VQVAE


class _EncodeRecorder:
    """Stands in for a VQ-VAE: delegates encode() and records the size of each batch it is given."""

    def __init__(self, vqvae: nn.Module):
        self.vqvae, self.sizes = vqvae, []

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(images))
        return self.vqvae.encode(images)

    def __getattr__(self, name: str):
        return getattr(self.vqvae, name)


def _encoded(encode_codes: Callable, vqvae: nn.Module, images: torch.Tensor, batch_size: int) -> tuple:
    recorder = _EncodeRecorder(vqvae)
    return encode_codes(recorder, images, batch_size), recorder.sizes


def _encodes_like_reference(encode_codes: Callable, n: int, batch_size: int) -> None:
    vqvae, images = VQVAE(num_codes=16, code_dim=4, hidden=8).eval(), torch.rand(n, 1, 28, 28)
    codes, sizes = observe(lambda: _encoded(encode_codes, vqvae, images, batch_size))
    shape = tuple(getattr(codes, "shape", ()))
    hints = {(n - n % batch_size, 7, 7): "the last, smaller batch is missing",
             (batch_size, 7, 7): "only the first batch: concatenate the codes of every batch (torch.cat)"}
    hint = hints.get(shape, "vqvae.encode gives the (n, 7, 7) code indices, the encoder alone gives vectors"
                     if len(shape) == 4 else "concatenate the (n, 7, 7) grids along dim 0")
    expect_shape(codes, (n, 7, 7), f"encode_codes(vqvae, {n} images, batch_size={batch_size})", hint)
    expect_integer(codes, "codes")
    expect(max(sizes, default=0) <= batch_size, f"vqvae.encode got a batch of {max(sizes, default=0)} images with "
                                                f"batch_size={batch_size}: encode batch by batch (images.split(batch_size))")
    wrong = int((codes != vqvae.encode(images)).sum())
    expect(wrong == 0, f"{wrong} code indices differ from vqvae.encode(images)")


def check_encode_codes(encode_codes: Callable, n: int = 20, batch_size: int = 7, hidden: bool = False) -> Report:
    """encode_codes(vqvae, images, batch_size) -> (N, 7, 7) int64 code grids, batch by batch (on a small random VQ-VAE)."""
    with CheckRun("encode_codes", seed=int(hidden), hidden=hidden, student=encode_codes) as run:
        run.step(f"({n}, 1, 28, 28) images in batches of {batch_size} -> ({n}, 7, 7) indices equal to the VQ-VAE's",
                 lambda: _encodes_like_reference(encode_codes, n, batch_size),
                 hints={RuntimeError: "concatenate the (n, 7, 7) grids along dim 0 (torch.cat's default)"})
    return run.report


def perturbed_grids(num_codes: int, size: int = 7) -> torch.Tensor:
    """A random grid, then for each position p the same grid with every position from p on redrawn: (1 + size², size, size)."""
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
    expect(leak is None, f"the logits at position {leak} change when that position or a later one changes: "
                         "is the first layer mask A and every later one mask B?")


def _prior_facts(Prior: type, num_codes: int, channels: int, blocks: int, codes: torch.Tensor, grids: torch.Tensor) -> dict:
    """Everything the check needs to know about the student's Prior, as data."""
    model = Prior(num_codes=num_codes, channels=channels, blocks=blocks)
    facts = {"logits": model(codes), "layers": [type(m).__name__ for m in model.modules()],
             "parameters": parameter_count(model)}
    with torch.no_grad():
        _, facts["calls"] = layer_calls(model, codes)
        facts["perturbed_logits"] = model.eval()(grids)
    return facts


def _channels_first(calls: list) -> None:
    index = next((i for i, (layer, _, _) in enumerate(calls) if layer == "Embedding"), None)
    expect(index is not None, "the nn.Embedding layer is never used: look the codes up in it, self.embedding(codes)")
    expect(index + 1 < len(calls), "nothing is applied to the embeddings")
    embedded, received = calls[index][2], calls[index + 1][1]
    n, height, width, dim = embedded.shape
    expect(not torch.equal(received, embedded.reshape(n, dim, height, width)) or dim == 1,
           "the embeddings were reshaped with .view/.reshape, which mixes positions and channels: move the channels "
           "first with .permute(0, 3, 1, 2)")
    expect(torch.equal(received, embedded.permute(0, 3, 1, 2)),
           "the first convolution should receive the embeddings with the channels first: embedding(codes).permute(0, 3, 1, 2)")


def _logits(out: torch.Tensor) -> None:
    expect(not (out.min() >= 0 and torch.allclose(out.sum(1), torch.ones(1))),
           "the output is probabilities: return the logits (F.cross_entropy and the sampler apply the softmax)")
    expect(out.min() < 0, "every output is >= 0: no activation after the last 1x1 convolution, logits can be negative")


def _prior_step(Prior: type, num_codes: int, channels: int, blocks: int) -> dict:
    codes, grids = torch.randint(num_codes, (2, 7, 7)), perturbed_grids(num_codes)
    return observe(lambda: _prior_facts(Prior, num_codes, channels, blocks, codes, grids))


def check_prior(Prior: type, num_codes: int = 16, channels: int = 16, blocks: int = 2, hidden: bool = False) -> Report:
    """Prior(num_codes, ...) embeds (N, 7, 7) code indices and returns (N, num_codes, 7, 7) causal logits."""
    with CheckRun("Prior", seed=int(hidden), hidden=hidden, student=Prior) as run:
        facts = run.step(f"builds Prior(num_codes={num_codes}, channels={channels}, blocks={blocks}) and runs it",
                         lambda: _prior_step(Prior, num_codes, channels, blocks),
                         hints={RuntimeError: "the layers' channel counts do not fit together: the embedding gives "
                                              "`embed` channels, the first convolution takes `embed` and gives `channels`"})
        run.step(f"(2, 7, 7) code grids -> (2, {num_codes}, 7, 7) logits",
                 lambda: expect_shape(facts["logits"], (2, num_codes, 7, 7), "prior(codes)"))
        run.step("embeds the code indices with nn.Embedding (a code number is a name, not a quantity)", lambda: expect(
            "Embedding" in facts["layers"], "no nn.Embedding layer found"))
        run.step("the embeddings enter the first convolution channels first (permute, not view)",
                 lambda: _channels_first(facts["calls"]))
        run.step("returns logits, not probabilities", lambda: _logits(facts["logits"]))
        run.step("same number of parameters as the stack described (embedding 32, 7x7 mask A, residual blocks, head)",
                 lambda: expect_same_parameter_count(facts["parameters"], CodePrior(num_codes, channels=channels, blocks=blocks),
                                                     f"Prior(num_codes={num_codes}, channels={channels}, blocks={blocks})"))
        run.step("no logit depends on its own position or a later one",
                 lambda: _prior_is_causal(facts["perturbed_logits"]))
    return run.report


class _CountingPrior(nn.Module):
    """All probability on (previous code in raster order + 1) % K; records how often it is called."""

    def __init__(self, num_codes: int = 64):
        super().__init__()
        self.num_codes, self.calls = num_codes, 0
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        n, h, w = codes.shape
        previous = torch.cat([torch.full((n, 1), -1, dtype=torch.long), codes.long().reshape(n, -1)[:, :-1]], 1)
        target = (previous + 1) % self.num_codes
        return torch.nn.functional.one_hot(target, self.num_codes).float().mul(50).view(n, h, w, -1).permute(0, 3, 1, 2)


def _sampled_in_order(sample_codes: Callable, n: int) -> tuple:
    model = _CountingPrior()
    return sample_codes(model, n, 1.0), model.calls


def _samples_in_order(facts: tuple, n: int) -> None:
    codes, calls = facts
    expect_shape(codes, (n, 7, 7), f"sample_codes(prior, {n}, 1.0)")
    expect_integer(codes, "the sampled codes")
    expect(torch.equal(codes, torch.arange(49).view(1, 7, 7).expand(n, 7, 7)),
           "codes were not drawn one position at a time in raster order, each given the ones before")
    expect(calls == 49, f"expected 49 prior calls (one per position), found {calls}")


def _rejects_bad_temperature(sample_codes: Callable) -> None:
    for bad in (0.0, -0.5):
        expect_raises(lambda: observe(lambda: sample_codes(_CountingPrior(), 1, bad)), ValueError,
                      f"temperature={bad} should raise ValueError")


def check_sample_codes(sample_codes: Callable, n: int = 3, hidden: bool = False) -> Report:
    """sample_codes(prior, n, temperature) -> (n, 7, 7) grids drawn in raster order from softmax(logits / T)."""
    with CheckRun("sample_codes", seed=int(hidden), hidden=hidden, student=sample_codes) as run:
        run.step("draws follow softmax(logits / T) at T = 0.5, 1 and 2 (4900 draws each, not the argmax)",
                 lambda: expect_draws_follow_softmax(lambda model, t: observe(lambda: sample_codes(model, 100, t)), 16, 4900))
        run.step("draws 7x7 grids of integer codes in raster order, one prior call per position",
                 lambda: _samples_in_order(observe(lambda: _sampled_in_order(sample_codes, n)), n))
        run.step("temperature <= 0 raises ValueError", lambda: _rejects_bad_temperature(sample_codes))
    return run.report
