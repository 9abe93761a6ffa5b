"""The convolutional autoencoder of notebook 01: 28x28 -> latent vector -> 28x28."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.registry import register


def conv_encoder(hidden: int = 32) -> nn.Sequential:
    """Two stride-2 convolutions: (N, 1, 28, 28) -> (N, 2*hidden, 7, 7)."""
    return nn.Sequential(
        nn.Conv2d(1, hidden, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(hidden, 2 * hidden, 4, stride=2, padding=1),
        nn.ReLU(),
    )


def conv_decoder(hidden: int = 32) -> nn.Sequential:
    """Two stride-2 transposed convolutions: (N, 2*hidden, 7, 7) -> (N, 1, 28, 28) in [0, 1]."""
    return nn.Sequential(
        nn.ConvTranspose2d(2 * hidden, hidden, 4, stride=2, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(hidden, 1, 4, stride=2, padding=1),
        nn.Sigmoid(),
    )


class Encoder(nn.Module):
    """(N, 1, 28, 28) images -> (N, latent_dim) vectors."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.features = conv_encoder(hidden)
        self.to_latent = nn.Linear(2 * hidden * 7 * 7, latent_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.to_latent(self.features(x).flatten(1))


class Decoder(nn.Module):
    """(N, latent_dim) vectors -> (N, 1, 28, 28) images in [0, 1]."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.from_latent = nn.Linear(
            latent_dim, 2 * hidden * 7 * 7
        )  # no ReLU here: with tiny latents it can kill every unit
        self.hidden = hidden
        self.upsample = conv_decoder(hidden)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.upsample(self.from_latent(z).view(-1, 2 * self.hidden, 7, 7))


@register("autoencoder", "images")
class Autoencoder(nn.Module):
    """Encoder followed by decoder; pass your own parts to wrap them, or let it build the reference ones."""

    def __init__(
        self, latent_dim: int = 16, hidden: int = 32, encoder: nn.Module | None = None, decoder: nn.Module | None = None
    ):
        super().__init__()
        self.encoder = encoder if encoder is not None else Encoder(latent_dim, hidden)
        self.decoder = decoder if decoder is not None else Decoder(latent_dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


def reconstruction_loss(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error per pixel, averaged over the batch."""
    return F.mse_loss(x_hat, x)


def autoencoder_loss(model: nn.Module, batch: tuple) -> torch.Tensor:
    """Loss function for starter.train.fit: reconstruct the images of the batch."""
    x, _ = batch
    return reconstruction_loss(model(x), x)
