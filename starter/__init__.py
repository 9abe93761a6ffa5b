"""Helpers shared by the discrete-latents notebooks: data, models, training, plots, checks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starter.config import DATA_ROOT, FAST, pick, seed_everything

if TYPE_CHECKING:
    import torch

__all__ = ["DATA_ROOT", "DEVICE", "FAST", "pick", "seed_everything"]


def __getattr__(name: str) -> torch.device:
    """DEVICE, from `starter.config` at its first use: importing the package does not import torch."""
    if name != "DEVICE":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from starter.config import DEVICE

    return DEVICE
