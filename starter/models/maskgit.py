"""Masked parallel decoding over code grids (MaskGIT, Chang et al. 2022; notebook 06): a bidirectional transformer
learns to fill in hidden codes from the visible ones, and a grid is drawn in a handful of steps instead of 49.

Training hides a random share of each grid's codes (the share drawn along a cosine, as in the paper) behind a
[MASK] token and asks for them back. Decoding starts from all [MASK]; each step draws every hidden code at once,
keeps the ones the model is surest of, and hides the others again, fewer after every step (a cosine schedule),
until none is left.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.base import CodeGrid, GridModel
from starter.models.registry import register
from starter.models.transformer import TransformerBlock, TransformerPrior, init_weights, transformer_optimizer
from starter.train import StepSchedule


def masked_share(progress: torch.Tensor) -> torch.Tensor:
    """The cosine schedule: the share of codes hidden at `progress` in [0, 1] (all at 0, none at 1)."""
    return torch.cos(math.pi / 2 * progress)


@register("maskgit_prior", "masked codes", width=128, layers=4, heads=4, dropout=0.1)
class MaskGITPrior(GridModel, CodeGrid):
    """Bidirectional transformer over (N, grid, grid) codes in which some are [MASK] (index num_codes) ->
    (N, num_codes, grid, grid) logits of every position's code. `num_classes` set: a class embedding is added at
    every position (class-conditional)."""

    def __init__(
        self,
        num_codes: int = 128,
        grid: int = 7,
        width: int = 128,
        layers: int = 4,
        heads: int = 4,
        num_classes: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__(num_classes)
        self.num_codes, self.grid, self.mask_token = num_codes, grid, num_codes
        self.classes = nn.Embedding(num_classes, width) if num_classes else None
        self.tokens = nn.Embedding(num_codes + 1, width)
        self.position = nn.Parameter(torch.randn(grid * grid, width) * 0.02)
        self.drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(TransformerBlock(width, heads, dropout, causal=False) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, num_codes)
        self.apply(init_weights)

    def forward(self, codes: torch.Tensor, condition: torch.Tensor | None = None) -> torch.Tensor:
        n, height, width = codes.shape
        h = self.tokens(codes.flatten(1).long()) + self.position[: height * width]
        if self.classes is not None:
            h = h + self.classes(condition.long())[:, None]
        h = self.drop(h)
        for block in self.blocks:
            h = block(h)
        return self.head(self.norm(h)).transpose(1, 2).reshape(n, self.num_codes, height, width)

    def hide(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A training input: each grid with a cosine-distributed share of its codes (at least one) hidden; returns
        (the grids with [MASK]s, where they are)."""
        n, positions = codes.shape[0], codes[0].numel()
        hidden = (masked_share(torch.rand(n, 1, device=codes.device)) * positions).ceil().clamp(min=1)
        ranks = torch.rand(n, positions, device=codes.device).argsort(1).argsort(1)
        where = (ranks < hidden).view_as(codes)
        return codes.masked_fill(where, self.mask_token), where

    def loss(self, batch: tuple) -> torch.Tensor:
        """Cross-entropy of the hidden codes, in nats per hidden code."""
        codes, condition = batch
        masked, where = self.hide(codes)
        logits = self(masked, condition if self.conditional else None)
        return F.cross_entropy(logits.permute(0, 2, 3, 1)[where], codes[where].long())

    def make_optimizer(self, lr: float, steps: int) -> StepSchedule:
        """AdamW with warm-up and cosine decay (`transformer_optimizer`)."""
        return transformer_optimizer(self, lr, steps)

    @torch.no_grad()
    def start_from(self, prior: TransformerPrior) -> None:
        """Take the weights of an unconditional autoregressive transformer prior of the same sizes: its blocks
        (whose attention was causal and here sees every position), position embeddings, final norm and head, its
        code embeddings for the codes, and its start vector for [MASK]."""
        if prior.conditional or self.conditional:
            raise ValueError("start_from takes an unconditional prior into an unconditional MaskGIT")
        own = {
            name: p
            for name, p in prior.state_dict().items()
            if name.split(".")[0] in {"blocks", "position", "norm", "head"}
        }
        self.load_state_dict(own, strict=False)
        self.tokens.weight.copy_(torch.cat([prior.embedding.weight, prior.start[None]]))

    @torch.no_grad()
    def grow_from(self, smaller: MaskGITPrior) -> None:
        """Take every weight of a trained MaskGIT model of the same sizes but fewer layers: its blocks become the first
        ones and each block after them starts as the identity (`TransformerBlock.pass_through`), so this deeper
        model predicts exactly what the trained one did, and goes on learning with more capacity."""
        if len(smaller.blocks) >= len(self.blocks):
            raise ValueError(
                f"grow_from takes a model with fewer than {len(self.blocks)} layers, not {len(smaller.blocks)}"
            )
        if smaller.conditional != self.conditional:
            raise ValueError("grow_from takes a model that is class-conditional exactly when this one is")
        heads = (smaller.blocks[0].attention.heads, self.blocks[0].attention.heads)
        if heads[0] != heads[1]:  # the weights would fit, but split into other heads they would compute otherwise
            raise ValueError(f"grow_from takes a model with {heads[1]} heads, not {heads[0]}")
        self.load_state_dict(smaller.state_dict(), strict=False)  # the new blocks' weights are missing from it
        for block in self.blocks[len(smaller.blocks) :]:
            block.pass_through()


