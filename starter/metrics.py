"""Numbers the course reports: code usage and perplexity, bits per dimension."""
from __future__ import annotations

import math

import torch


def code_counts(indices: torch.Tensor, num_codes: int) -> torch.Tensor:
    """How often each of the `num_codes` codes occurs in `indices` (any shape)."""
    return torch.bincount(indices.flatten().long().cpu(), minlength=num_codes)


def perplexity(counts: torch.Tensor) -> float:
    """exp(entropy) of the code distribution: the number of equally used codes it is worth (K at best)."""
    p = counts.double() / counts.sum()
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def entropy_bits(counts: torch.Tensor) -> float:
    """Entropy in bits of the distribution given by `counts`."""
    return math.log2(perplexity(counts))


def bits_per_dim(nll_nats: float) -> float:
    """Negative log-likelihood per dimension in nats -> bits per dimension."""
    return nll_nats / math.log(2)


@torch.no_grad()
def vqvae_report(model: torch.nn.Module, loader) -> dict[str, float]:
    """Test MSE, share of codes used, perplexity and code counts of a VQ-VAE over a whole loader (not one batch)."""
    model.eval()
    num_codes = model.quantizer.num_codes
    counts = torch.zeros(num_codes, dtype=torch.long)
    squared_error, pixels = 0.0, 0
    for x, _ in loader:
        x_hat, quantized = model(x)
        squared_error += float(((x_hat - x) ** 2).sum())
        pixels += x.numel()
        counts += code_counts(quantized.indices, num_codes)
    return {"mse": squared_error / pixels, "used": float((counts > 0).float().mean()),
            "perplexity": perplexity(counts), "counts": counts}
