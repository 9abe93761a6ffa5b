"""Image grids and curves with matplotlib; every function returns its Figure."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, scale: float = 0.6) -> Figure:
    """Show a batch (N, 1, H, W) of images in [0, 1] as one grid."""
    images = images.detach().float().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(1)
    grid = make_grid(images.clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    rows = (len(images) + nrow - 1) // nrow
    figure, axis = plt.subplots(figsize=(scale * nrow, scale * rows + (0.4 if title else 0)))
    axis.imshow(grid[0], cmap="gray", vmin=0, vmax=1)
    axis.axis("off")
    if title:
        axis.set_title(title)
    figure.tight_layout()
    return figure


def compare_images(rows: Mapping[str, torch.Tensor], scale: float = 0.7) -> Figure:
    """One labelled row per entry, e.g. {"original": x, "reconstruction": x_hat}."""
    count = max(len(images) for images in rows.values())
    figure, axes = plt.subplots(len(rows), count, figsize=(scale * count, scale * len(rows) + 0.3), squeeze=False)
    for axis_row, (label, images) in zip(axes, rows.items()):
        for axis, image in zip(axis_row, images.detach().float().cpu()):
            axis.imshow(image.reshape(image.shape[-2:]), cmap="gray", vmin=0, vmax=1)
        for axis in axis_row:
            axis.set_xticks([]), axis.set_yticks([])
        axis_row[0].set_ylabel(label, rotation=0, ha="right", va="center")
    figure.tight_layout()
    return figure


def plot_history(history: Mapping[str, Sequence[float]], keys: Sequence[str] = ("train_loss", "test_loss"),
                 ylabel: str = "loss", log: bool = False, title: str | None = None) -> Figure:
    """Per-epoch curves of the chosen history entries."""
    figure, axis = plt.subplots(figsize=(5, 3.2))
    for key in keys:
        values = history[key]
        axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=key)
    axis.set_xlabel("epoch")
    axis.set_ylabel(ylabel)
    if log:
        axis.set_yscale("log")
    if title:
        axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_xy(x: Sequence[float], y: Sequence[float], xlabel: str, ylabel: str, title: str | None = None,
            logx: bool = False, logy: bool = False) -> Figure:
    """A single line plot with markers, e.g. test MSE against latent size."""
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.plot(x, y, marker="o")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if logx:
        axis.set_xscale("log", base=2)
    if logy:
        axis.set_yscale("log")
    if title:
        axis.set_title(title)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure
