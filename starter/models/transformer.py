"""A transformer prior over VQ-VAE code grids (notebook 06): the grid read as a sequence in raster order, causal
self-attention, learned position embeddings, and a key/value cache for sampling.

Position p sees the codes before it through a start vector (or, for a class-conditional prior, the class's
embedding) shifted in front of the sequence: the input at p is the code at p - 1. Each layer's keys and values at
p depend only on inputs up to p, so while sampling they are computed once and kept (`KVCache`): a step costs one
position through the network, attending to the cached ones.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.base import Autoregressive, CodeGrid
from starter.models.registry import register
from starter.train import StepSchedule


class KVCache:
    """The keys and values one attention layer has computed so far, (N, heads, positions, head width) each: kept in
    buffers for `capacity` positions, written in place as positions are added."""

    def __init__(self, capacity: int):
        self.capacity, self.length = capacity, 0
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def extend(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the new positions' keys and values; returns those of every position so far."""
        if self.keys is None:
            n, heads, _, width = keys.shape
            self.keys, self.values = (keys.new_empty(n, heads, self.capacity, width) for _ in range(2))
        end = self.length + keys.shape[2]
        if end > self.capacity:
            raise ValueError(f"the cache holds {self.capacity} positions, not {end}")
        self.keys[:, :, self.length : end], self.values[:, :, self.length : end] = keys, values
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


def causal_mask(queries: int, keys: int) -> torch.Tensor:
    """(queries, keys) bool: True where a query may attend to a key. The queries are the last `queries` of the
    `keys` positions (all of them without a cache), and each sees itself and the positions before it."""
    return torch.ones(queries, keys, dtype=torch.bool).tril(keys - queries)


def attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None, dropout: float = 0.0
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d) where `mask` allows, -inf elsewhere) v, for (N, heads, T, d) queries and (N, heads,
    S, d) keys and values; `mask` is (T, S) bool. (PyTorch's fused kernel computes exactly this.)"""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)


class SelfAttention(nn.Module):
    """Multi-head self-attention: each position attends to itself and the positions before it (`causal`), or to
    every position."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not a multiple of heads {heads}")
        self.heads, self.dropout, self.causal = heads, dropout, causal
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, T, width) -> queries, keys and values, each (N, heads, T, width / heads)."""
        n, t, width = x.shape
        return tuple(
            part.view(n, t, self.heads, width // self.heads).transpose(1, 2) for part in self.qkv(x).split(width, dim=2)
        )

    def merge(self, y: torch.Tensor) -> torch.Tensor:
        """(N, heads, T, width / heads) -> the output projection of the heads side by side, (N, T, width)."""
        n, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(n, t, -1))

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """(N, T, width) -> (N, T, width); with `cache`, x holds the positions after the cached ones."""
        if cache is not None:
            return attention_step(self, x, cache)
        q, k, v = self.split(x)
        mask = causal_mask(q.shape[2], k.shape[2]).to(x.device) if self.causal else None
        return self.merge(attention(q, k, v, mask, self.dropout if self.training else 0.0))


def attention_step(layer: SelfAttention, x: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """Causal self-attention of the new positions `x` (N, T, width), given the keys and values of the positions
    before them in `cache`: their own keys and values join the cache, and they attend to all of it. One new position
    sees every key, so it needs no mask (and PyTorch's fused kernel is then about 3x faster on a CPU)."""
    q, k, v = layer.split(x)
    k, v = cache.extend(k, v)
    mask = causal_mask(q.shape[2], k.shape[2]).to(x.device) if q.shape[2] > 1 else None
    return layer.merge(attention(q, k, v, mask))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: x + attention(norm(x)), then x + MLP(norm(x))."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0, causal: bool = True):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.attention = SelfAttention(width, heads, dropout, causal)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width), nn.Dropout(dropout)
        )

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attention(self.norm1(x), cache)
        return x + self.mlp(self.norm2(x))

    @torch.no_grad()
    def pass_through(self) -> None:
        """Zero both output projections: the block then returns its input unchanged (x + 0, then + 0), so it can be
        added to a trained stack without changing what the stack computes, and learns from there."""
        for projection in (self.attention.out, self.mlp[2]):
            projection.weight.zero_()
            projection.bias.zero_()


@register("transformer_prior", "codes", width=128, layers=4, heads=4, dropout=0.1, class_dropout=0.0)
class TransformerPrior(Autoregressive, CodeGrid):
    """Decoder-only transformer over (N, grid, grid) code indices -> (N, num_codes, grid, grid) logits.
    `num_classes` set: the class's embedding replaces the start vector (class-conditional prior). `class_dropout`
    set too: while training, that share of the grids is shown a "no class" embedding instead of its class, so the
    one model also learns the unconditional prior and can be sampled with classifier-free guidance."""

    def __init__(
        self,
        num_codes: int = 128,
        grid: int = 7,
        width: int = 128,
        layers: int = 4,
        heads: int = 4,
        num_classes: int = 0,
        dropout: float = 0.0,
        class_dropout: float = 0.0,
    ):
        super().__init__(num_codes, width, num_classes, (grid, grid))
        if class_dropout and not num_classes:
            raise ValueError("class_dropout hides the class of a class-conditional prior: set num_classes too")
        self.num_codes, self.grid, self.class_dropout = num_codes, grid, class_dropout
        self.null_class = num_classes if class_dropout else None
        self.start = nn.Parameter(torch.zeros(width)) if not num_classes else None
        self.classes = nn.Embedding(num_classes + bool(class_dropout), width) if num_classes else None
        self.position = nn.Parameter(torch.randn(grid * grid, width) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)
        self.apply(init_weights)

    def first_input(self, n: int, condition: torch.Tensor | None) -> torch.Tensor:
        """(N, 1, width): what position 0 sees, the start vector or the class embedding (while training with
        `class_dropout`, that of "no class" for a random share of the grids)."""
        if self.classes is not None:
            if condition is None:
                raise ValueError("this prior is class-conditional: pass the labels as `condition`")
            condition = condition.long()
            if self.training and self.class_dropout:
                hidden = torch.rand(condition.shape, device=condition.device) < self.class_dropout
                condition = condition.masked_fill(hidden, self.null_class)
            return self.classes(condition).unsqueeze(1)
        return self.start.expand(n, 1, -1)

    def sequence_inputs(
        self, codes: torch.Tensor, condition: torch.Tensor | None, first: int, last: int
    ) -> torch.Tensor:
        """(N, last - first, width): the inputs at positions first..last-1, each the previous code's embedding plus
        the position's embedding."""
        flat = codes.flatten(1)
        previous = self.embedding(flat[:, max(first - 1, 0) : last - 1].long())
        if first == 0:
            previous = torch.cat([self.first_input(len(codes), condition), previous], 1)
        return self.drop(previous + self.position[first:last])

    def logits_at(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(h))

    def forward(self, codes: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        """(N, H, W) code indices -> (N, num_codes, H, W) logits; position p sees only positions before it."""
        n, height, width = codes.shape
        h = self.sequence_inputs(codes, condition, 0, height * width)
        for block in self.blocks:
            h = block(h)
        return self.logits_at(h).transpose(1, 2).reshape(n, self.num_codes, height, width)

    def cached_steps(self, grid: torch.Tensor, condition: torch.Tensor | None) -> TransformerSteps:
        """A key/value cache per layer (`TransformerSteps`)."""
        return TransformerSteps(self, grid, condition)

    def make_optimizer(self, lr: float, steps: int) -> StepSchedule:
        """AdamW with warm-up and cosine decay (`transformer_optimizer`)."""
        return transformer_optimizer(self, lr, steps)


def transformer_optimizer(model: nn.Module, lr: float, steps: int, weight_decay: float = 0.01) -> StepSchedule:
    """How the course trains its transformers (as GPT-2 and nanoGPT do): AdamW with weight decay on the weight
    matrices only, the learning rate warmed up over the first steps (up to 500), then decayed to 0 along a cosine."""
    matrices = [p for name, p in model.named_parameters() if p.dim() >= 2 and name != "position"]
    others = [p for name, p in model.named_parameters() if not (p.dim() >= 2 and name != "position")]
    optimizer = torch.optim.AdamW(
        [{"params": matrices, "weight_decay": weight_decay}, {"params": others, "weight_decay": 0.0}],
        lr=lr,
        betas=(0.9, 0.95),
    )
    warmup = max(1, min(500, steps // 10))
    return StepSchedule(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(step, steps) / steps))
    )


def init_weights(module: nn.Module) -> None:
    """GPT-2's initialisation: N(0, 0.02) weights, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)


class TransformerSteps:
    """Position-by-position logits of a `TransformerPrior` with a key/value cache per layer: the positions not yet
    cached (all rows before the first drawn one, then one at a time) go through the network once."""

    def __init__(self, model: TransformerPrior, grid: torch.Tensor, condition: torch.Tensor | None):
        self.model, self.grid, self.condition = model, grid, condition
        self.caches = [KVCache(grid.shape[-2] * grid.shape[-1]) for _ in model.blocks]
        self.cached = 0  # positions whose keys and values are in the caches

    def logits(self, i: int, j: int) -> torch.Tensor:
        position = i * self.grid.shape[-1] + j
        h = self.model.sequence_inputs(self.grid, self.condition, self.cached, position + 1)
        for block, cache in zip(self.model.blocks, self.caches):
            h = block(h, cache)
        self.cached = position + 1
        return self.model.logits_at(h[:, -1])

    def record(self, i: int, j: int, values: torch.Tensor) -> None:
        """Nothing to do: the grid holds the drawn value, the next position's input."""
