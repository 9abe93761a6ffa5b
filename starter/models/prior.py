"""A PixelCNN prior over VQ-VAE code grids (notebook 04): embedded code indices in, K-way softmax out."""
from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from starter.models.gated_pixelcnn import GatedPixelCNN
from starter.models.pixelcnn import PixelCNN
from starter.models.registry import register


class PriorMismatch(ValueError):
    """A prior that does not model the code grids of the VQ-VAE it is used with."""


class CodeGrids:
    """What a prior over (N, grid, grid) code indices adds to its PixelCNN: the grid, the codebook size, and a check
    that it fits a VQ-VAE. `num_classes` > 0 makes it class-conditional; `extra` goes to the PixelCNN."""

    def __init__(self, num_codes: int = 128, grid: int = 7, channels: int = 64, blocks: int = 5, embed: int = 32,
                 num_classes: int = 0, **extra):
        super().__init__(levels=num_codes, channels=channels, blocks=blocks, embed=embed, num_classes=num_classes,
                         image_size=(grid, grid), **extra)
        self.num_codes, self.grid, self.num_classes = num_codes, grid, num_classes

    def check_fits(self, vqvae: torch.nn.Module, grid: int = 7) -> None:
        """Raise PriorMismatch unless this prior models the codebook size and grid of a VQ-VAE (or a quantizer)."""
        k = getattr(vqvae, "quantizer", vqvae).num_codes
        if (self.num_codes, self.grid) != (k, grid):
            raise PriorMismatch(f"this prior models {self.grid}x{self.grid} grids of {self.num_codes} codes, but the "
                                f"VQ-VAE produces {grid}x{grid} grids of {k} codes: retrain the prior on its codes")


@register("prior", "codes", channels=64, blocks=5, embed=32)
class CodePrior(CodeGrids, PixelCNN):
    """PixelCNN (residual blocks) over (N, grid, grid) code indices."""


@register("gated_prior", "codes", channels=64, blocks=7, embed=32, dropout=0.0)
class GatedCodePrior(CodeGrids, GatedPixelCNN):
    """Gated PixelCNN (no blind spot) over (N, grid, grid) code indices; 7 gated blocks unless told otherwise."""

    def __init__(self, num_codes: int = 128, grid: int = 7, channels: int = 64, blocks: int = 7, embed: int = 32,
                 num_classes: int = 0, dropout: float = 0.0):
        super().__init__(num_codes, grid, channels, blocks, embed, num_classes, dropout=dropout)


@torch.no_grad()
def encode_dataset(vqvae: torch.nn.Module, dataset: TensorDataset, batch_size: int = 1000) -> TensorDataset:
    """(images, labels) -> (code grids (N, 7, 7) int64, labels), encoded with a trained VQ-VAE."""
    images, labels = dataset.tensors
    vqvae.eval()
    codes = torch.cat([vqvae.encode(chunk) for chunk in images.split(batch_size)])
    return TensorDataset(codes, labels)
