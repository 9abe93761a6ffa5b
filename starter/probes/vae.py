"""Fixtures for notebook 05 (VAE): a course VAE for the student's loss to run on."""

from __future__ import annotations

from torch import nn


def course_vae(latent_dim: int, hidden: int) -> nn.Module:
    """The course's VAE (notebook 05's model, no exercise's answer), for the check to give its weights."""
    from starter.models.vae import VAE

    return VAE(latent_dim=latent_dim, hidden=hidden)