@torch.no_grad()
def raster_nll(model: MaskGITPrior, codes: torch.Tensor, batch_size: int = 1000) -> float:
    """Nats per code of (N, grid, grid) `codes` when the model fills them in one at a time in raster order: code t
    is predicted from the codes before it, every later one hidden. The sum over t is the log-likelihood of a grid,
    so this is comparable with an autoregressive prior's test NLL."""
    model.eval()
    total = 0.0
    for grids in codes.flatten(1).long().split(batch_size):
        for t in range(grids.shape[1]):
            hidden = grids.clone()
            hidden[:, t:] = model.mask_token
            logits = model(hidden.view(-1, model.grid, model.grid)).flatten(2)[:, :, t]
            total += float(F.cross_entropy(logits, grids[:, t], reduction="sum"))
    return total / codes.numel()


@torch.no_grad()
def decode_in_raster_order(model: MaskGITPrior, n: int, condition: torch.Tensor | None = None) -> torch.Tensor:
    """Draw n (n, grid, grid) code grids one code at a time in raster order, code t from the model's prediction with
    every later code hidden: exact samples of the distribution whose likelihood `raster_nll` measures (one pass of
    the whole network per code). `condition`: the classes (n,) of a class-conditional model."""
    model.eval()
    positions = model.grid * model.grid
    codes = torch.full((n, positions), model.mask_token, dtype=torch.long, device=next(model.parameters()).device)
    for t in range(positions):
        logits = model(codes.view(n, model.grid, model.grid), condition).flatten(2)[:, :, t]
        codes[:, t] = torch.multinomial(F.softmax(logits, dim=-1), 1)[:, 0]
    return codes.view(n, model.grid, model.grid)


@torch.no_grad()
def decode_in_parallel(
    model: MaskGITPrior,
    n: int,
    steps: int = 8,
    temperature: float = 1.0,
    condition: torch.Tensor | None = None,
    choice_noise: float = 20.0,
) -> torch.Tensor:
    """Draw n (n, grid, grid) code grids in `steps` steps: from all [MASK], each step draws every hidden code from
    softmax(logits / temperature), keeps the draws the model is surest of and hides the others again, as many as the
    cosine schedule says (none after the last step). Sureness is the draw's log-probability plus Gumbel noise scaled
    by `choice_noise` times the share of steps still to come, as in MaskGIT's code: early steps choose almost at
    random, late ones by confidence (with no noise, the surest codes win and every grid comes out as the same digit).
    `condition`: the classes (n,) of a class-conditional model."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    model.eval()
    device = next(model.parameters()).device
    positions = model.grid * model.grid
    codes = torch.full((n, positions), model.mask_token, dtype=torch.long, device=device)
    for step in range(steps):
        hidden = codes == model.mask_token
        logits = model(codes.view(n, model.grid, model.grid), condition).flatten(2).transpose(1, 2) / temperature
        probs = F.softmax(logits, dim=-1)
        drawn = torch.multinomial(probs.view(-1, model.num_codes), 1).view(n, positions)
        gumbel = -torch.log(-torch.log(torch.rand(n, positions, device=device).clamp(1e-20, 1.0)))
        sureness = probs.gather(2, drawn[..., None])[..., 0].log() + choice_noise * (1 - (step + 1) / steps) * gumbel
        sureness = sureness.masked_fill(~hidden, float("inf"))  # codes fixed at earlier steps stay
        still_hidden = int(positions * masked_share(torch.tensor((step + 1) / steps)))
        codes = torch.where(hidden, drawn, codes)
        if still_hidden:
            least_sure = sureness.topk(still_hidden, dim=1, largest=False).indices
            codes.scatter_(1, least_sure, model.mask_token)
    return codes.view(n, model.grid, model.grid)
