"""Capstone B's interface: a prior over the code grids of your own capstone-A VQ-VAE, handed in as weights only, in
one safetensors file beside capstone A's.

The reference architecture is the course's `starter.models.prior.GatedCodePrior(num_codes, grid=7, channels,
blocks, embed)`, unconditional; the file holds its state dict under the names GatedCodePrior gives it, each float32
with exactly its shape for the sizes below, which are read from the shapes (`num_codes` and `embed` from the
embedding, `channels` from the first convolution, `blocks` from the blocks present). `num_codes` must be capstone
A's codebook size: the prior models that VQ-VAE's codes. The masks of the masked convolutions are the
architecture's, never the file's: any in the file are ignored (a mask that let a position see itself would make
the likelihood meaningless).
"""

from __future__ import annotations

import re

import torch
from torch import nn

from starter.capstone import BY_GRADE_ID
from starter.capstone.interface import SubmissionError, Tensors, check_bounds, check_schema
from starter.models.prior import GatedCodePrior

FILENAME = BY_GRADE_ID["capstone-b"].filename  # saved next to the notebook, beside capstone A's file
BOUNDS = {"channels": (16, 64), "blocks": (1, 8), "embed": (8, 64)}  # inclusive (at most 3.9 MB); num_codes: A's
GRID = 7


def is_mask(name: str) -> bool:
    """Whether a state-dict name is a masked convolution's mask (the architecture's, not a weight)."""
    return name.endswith(".mask")


def expected_shapes(num_codes: int, channels: int, blocks: int, embed: int) -> dict[str, tuple[int, ...]]:
    """Every tensor name of GatedCodePrior(num_codes, 7, channels, blocks, embed) that evaluation reads, with its
    shape (the masks aside)."""
    with torch.random.fork_rng(devices=[]):  # its masks are built on the CPU: no meta device; no draw either
        model = GatedCodePrior(num_codes, GRID, channels, blocks, embed)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items() if not is_mask(name)}


def check_rank(tensors: Tensors, name: str, rank: int) -> None:
    """Raise SubmissionError unless the file holds a tensor `name` with `rank` dimensions."""
    if name not in tensors:
        raise SubmissionError(f"schema: no tensor named {name!r}")
    if tensors[name].dim() != rank:
        raise SubmissionError(f"schema: {name} has shape {tuple(tensors[name].shape)}, expected {rank} dimensions")


def embedding_width(tensors: Tensors, num_codes: int) -> int:
    """The width of a prior's code embedding (`embedding.weight`, one row per code), checked against capstone A's
    `num_codes`; raises SubmissionError."""
    check_rank(tensors, "embedding.weight", 2)
    codes, width = tensors["embedding.weight"].shape
    if codes != num_codes:
        raise SubmissionError(
            f"schema: the prior models {codes} codes, but your capstone-A VQ-VAE has {num_codes}: train it on that "
            "VQ-VAE's codes"
        )
    return width


def block_count(tensors: Tensors) -> int:
    """How many blocks (`blocks.<i>.…`) a prior's tensors hold."""
    return len({match[1] for name in tensors if (match := re.match(r"blocks\.(\d+)\.", name))})


def prior_sizes(tensors: Tensors, num_codes: int) -> dict[str, int]:
    """The sizes a prior's shapes imply, checked against BOUNDS, capstone A's `num_codes` and the whole schema;
    raises SubmissionError."""
    embed = embedding_width(tensors, num_codes)
    check_rank(tensors, "first_vertical.weight", 4)
    sizes = {"channels": tensors["first_vertical.weight"].shape[0], "blocks": block_count(tensors), "embed": embed}
    check_bounds(sizes, BOUNDS)
    note = " (capstone B's prior is unconditional)"
    check_schema(tensors, sizes, expected_shapes(num_codes, **sizes), is_mask, note)
    return sizes


def prior_tensors(model: nn.Module) -> Tensors:
    """What to save for capstones B and C: the prior's state dict without any masks, on the CPU."""
    return {name: t.detach().cpu().contiguous() for name, t in model.state_dict().items() if not is_mask(name)}


def load_prior(tensors: Tensors, num_codes: int, sizes: dict[str, int]) -> GatedCodePrior:
    """GatedCodePrior with these weights and its own masks, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        model = GatedCodePrior(num_codes, GRID, **sizes)
    state = model.state_dict()
    model.load_state_dict({name: tensors[name] if not is_mask(name) else state[name] for name in state}, strict=True)
    return model.eval()
