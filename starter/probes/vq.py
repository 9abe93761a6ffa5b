"""Probes for notebook 02 (VQ-VAE): how big the tensors are that a distance computation makes."""

from __future__ import annotations

from typing import Callable

import torch


def output_summary(fn: Callable, args: list, index: torch.Tensor) -> dict:
    """Call fn(*args) and return only a summary of its (2-d) output: shape, the values at the flat positions
    `index`, and the sum of each row. For measuring memory: the summary is small."""
    output = fn(*args)
    if not torch.is_tensor(output) or output.dim() != 2:
        return {
            "output": output if not torch.is_tensor(output) else None,
            "shape": list(output.shape) if torch.is_tensor(output) else None,
        }
    return {"shape": list(output.shape), "values": output.flatten()[index], "row_sums": output.sum(1)}


def largest_tensor(fn: Callable, *shapes: list[int]) -> int:
    """Elements of the largest tensor fn builds on shape-only tensors: where memory cannot be measured (no /proc)."""
    from starter.metrics import largest_tensor as count

    return count(fn, *[tuple(shape) for shape in shapes])
