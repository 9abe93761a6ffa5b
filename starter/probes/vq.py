"""Probes for notebook 02 (VQ-VAE): how big the tensors are that a distance computation makes, where the memory of
the student's process cannot be measured."""

from __future__ import annotations

from typing import Callable


def largest_tensor(fn: Callable, *shapes: list[int]) -> int:
    """Elements of the largest tensor fn builds on shape-only tensors: where memory cannot be measured (no /proc)."""
    from starter.metrics import largest_tensor as count

    return count(fn, *[tuple(shape) for shape in shapes])
