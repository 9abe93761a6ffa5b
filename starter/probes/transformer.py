"""Fixtures for notebook 06 (transformer prior): a layer for the student's attention step, and a cache for it."""

from __future__ import annotations

from typing import Any

from torch import nn


class AttentionLayer(nn.Module):
    """What a self-attention layer holds (notebook 06): `heads`, the projection `qkv` to queries, keys and values,
    and the output projection `out`; its use is the student's to write."""

    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)


def kv_cache(capacity: int) -> Any:
    """An empty key/value cache for `capacity` positions (the course's KVCache), for the student's attention_step."""
    from starter.models.transformer import KVCache

    return KVCache(capacity)


def cache_length(cache: Any) -> int:
    """How many positions the cache holds."""
    return int(cache.length)
