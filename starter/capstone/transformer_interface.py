"""Capstone C's interface: a transformer prior over the code grids of your own capstone-A VQ-VAE, handed in as
weights only, in one safetensors file beside capstone A's.

The reference architecture is the course's `starter.models.transformer.TransformerPrior(num_codes, grid=7, width,
layers, heads=4)`, unconditional; the file holds its state dict under the names TransformerPrior gives it, each
float32 with exactly its shape for the sizes below, which are read from the shapes (`num_codes` and `width` from the
code embedding, `layers` from the blocks present). The number of heads cannot be read from any shape, so the
interface fixes it: HEADS, each head `width / 4` wide. `num_codes` must be capstone A's codebook size.
"""

from __future__ import annotations

import torch

from starter.capstone import BY_GRADE_ID
from starter.capstone.interface import SubmissionError, Tensors, check_bounds, check_schema
from starter.capstone.prior_interface import block_count, embedding_width
from starter.models.transformer import TransformerPrior

FILENAME = BY_GRADE_ID["capstone-c"].filename  # saved next to notebook 06, beside capstone A's file
BOUNDS = {"width": (32, 128), "layers": (1, 6)}  # inclusive (at most 4.9 MB); num_codes: capstone A's
HEADS = 4  # fixed: width must be a multiple of it
GRID = 7


def expected_shapes(num_codes: int, width: int, layers: int) -> dict[str, tuple[int, ...]]:
    """Every tensor name of TransformerPrior(num_codes, 7, width, layers, HEADS), with its shape."""
    with torch.device("meta"):  # shapes only: no memory, no draw from the random state
        model = TransformerPrior(num_codes, GRID, width, layers, HEADS)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}


def transformer_sizes(tensors: Tensors, num_codes: int) -> dict[str, int]:
    """The sizes a transformer prior's shapes imply, checked against BOUNDS, HEADS, capstone A's `num_codes` and the
    whole schema; raises SubmissionError."""
    if "first_vertical.weight" in tensors:
        raise SubmissionError("schema: this is a gated PixelCNN prior (capstone B's), not a TransformerPrior")
    if "classes.weight" in tensors:
        raise SubmissionError("schema: the file holds a class embedding, but capstone C's prior is unconditional")
    sizes = {"width": embedding_width(tensors, num_codes), "layers": block_count(tensors)}
    check_bounds(sizes, BOUNDS)
    if sizes["width"] % HEADS:
        width = sizes["width"]
        raise SubmissionError(f"schema: width = {width} is not a multiple of the {HEADS} heads the interface fixes")
    note = " (capstone C's prior is unconditional)"
    check_schema(tensors, sizes, expected_shapes(num_codes, **sizes), lambda name: False, note)
    return sizes


def load_transformer(tensors: Tensors, num_codes: int, sizes: dict[str, int]) -> TransformerPrior:
    """TransformerPrior with these weights (checked by `transformer_sizes`), in eval mode."""
    with torch.device("meta"):  # the weights come from the file: nothing to initialise
        model = TransformerPrior(num_codes, GRID, heads=HEADS, **sizes)
    model.load_state_dict(tensors, strict=True, assign=True)
    return model.eval()
