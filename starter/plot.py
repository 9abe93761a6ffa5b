"""Image grids and curves with matplotlib; every function returns its Figure."""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Mapping, Sequence

import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot() -> ModuleType:
    """matplotlib.pyplot, imported when the first figure is drawn: a kernel that draws none (a grading kernel's)
    starts 0.3 s sooner."""
    import matplotlib.pyplot

    return matplotlib.pyplot


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2, pad_value: float = 1.0) -> torch.Tensor:
    """Images (N, C, H, W) tiled row by row, `nrow` to a row, into one (C, H', W') image with `padding` pixels of
    `pad_value` around each (a single image as it is): torchvision's make_grid, whose one-channel grids repeat the
    channel three times (tests/test_train_and_plot.py holds them equal), without importing torchvision, which takes
    a second (it imports torch._dynamo)."""
    n, channels, height, width = images.shape
    if n == 1:
        return images[0]
    columns, rows = min(nrow, n), -(-n // nrow)
    cell_h, cell_w = height + padding, width + padding
    grid = images.new_full((channels, rows * cell_h + padding, columns * cell_w + padding), pad_value)
    for index, image in enumerate(images):
        top, left = (index // columns) * cell_h + padding, (index % columns) * cell_w + padding
        grid[:, top : top + height, left : left + width] = image
    return grid


def draw_images(
    figure: Figure, images: torch.Tensor, nrow: int = 8, title: str | None = None, scale: float = 0.6
) -> Figure:
    """Draw a batch (N, 1, H, W) of images in [0, 1] as one grid on `figure`, sized to fit."""
    images = images.detach().float().cpu()
    if images.dim() == 3:
        images = images.unsqueeze(1)
    grid = image_grid(images.clamp(0, 1), nrow=nrow)
    rows = (len(images) + nrow - 1) // nrow
    figure.set_size_inches(scale * nrow, scale * rows + (0.4 if title else 0))
    axis = figure.subplots()
    axis.imshow(grid[0], cmap="gray", vmin=0, vmax=1)
    axis.axis("off")
    if title:
        axis.set_title(title)
    figure.tight_layout()
    return figure


def show_images(images: torch.Tensor, nrow: int = 8, title: str | None = None, scale: float = 0.6) -> Figure:
    """Show a batch (N, 1, H, W) of images in [0, 1] as one grid."""
    return draw_images(pyplot().figure(), images, nrow, title, scale)


def draw_code_grid(
    axis, grid: torch.Tensor, num_codes: int, fontsize: float = 7, marked: tuple[int, int] | None = None
) -> None:
    """Code indices (H, W) as coloured cells with their numbers on `axis`; the cell `marked` is outlined in red."""
    grid = grid.detach().cpu()
    axis.imshow(grid, cmap="tab20", vmin=0, vmax=num_codes - 1)
    for (i, j), value in zip(
        torch.cartesian_prod(torch.arange(grid.shape[0]), torch.arange(grid.shape[1])).tolist(), grid.flatten().tolist()
    ):
        axis.text(
            j,
            i,
            str(value),
            ha="center",
            va="center",
            fontsize=fontsize,
            fontweight="bold" if marked == (i, j) else "normal",
        )
    if marked:
        from matplotlib.patches import Rectangle

        axis.add_patch(Rectangle((marked[1] - 0.5, marked[0] - 0.5), 1, 1, fill=False, color="red", linewidth=2))
    axis.axis("off")


def compare_images(rows: Mapping[str, torch.Tensor], scale: float = 0.7) -> Figure:
    """One labelled row per entry, e.g. {"original": x, "reconstruction": x_hat}."""
    count = max(len(images) for images in rows.values())
    figure, axes = pyplot().subplots(len(rows), count, figsize=(scale * count, scale * len(rows) + 0.3), squeeze=False)
    for axis_row, (label, images) in zip(axes, rows.items()):
        for axis, image in zip(axis_row, images.detach().float().cpu()):
            axis.imshow(image.reshape(image.shape[-2:]), cmap="gray", vmin=0, vmax=1)
        for axis in axis_row:
            axis.set_xticks([]), axis.set_yticks([])
        axis_row[0].set_ylabel(label, rotation=0, ha="right", va="center")
    figure.tight_layout()
    return figure


def plot_curves(
    curves: Mapping[str, Sequence[float]],
    xlabel: str = "epoch",
    ylabel: str = "loss",
    log: bool = False,
    title: str | None = None,
) -> Figure:
    """One line per entry, against 1, 2, 3, ... (epochs by default)."""
    figure, axis = pyplot().subplots(figsize=(5, 3.2))
    for label, values in curves.items():
        axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    if log:
        axis.set_yscale("log")
    if title:
        axis.set_title(title)
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def plot_history(
    history: Mapping[str, Sequence[float]],
    keys: Sequence[str] = ("train_loss", "test_loss"),
    ylabel: str = "loss",
    log: bool = False,
    title: str | None = None,
) -> Figure:
    """Per-epoch curves of the chosen history entries."""
    return plot_curves({key: history[key] for key in keys}, ylabel=ylabel, log=log, title=title)


def plot_xy(
    x: Sequence[float],
    y: Sequence[float],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
) -> Figure:
    """A single line plot with markers, e.g. test MSE against latent size."""
    figure, axis = pyplot().subplots(figsize=(5, 3.2))
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


def plot_code_usage(counts: Mapping[str, torch.Tensor], title: str = "code usage on the test set") -> Figure:
    """One bar chart per entry: how often each code is used, codes sorted from most to least used."""
    figure, axes = pyplot().subplots(1, len(counts), figsize=(3.6 * len(counts), 2.8), sharey=True, squeeze=False)
    for axis, (label, count) in zip(axes[0], counts.items()):
        share = count.double() / count.sum()
        used = int((count > 0).sum())
        axis.bar(range(len(count)), share.sort(descending=True).values.numpy(), width=1.0)
        axis.set_title(f"{label}: {used}/{len(count)} used", fontsize=10)
        axis.set_xlabel("codes, most used first")
    axes[0][0].set_ylabel("share of positions")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def plot_codebook(
    codebook: torch.Tensor, counts: torch.Tensor, title: str = "codebook, first two principal components"
) -> Figure:
    """Scatter of the codes projected on their first two principal components; size and colour show usage."""
    codes = codebook.detach().float().cpu()
    centred = codes - codes.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    xy = centred @ v[:2].T
    share = (counts.double() / counts.sum()).numpy()
    figure, axis = pyplot().subplots(figsize=(4.5, 4))
    dots = axis.scatter(
        xy[:, 0], xy[:, 1], s=10 + 3000 * share, c=share, cmap="viridis", edgecolors="k", linewidths=0.3
    )
    dead = counts == 0
    if dead.any():
        axis.scatter(xy[dead, 0], xy[dead, 1], marker="x", c="red", s=25, label="never used")
        axis.legend(loc="best", fontsize=8)
    figure.colorbar(dots, ax=axis, label="share of positions")
    axis.set_title(title, fontsize=10)
    figure.tight_layout()
    return figure


def show_code_grids(grids: torch.Tensor, images: torch.Tensor | None = None, num_codes: int | None = None) -> Figure:
    """Code-index grids (N, H, W) drawn as coloured cells with their index, optionally above the images they encode."""
    grids = grids.detach().cpu()
    rows = 2 if images is not None else 1
    figure, axes = pyplot().subplots(rows, len(grids), figsize=(1.9 * len(grids), 1.9 * rows), squeeze=False)
    for column, grid in enumerate(grids):
        draw_code_grid(axes[0][column], grid, num_codes or int(grids.max()) + 1, fontsize=5.5)
        if images is not None:
            axes[1][column].imshow(
                images[column].detach().cpu().reshape(images.shape[-2:]), cmap="gray", vmin=0, vmax=1
            )
            axes[1][column].axis("off")
    figure.tight_layout()
    return figure
