"""A small MNIST classifier: the judge of generated digits (notebook 04's IS, FID-MNIST and label accuracy)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from starter.models.registry import register


@register("classifier", "labels")
class Classifier(nn.Module):
    """Two conv blocks and two linear layers; `features` is the 128-d penultimate layer used for FID-MNIST."""

    def __init__(self, channels: int = 32, features: int = 128):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * channels, 2 * channels, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(0.25),
            nn.Linear(2 * channels * 7 * 7, features),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.Dropout(0.25), nn.Linear(features, 10))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) images in [0, 1] -> (N, 128) penultimate-layer features."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def classifier_loss(model: nn.Module, batch: tuple) -> dict[str, torch.Tensor]:
    """Cross-entropy, with the error rate logged alongside."""
    x, y = batch
    logits = model(x)
    return {"loss": F.cross_entropy(logits, y), "error": (logits.argmax(1) != y).float().mean()}
