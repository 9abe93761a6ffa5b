"""A stand-in for a trained model, handed to student code by a check (a sampler, an encoding loop). Every answer it
gives is set by tensors the check drew in the grader's process for this run, so none can be known before the check
runs, and how it was called shows in what the student's code returns: the check reads that, never a record."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class Probe(nn.Module):
    """Logits for a sampler, code indices for an encoding loop.

    `forward(x)`: for an (N, 1, H, W) or (N, H, W) grid of integers, (N, levels, H, W) logits: `logits` at every
    position, plus `sharpness` on one value per position: `table[(v + calls) % levels]`, where v is the value before
    that position in raster order (`start` before the first) and `calls` the number of earlier calls. With `crop`,
    the rows before the input's last row get the entry after it instead (a sampler that feeds only the rows drawn so
    far reads its answers from the last row).
    `encoder(images)`: (N, K, 7, 7) scores of (N, 1, 28, 28) images, a stride-4 convolution by `weight` (K, 1, 4, 4);
    `encode(images)`: their argmax over the K codes. A call on more than `limit` images gets every image's scores
    moved one code on.
    """

    def __init__(
        self,
        logits: torch.Tensor | None = None,
        table: torch.Tensor | None = None,
        start: int = 0,
        sharpness: float = 0.0,
        crop: bool = False,
        weight: torch.Tensor | None = None,
        limit: int = 0,
    ):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(1) if logits is None else logits.float(), requires_grad=False)
        levels = len(self.logits)
        self.register_buffer("table", torch.zeros(levels, dtype=torch.long) if table is None else table.long() % levels)
        self.register_buffer("weight", torch.zeros(1, 1, 4, 4) if weight is None else weight.float())
        self.start, self.sharpness, self.crop, self.limit, self.calls = int(start), float(sharpness), crop, limit, 0

    def forward(self, x: torch.Tensor, *condition: torch.Tensor) -> torch.Tensor:
        """(N, levels, H, W) logits of a grid of integers (see the class)."""
        levels, n, (height, width) = len(self.logits), len(x), x.shape[-2:]
        flat = x.reshape(n, -1).long()
        before = torch.cat([torch.full((n, 1), self.start, dtype=torch.long), flat[:, :-1]], 1) + self.calls
        if self.crop:
            before[:, : (height - 1) * width] += 1
        self.calls += 1
        chosen = F.one_hot(self.table[before % levels], levels).view(n, height, width, levels).permute(0, 3, 1, 2)
        return self.logits.view(1, -1, 1, 1) + self.sharpness * chosen.float()

    def encoder(self, images: torch.Tensor) -> torch.Tensor:
        """(N, K, 7, 7) scores of (N, 1, 28, 28) images (see the class)."""
        scores = F.conv2d(images.float(), self.weight, stride=4)
        return scores.roll(1, dims=1) if len(images) > self.limit else scores

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 7, 7) code indices of (N, 1, 28, 28) images: the argmax of their scores."""
        return self.encoder(images).argmax(1)
