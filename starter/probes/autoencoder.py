"""Fixtures for notebook 01 (autoencoder): a small model, a loss, batches and an optimiser for a training loop."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from starter.probes.general import as_module


def tiny_autoencoder() -> nn.Module:
    """A small model of 28x28 images for training-loop checks (none of the course's architectures); its batch norm
    makes every step depend on whether the model is in training mode."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 4),
        nn.ReLU(),
        nn.Linear(4, 784),
        nn.Unflatten(1, (1, 28, 28)),
        nn.BatchNorm2d(1),
        nn.Sigmoid(),
    )


def absolute_error(model: nn.Module, batch: tuple) -> torch.Tensor:
    """A loss function for training loops: the mean absolute reconstruction error of the batch's images."""
    x = batch[0]
    return (model(x) - x).abs().mean()


def batches(inputs: torch.Tensor, labels: torch.Tensor, sizes: list[int]) -> torch.utils.data.DataLoader:
    """A DataLoader over (inputs, labels) that yields batches of `sizes` examples, in order (as fit's loaders do,
    with `.dataset` and `len`)."""
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(inputs, labels),
        batch_sampler=[list(range(s, s + n)) for s, n in zip(starts, sizes)],
    )


def sgd(module: Any, lr: float) -> torch.optim.Optimizer:
    """Plain SGD over the module's parameters."""
    return torch.optim.SGD(as_module(module).parameters(), lr=lr)
