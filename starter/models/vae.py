"""The variational autoencoder of notebook 05: the notebook-01 autoencoder with a Gaussian encoder."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.autoencoder import Decoder, conv_encoder
from starter.models.registry import register


class GaussianEncoder(nn.Module):
    """(N, 1, 28, 28) images -> mean and log-variance (N, latent_dim) of q(z | x)."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.features = conv_encoder(hidden)
        self.to_stats = nn.Linear(2 * hidden * 7 * 7, 2 * latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_var = self.to_stats(self.features(x).flatten(1)).chunk(2, dim=1)
        return mean, log_var


def reparameterize(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """z = mean + sigma * eps with eps ~ N(0, I): a sample of q(z | x) that gradients flow through."""
    return mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)


def kl_to_standard_normal(mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """KL(N(mean, exp(log_var)) || N(0, I)) per example (N,), in nats: 0.5 * sum(mu² + sigma² - log sigma² - 1)."""
    return 0.5 * (mean.pow(2) + log_var.exp() - log_var - 1).sum(1)


class VAEOutput(NamedTuple):
    x_hat: torch.Tensor  # (N, 1, 28, 28) Bernoulli means of p(x | z)
    mean: torch.Tensor  # (N, latent_dim)
    log_var: torch.Tensor  # (N, latent_dim)


@register("vae", "images")
class VAE(nn.Module):
    """Gaussian encoder, reparameterised sample, the notebook-01 decoder; `encoder(x)[0]` is the latent to use."""

    def __init__(self, latent_dim: int = 16, hidden: int = 32):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder, self.decoder = GaussianEncoder(latent_dim, hidden), Decoder(latent_dim, hidden)

    def forward(self, x: torch.Tensor) -> VAEOutput:
        mean, log_var = self.encoder(x)
        z = reparameterize(mean, log_var) if self.training else mean
        return VAEOutput(self.decoder(z), mean, log_var)


def vae_loss(model: VAE, batch: tuple) -> dict[str, torch.Tensor]:
    """Negative ELBO per image in nats: Bernoulli reconstruction term + KL to N(0, I), each returned for logging."""
    x, _ = batch
    mean, log_var = model.encoder(x)
    x_hat = model.decoder(reparameterize(mean, log_var))
    reconstruction = F.binary_cross_entropy(x_hat, x, reduction="sum") / len(x)
    kl = kl_to_standard_normal(mean, log_var).mean()
    return {"loss": reconstruction + kl, "reconstruction": reconstruction, "kl": kl, "mse": F.mse_loss(x_hat, x)}
