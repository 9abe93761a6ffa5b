"""Fixtures for notebook 06 (transformer prior): a layer for the student's attention step, and a cache to feed it."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn


class AttentionLayer(nn.Module):
    """What a self-attention layer holds (notebook 06): `heads`, the projection `qkv` to queries, keys and values,
    and the output projection `out`; its use is the student's to write."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)


def steps(step: Callable, layer: Any, x: torch.Tensor, sizes: list[int]) -> dict:
    """Feed the positions of x to step(layer, positions, cache) in chunks of `sizes` positions, with one cache; what
    each call returned and how many positions the cache holds at the end."""
    from starter.models.transformer import KVCache

    cache, outputs, start = KVCache(x.shape[1]), [], 0
    for size in sizes:
        outputs.append(step(layer, x[:, start : start + size], cache))
        start += size
    return {"outputs": outputs, "cached": cache.length}
