"""MNIST and Fashion-MNIST as in-memory tensors in the forms the notebooks use, and fast loaders over them."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset

from starter.config import DATA_ROOT
from starter.dataset_files import DATASETS, Dataset, mnist_tensors

__all__ = ["DATASETS", "load_mnist", "make_loader", "to_float", "binarize", "to_int"]

Form = Literal["float", "binary", "int"]


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, 28, 28) -> float32 in [0, 1] with a channel axis (N, 1, 28, 28)."""
    return images.unsqueeze(1).float().div_(255.0)


def binarize(images: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """uint8 images -> float32 {0, 1} with a channel axis (a pixel is on when brighter than `threshold`)."""
    return (to_float(images) > threshold).float()


def to_int(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> int64 intensities 0..255 with a channel axis: targets for a 256-way softmax."""
    return images.unsqueeze(1).long()


TRANSFORMS = {"float": to_float, "binary": binarize, "int": to_int}


def load_mnist(
    train: bool = True,
    form: Form = "float",
    limit: int | None = None,
    device: torch.device | str = "cpu",
    root: Path | str = DATA_ROOT,
    dataset: Dataset = "mnist",
) -> TensorDataset:
    """MNIST (or `dataset="fashion"`: Fashion-MNIST) as an in-memory TensorDataset of (images, labels);
    `limit` keeps the first examples."""
    if form not in TRANSFORMS:
        raise ValueError(f"form must be one of {sorted(TRANSFORMS)}, got {form!r}")
    images, labels = mnist_tensors(train, root, dataset, limit)
    return TensorDataset(TRANSFORMS[form](images).to(device), labels.to(device))


def make_loader(
    dataset: TensorDataset, batch_size: int = 128, shuffle: bool = False, seed: int = 0, num_workers: int = 0
) -> DataLoader:
    """A DataLoader that slices whole batches out of in-memory tensors (no per-image Python work)."""
    if shuffle:
        sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        sampler = SequentialSampler(dataset)
    return DataLoader(
        dataset, sampler=BatchSampler(sampler, batch_size, drop_last=False), batch_size=None, num_workers=num_workers
    )
