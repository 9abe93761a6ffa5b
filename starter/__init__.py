"""Helpers shared by the discrete-latents notebooks: data, models, training, plots, checks."""

from starter.config import DATA_ROOT, DEVICE, FAST, pick, seed_everything

__all__ = ["DATA_ROOT", "DEVICE", "FAST", "pick", "seed_everything"]
