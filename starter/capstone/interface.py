"""Capstone A's interface: a VQ-VAE for Fashion-MNIST, handed in as weights only, in one safetensors file.

The reference architecture is the course's `starter.models.vq.VQVAE(num_codes, code_dim, hidden)`; the file holds its
state dict under the names VQVAE gives it, each float32 with exactly VQVAE's shape for the sizes below. The sizes are
read from the shapes themselves (`hidden` from the first convolution, `num_codes` and `code_dim` from the codebook),
never from a config. At most 64 codes (6 bits per position of the 7x7 grid, 294 bits per image): the notebooks'
shipped VQ-VAEs have 128, so none of them fits this interface as it is (`score.similar` catches one trimmed to fit,
and the reference run's own file, which ships too).

Extra tensors are refused, except the three training-only buffers of VQVAE's quantizer (EMA counts and sums, steps
since a code was last used), which are ignored, so that `save_file(model.state_dict(), FILENAME)` of an EMA-trained
VQVAE is a valid submission. `submission_tensors(model)` gives the minimal form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load
from torch import nn

from starter.capstone import BY_GRADE_ID, MAX_BYTES
from starter.models.vq import VQVAE

FILENAME = BY_GRADE_ID["capstone-a"].filename  # saved next to the notebook
BOUNDS = {"num_codes": (16, 64), "code_dim": (4, 64), "hidden": (16, 64)}  # inclusive
IGNORED = ("quantizer.ema_count", "quantizer.ema_sum", "quantizer.steps_unused")  # training state, not evaluated
DTYPE = torch.float32

Tensors = dict[str, torch.Tensor]


class SubmissionError(ValueError):
    """A submission that cannot be scored; its message is the one-line reason."""


def expected_shapes(num_codes: int, code_dim: int, hidden: int) -> dict[str, tuple[int, ...]]:
    """Every tensor name of VQVAE(num_codes, code_dim, hidden) that evaluation needs, with its shape."""
    with torch.device("meta"):  # shapes only: no memory, no draw from the random state
        model = VQVAE(num_codes, code_dim, hidden)
    return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items() if name not in IGNORED}


def listed(names: list[str], most: int = 5) -> str:
    """The first `most` names, comma-separated, and how many more there are: a reason stays one short line."""
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(names[:most]) + more


def sizes_of(tensors: Tensors) -> dict[str, int]:
    """The sizes a submission's shapes imply, checked against BOUNDS and the whole schema; raises SubmissionError."""
    for name, rank in (("encoder.0.0.weight", 4), ("quantizer.codebook", 2)):
        if name not in tensors:
            prefixed = next((found for found in sorted(tensors) if found.endswith("." + name)), None)
            hint = f" (there is {prefixed!r}: save the VQVAE's own state dict, not a wrapper's)" if prefixed else ""
            raise SubmissionError(f"schema: no tensor named {name!r}{hint}")
        if tensors[name].dim() != rank:
            raise SubmissionError(f"schema: {name} has shape {tuple(tensors[name].shape)}, expected {rank} dimensions")
    num_codes, code_dim = tensors["quantizer.codebook"].shape
    sizes = {"num_codes": num_codes, "code_dim": code_dim, "hidden": tensors["encoder.0.0.weight"].shape[0]}
    check_bounds(sizes, BOUNDS)
    check_schema(tensors, sizes, expected_shapes(**sizes), lambda name: name in IGNORED)
    return sizes


def check_bounds(sizes: dict[str, int], bounds: dict[str, tuple[int, int]]) -> None:
    """Raise SubmissionError unless every size is within its bounds (before any model of those sizes is built: a
    5 MiB file can claim sizes whose model would not fit in memory)."""
    for size, value in sizes.items():
        low, high = bounds[size]
        if not low <= value <= high:
            raise SubmissionError(f"schema: {size} = {value} (from the tensor shapes) is outside {low}..{high}")


def check_schema(
    tensors: Tensors,
    sizes: dict[str, int],
    expected: dict[str, tuple[int, ...]],
    ignored: Callable[[str], bool],
    extra_note: str = "",
) -> None:
    """Raise SubmissionError unless the tensors are exactly the `expected` names with their shapes, in float32 (the
    `ignored` names aside); `sizes` name what the shapes implied."""
    missing = sorted(set(expected) - set(tensors))
    if missing:
        raise SubmissionError(f"schema: missing tensors {listed(missing)}")
    extra = sorted(name for name in set(tensors) - set(expected) if not ignored(name))
    if extra:
        raise SubmissionError(f"schema: unexpected tensors {listed(extra)}{extra_note}")
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            found, implied = tuple(tensors[name].shape), ", ".join(f"{k}={v}" for k, v in sizes.items())
            raise SubmissionError(f"schema: {name} has shape {found}, expected {shape} for {implied}")
        if tensors[name].dtype != DTYPE:
            raise SubmissionError(f"schema: {name} is {tensors[name].dtype}, expected {DTYPE}")


def submission_tensors(model: nn.Module) -> Tensors:
    """What to save for capstone A: the model's state dict without its training-only buffers, on the CPU."""
    state = model.state_dict()
    return {name: tensor.detach().cpu().contiguous() for name, tensor in state.items() if name not in IGNORED}


def read_submission(source: Path | str | bytes) -> Tensors:
    """The tensors of a submitted file (its path, or its bytes as the grader's intake read them), read by
    safetensors only (never pickle); raises SubmissionError when the file is missing, over MAX_BYTES or not a
    safetensors file."""
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            raise SubmissionError(f"missing: no file at {path}")
        if path.stat().st_size > MAX_BYTES:
            raise SubmissionError(f"too large: {path.stat().st_size:,} bytes, the limit is {MAX_BYTES:,}")
        source = path.read_bytes()
    if len(source) > MAX_BYTES:
        raise SubmissionError(f"too large: {len(source):,} bytes, the limit is {MAX_BYTES:,}")
    try:
        return load(source)
    except Exception as error:  # safetensors raises its own error, OSError or ValueError for damaged files
        pickled = source[:2] == b"PK" or source[:1] == b"\x80"  # a zip archive (torch.save) or a bare pickle
        hint = " (it is a torch.save or pickle file)" if pickled else ""
        summary = str(error).splitlines()[0] if str(error) else type(error).__name__
        advice = "save it with safetensors.torch.save_file"
        raise SubmissionError(f"not a safetensors file{hint}: {summary}; {advice}") from None
