"""A PixelCNN prior over VQ-VAE code grids (notebook 04): embedded code indices in, K-way softmax out."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from starter.models.base import CodeGrid
from starter.models.gated_pixelcnn import GatedPixelCNN
from starter.models.pixelcnn import PixelCNN
from starter.models.registry import register


@register("prior", "codes", channels=64, blocks=5, embed=32)
class CodePrior(PixelCNN, CodeGrid):
    """PixelCNN (residual blocks) over (N, grid, grid) code indices; `num_classes` > 0: class-conditional."""

    def __init__(
        self,
        num_codes: int = 128,
        grid: int = 7,
        channels: int = 64,
        blocks: int = 5,
        embed: int = 32,
        num_classes: int = 0,
    ):
        super().__init__(num_codes, channels, blocks, embed, num_classes, (grid, grid))
        self.num_codes, self.grid = num_codes, grid


@register("gated_prior", "codes", channels=64, blocks=7, embed=32, dropout=0.0)
class GatedCodePrior(GatedPixelCNN, CodeGrid):
    """Gated PixelCNN (no blind spot) over (N, grid, grid) code indices; 7 gated blocks unless told otherwise."""

    def __init__(
        self,
        num_codes: int = 128,
        grid: int = 7,
        channels: int = 64,
        blocks: int = 7,
        embed: int = 32,
        num_classes: int = 0,
        dropout: float = 0.0,
    ):
        super().__init__(num_codes, channels, blocks, embed, num_classes, image_size=(grid, grid), dropout=dropout)
        self.num_codes, self.grid = num_codes, grid


@torch.no_grad()
def encode_dataset(vqvae: torch.nn.Module, dataset: TensorDataset, batch_size: int = 1000) -> TensorDataset:
    """(images, labels) -> (code grids (N, 7, 7) int64, labels), encoded with a trained VQ-VAE."""
    images, labels = dataset.tensors
    vqvae.eval()
    codes = torch.cat([vqvae.encode(chunk) for chunk in images.split(batch_size)])
    return TensorDataset(codes, labels)
