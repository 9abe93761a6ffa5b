"""A two-level VQ-VAE (VQ-VAE-2 in miniature, notebook 05): a 4x4 top grid for the overall shape, a 7x7 bottom
grid for the strokes, and a bottom prior that reads the top codes."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.autoencoder import conv_decoder, conv_encoder
from starter.models.base import PriorMismatch
from starter.models.prior import CodePrior
from starter.models.registry import register
from starter.models.vq import Quantized, VectorQuantizer


def upsample_4_to_7(in_channels: int, out_channels: int) -> nn.ConvTranspose2d:
    """A transposed convolution from a 4x4 grid to a 7x7 one ((4 - 1) * 2 - 2 + 3 = 7)."""
    return nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1)


@register("two_level_vqvae", "images")
class TwoLevelVQVAE(nn.Module):
    """Encoder features (7x7) -> top codes (4x4); bottom codes (7x7) from the features *and* the decoded top codes;
    the decoder reads both. The default sizes spend 16 x 7 + 49 x 5 = 357 bits per image (one level: 49 x 7 = 343)."""

    def __init__(self, top_codes: int = 128, bottom_codes: int = 32, code_dim: int = 16, hidden: int = 32):
        super().__init__()
        width = 2 * hidden
        self.features = conv_encoder(hidden)
        self.top_encoder = nn.Sequential(
            nn.Conv2d(width, width, 3, stride=2, padding=1), nn.ReLU(), nn.Conv2d(width, code_dim, 1)
        )
        self.top_quantizer = VectorQuantizer(top_codes, code_dim, update="ema", restart=True)
        self.top_to_bottom = upsample_4_to_7(code_dim, code_dim)
        self.bottom_encoder = nn.Conv2d(width + code_dim, code_dim, 1)
        self.bottom_quantizer = VectorQuantizer(bottom_codes, code_dim, update="ema", restart=True)
        self.decoder = nn.Sequential(nn.Conv2d(2 * code_dim, width, 3, padding=1), nn.ReLU(), conv_decoder(hidden))

    def quantize(self, x: torch.Tensor) -> tuple[Quantized, Quantized]:
        """(N, 1, 28, 28) images -> (top, bottom) quantised grids, 4x4 and 7x7."""
        features = self.features(x)
        top = self.top_quantizer(self.top_encoder(features))
        bottom = self.bottom_quantizer(self.bottom_encoder(torch.cat([features, self.top_to_bottom(top.z_q)], 1)))
        return top, bottom

    def decode_vectors(self, top_vectors: torch.Tensor, bottom_vectors: torch.Tensor) -> torch.Tensor:
        """Quantised vectors of both levels -> (N, 1, 28, 28) images."""
        return self.decoder(torch.cat([bottom_vectors, self.top_to_bottom(top_vectors)], 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Quantized, Quantized]:
        top, bottom = self.quantize(x)
        return self.decode_vectors(top.z_q, bottom.z_q), top, bottom

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 1, 28, 28) images -> top (N, 4, 4) and bottom (N, 7, 7) code indices."""
        top, bottom = self.quantize(x)
        return top.indices, bottom.indices

    @torch.no_grad()
    def decode(self, top: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """Top (N, 4, 4) and bottom (N, 7, 7) code indices -> (N, 1, 28, 28) images."""
        return self.decode_vectors(self.top_quantizer.lookup(top), self.bottom_quantizer.lookup(bottom))


@torch.no_grad()
def encode_two_level(
    model: TwoLevelVQVAE, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 1, 28, 28) images -> top (N, 4, 4) and bottom (N, 7, 7) code indices, batch by batch."""
    model.eval()
    top, bottom = zip(*(model.encode(chunk) for chunk in images.split(batch_size)))
    return torch.cat(top), torch.cat(bottom)


def two_level_loss(model: TwoLevelVQVAE, batch: tuple, beta: float = 0.25) -> dict[str, torch.Tensor]:
    """Reconstruction + both levels' codebook and beta * commitment terms, each returned for logging."""
    x, _ = batch
    x_hat, top, bottom = model(x)
    recon = F.mse_loss(x_hat, x)
    codebook = top.codebook_loss + bottom.codebook_loss
    commitment = top.commitment_loss + bottom.commitment_loss
    return {"loss": recon + codebook + beta * commitment, "recon": recon, "commitment": commitment}


@register("bottom_prior", "bottom codes", channels=64, blocks=5, embed=32)
class BottomPrior(CodePrior):
    """PixelCNN over the 7x7 bottom codes that also sees every top code. The top codes are all known before the
    bottom is drawn, so they need no mask: a 7x7 convolution on the embedded 4x4 top grid lets every position see
    all 16 of them, an upsampling to 7x7 follows, and the result is added after the first layer and every block."""

    def __init__(self, num_codes: int = 32, top_codes: int = 128, channels: int = 64, blocks: int = 5, embed: int = 32):
        super().__init__(num_codes=num_codes, grid=7, channels=channels, blocks=blocks, embed=embed)
        self.top_codes = top_codes
        self.top_embedding = nn.Embedding(top_codes, embed)
        self.top_features = nn.Sequential(
            nn.Conv2d(embed, channels, 7, padding=3), nn.ReLU(), upsample_4_to_7(channels, channels)
        )
        self.top_to_blocks = nn.ModuleList(nn.Conv2d(channels, channels, 1) for _ in range(blocks))

    @property
    def conditional(self) -> bool:
        """Always: the condition is the top codes."""
        return True

    def condition_terms(self, condition: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Top codes (N, 4, 4) -> the (N, C, 7, 7) maps added after the first layer and after each block."""
        features = self.top_features(self.top_embedding(condition).permute(0, 3, 1, 2))
        return features, [project(features) for project in self.top_to_blocks]

    def check_fits(self, vqvae: TwoLevelVQVAE, grid: int = 7) -> None:
        """Raise PriorMismatch unless both codebook sizes match the two-level VQ-VAE's."""
        sizes = (vqvae.top_quantizer.num_codes, vqvae.bottom_quantizer.num_codes)
        if (self.top_codes, self.num_codes) != sizes:
            raise PriorMismatch(
                f"this bottom prior reads {self.top_codes} top codes and models {self.num_codes} "
                f"bottom codes, but the VQ-VAE has {sizes[0]} and {sizes[1]}"
            )
