"""Check cells of notebook 04 (prior over codes): encoding, the categorical prior, sampling code grids."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from starter.checks import CheckRun, Report, expect, expect_raises, expect_shape


def _encodes_like_reference(encode_codes: Callable, vqvae: nn.Module, images: torch.Tensor) -> None:
    codes = encode_codes(vqvae, images, 7)
    expect_shape(codes, (len(images), 7, 7), f"encode_codes(vqvae, {len(images)} images, batch_size=7)")
    expect(codes.dtype == torch.long, f"codes should be integer indices (torch.long), found {codes.dtype}")
    wrong = int((codes.cpu() != vqvae.encode(images).cpu()).sum())
    expect(wrong == 0, f"{wrong} code indices differ from vqvae.encode(images)")


def check_encode_codes(encode_codes: Callable, vqvae: nn.Module, images: torch.Tensor) -> Report:
    """encode_codes(vqvae, images, batch_size) -> (N, 7, 7) int64 code grids, batch by batch."""
    with CheckRun("encode_codes") as run:
        run.step("(20, 1, 28, 28) images -> (20, 7, 7) indices equal to the VQ-VAE's", lambda: _encodes_like_reference(
            encode_codes, vqvae, images[:20]))
    return run.report


def first_future_dependency(model: nn.Module, num_codes: int, size: int = 7) -> tuple | None:
    """Perturb every position at or after p and see if the logits at p change; returns (p, None) or None."""
    torch.manual_seed(0)
    grid = torch.randint(num_codes, (1, size, size))
    with torch.no_grad():
        base = model(grid)
        for p in range(size * size):
            changed = grid.clone().view(-1)
            changed[p:] = torch.randint(num_codes, (size * size - p,))
            i, j = divmod(p, size)
            if not torch.allclose(model(changed.view(1, size, size))[..., i, j], base[..., i, j], atol=1e-5):
                return i, j
    return None


def _prior_is_causal(model: nn.Module, num_codes: int) -> None:
    leak = first_future_dependency(model, num_codes)
    expect(leak is None, f"the logits at position {leak} change when that position or a later one changes: "
                         "is the first layer mask A and every later one mask B?")


def check_prior(Prior: type) -> Report:
    """Prior(num_codes, ...) embeds (N, 7, 7) code indices and returns (N, num_codes, 7, 7) causal logits."""
    with CheckRun("Prior") as run:
        model = run.step("builds Prior(num_codes=16, channels=16, blocks=2)",
                         lambda: Prior(num_codes=16, channels=16, blocks=2))
        run.step("(2, 7, 7) code grids -> (2, 16, 7, 7) logits",
                 lambda: expect_shape(model(torch.randint(16, (2, 7, 7))), (2, 16, 7, 7), "prior(codes)"))
        run.step("embeds the code indices with nn.Embedding (a code number is a name, not a quantity)", lambda: expect(
            any(isinstance(m, nn.Embedding) for m in model.modules()), "no nn.Embedding layer found"))
        run.step("no logit depends on its own position or a later one", lambda: _prior_is_causal(model.eval(), 16))
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


def _samples_in_order(sample_codes: Callable) -> None:
    model = _CountingPrior()
    codes = sample_codes(model, 3, 1.0)
    expect_shape(codes, (3, 7, 7), "sample_codes(prior, 3, 1.0)")
    expect(torch.equal(codes.long().cpu(), torch.arange(49).view(1, 7, 7).expand(3, 7, 7)),
           "codes were not drawn one position at a time in raster order, each given the ones before")
    expect(model.calls == 49, f"expected 49 prior calls (one per position), found {model.calls}")


def _rejects_bad_temperature(sample_codes: Callable) -> None:
    for bad in (0.0, -0.5):
        expect_raises(lambda: sample_codes(_CountingPrior(), 1, bad), ValueError, f"temperature={bad} should raise ValueError")


def check_sample_codes(sample_codes: Callable) -> Report:
    """sample_codes(prior, n, temperature) -> (n, 7, 7) grids drawn in raster order."""
    with CheckRun("sample_codes") as run:
        run.step("draws 7x7 grids in raster order, one prior call per position", lambda: _samples_in_order(sample_codes))
        run.step("temperature <= 0 raises ValueError", lambda: _rejects_bad_temperature(sample_codes))
    return run.report
