"""Capstone A's grader: a submitted VQ-VAE's reconstruction MSE on the Fashion-MNIST test set, in tiers, and the
submissions and shipped checkpoints its weights are equal or close to. No student code runs: the weights go into
the course's VQVAE (`interface`).

Tiers, by the MSE per pixel on the whole test set (10,000 images): 3 points <= 0.0065, 2 points <= 0.0080, 1 point
<= 0.0120. The measurements behind them, on the same 10,000 images:

- the reference run (`python -m starter.capstone.reference`: 64 codes of 16 dimensions, hidden 32, EMA and
  restarts, Adam 1e-3, batch 128; about 14.5 s an epoch on 2 CPU cores) after 1 / 3 / 5 / 9 / 15 / 26 epochs (the
  last within its 10-minute budget): 0.0112 / 0.0077 / 0.0070 / 0.0064 / 0.0061 / 0.0058. So the top tier takes
  about 9 epochs, two or three minutes of the 15 the capstone allows, the second about 3 and the first about 1;
- the shipped fashion_vqvae.pt (128 codes, 10 epochs): 0.0056, and 0.0075 cut to its 64 most used codes;
- floors: every test image predicted by the mean training image 0.087; untrained VQVAEs 0.15 to 0.18.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Union

import torch
from safetensors.torch import load_file

from starter.capstone.interface import IGNORED, SubmissionError, Tensors, listed, read_submission, sizes_of
from starter.checkpoints import read_checkpoint
from starter.config import CHECKPOINTS, DATA_ROOT
from starter.data import load_mnist, make_loader
from starter.metrics import vqvae_report
from starter.models.vq import VQVAE

TIERS = ((3, 0.0065), (2, 0.0080), (1, 0.0120))  # (points, highest test MSE that earns them), best first
TIER_LINES = tuple(f"{points} {'points' if points > 1 else 'point'}: test MSE ≤ {mse:.4f}" for points, mse in TIERS)
TOLERANCE = 1e-3  # relative L2 distance under which two sets of weights count as the same
COVERAGE = 0.5  # the share of a submission's weights that must match by name and shape for a comparison
SHIPPED = "shipped checkpoint"  # how a similarity line about a shipped checkpoint begins

Weights = Union[Path, str, bytes, Tensors]  # a file, its bytes, or its tensors


@dataclass
class CapstoneResult:
    """The outcome of one submission: points out of max_points, what was measured, why it got 0, what it resembles."""

    points: int
    max_points: int = TIERS[0][0]
    measured: dict[str, float] = field(default_factory=dict)  # e.g. {"test MSE": 0.0075}
    reason: str = ""  # set whenever points == 0
    similar: list[str] = field(default_factory=list)
    tiers: tuple[str, ...] = TIER_LINES
    title: str = "capstone A"

    @property
    def test_mse(self) -> float | None:
        return self.measured.get("test MSE")

    def report(self) -> str:
        """A few lines for the student: points, the measurements, the reason for a 0, the similarity hits, the tiers."""
        measured = ", ".join(f"{name} {shown(value)}" for name, value in self.measured.items()) or "nothing measured"
        lines = [f"{self.title}: {self.points}/{self.max_points} points, {measured}"]
        lines += [f"  0 points: {self.reason}"] if self.reason else []
        lines += [f"  similar to {hit}" for hit in self.similar]
        return "\n".join(lines + [f"  tier: {tier}" for tier in self.tiers])


def shown(value: float) -> str:
    """A measurement as the report prints it: 3 significant digits, and 5 decimals below 0.1 (an MSE)."""
    return f"{value:.5f}" if abs(value) < 0.1 else f"{value:.3g}"


def evaluated(tensors: Tensors) -> Tensors:
    """The floating-point tensors that evaluation uses (not the training-only buffers)."""
    return {name: tensor for name, tensor in tensors.items() if name not in IGNORED and tensor.is_floating_point()}


def distance(a: Tensors, b: Tensors) -> tuple[float, float]:
    """(relative L2 distance, share of a's weights compared) over the tensors both hold with the same shape."""
    a, b = evaluated(a), evaluated(b)
    shared = [name for name in a if name in b and a[name].shape == b[name].shape]
    total = sum(tensor.numel() for tensor in a.values())
    if not shared or not total:
        return math.inf, 0.0
    difference = sum(float((a[n].double() - b[n].double()).pow(2).sum()) for n in shared)
    size = max(sum(float(t[n].double().pow(2).sum()) for n in shared) for t in (a, b))
    compared = sum(a[n].numel() for n in shared) / total
    return (math.sqrt(difference / size) if size else 0.0), compared


@functools.lru_cache(maxsize=4)
def shipped_weights(folder: Path = CHECKPOINTS) -> dict[str, Tensors]:
    """The state dict of every checkpoint shipped with the course, and the tensors of its capstones' reference runs,
    by file name."""
    found = {path.name: read_checkpoint(path)["state_dict"] for path in sorted(Path(folder).glob("*.pt"))}
    return found | {path.name: load_file(str(path)) for path in sorted(Path(folder).glob("*.safetensors"))}


def as_tensors(weights: Weights) -> Tensors:
    """A submission's tensors: given as they are, or read from its safetensors file or bytes."""
    return weights if isinstance(weights, dict) else read_submission(weights)


def similar(
    submission: Weights,
    others: Mapping[str, Weights] | None = None,
    shipped: Path = CHECKPOINTS,
    tolerance: float = TOLERANCE,
) -> list[str]:
    """The shipped checkpoints and the `others` (label -> weights) whose weights are within `tolerance` (relative
    L2 distance) of the submission's, over at least COVERAGE of them by name and shape; unreadable files are skipped."""
    try:
        tensors = as_tensors(submission)
    except SubmissionError:
        return []
    candidates = {f"{SHIPPED} {name}": weights for name, weights in shipped_weights(Path(shipped)).items()}
    for label, weights in (others or {}).items():
        try:
            candidates[label] = as_tensors(weights)
        except SubmissionError:
            continue
    hits = []
    for label, weights in candidates.items():
        gap, compared = distance(tensors, weights)
        if compared >= COVERAGE and gap <= tolerance:
            hits.append(f"{label} (relative distance {gap:.1e} over {compared:.0%} of the weights)")
    return hits


def finite(tensors: Tensors, what: str = "") -> None:
    """Raise SubmissionError when any evaluated tensor holds NaN or inf; `what` begins the reason."""
    broken = [name for name, tensor in evaluated(tensors).items() if not bool(torch.isfinite(tensor).all())]
    if broken:
        raise SubmissionError(f"{what}{': ' if what else ''}non-finite values (NaN or inf) in {listed(broken)}")


def vqvae_from(tensors: Tensors, sizes: dict[str, int]) -> VQVAE:
    """VQVAE(**sizes) holding these weights (checked by `sizes_of`), in eval mode."""
    with torch.device("meta"):  # the weights come from the file: nothing to initialise, no draw from the random state
        model = VQVAE(**sizes)
    state = {name: tensors[name] for name in model.state_dict() if name in tensors}
    state["quantizer.steps_unused"] = torch.zeros(sizes["num_codes"], dtype=torch.long)
    model.load_state_dict(state, strict=True, assign=True)
    return model.eval()


@torch.no_grad()
def measure_mse(tensors: Tensors, sizes: dict[str, int], limit: int | None = None, root: Path = DATA_ROOT) -> float:
    """Reconstruction MSE per pixel of VQVAE(**sizes) with these weights on the first `limit` (default all) images of
    the Fashion-MNIST test set, in batches of 1000, in eval mode."""
    test = load_mnist(train=False, limit=limit, root=root, dataset="fashion")
    return vqvae_report(vqvae_from(tensors, sizes), make_loader(test, 1000))["mse"]


def score_vqvae(
    weights: Path | str | bytes,
    others: Mapping[str, Weights] | None = None,
    shipped: Path = CHECKPOINTS,
    limit: int | None = None,
    root: Path = DATA_ROOT,
) -> CapstoneResult:
    """Score a capstone-A file (its path or bytes): 0 points with the reason for a missing, oversized, non-safetensors,
    wrong-schema or non-finite file, or for a shipped checkpoint's weights; otherwise the tier of its test MSE.
    `others` (label -> weights) are the other submissions to compare with; `limit` cuts the test set (tests only)."""
    try:
        tensors = read_submission(weights)
    except SubmissionError as error:
        return CapstoneResult(0, reason=str(error))
    hits = similar(tensors, others, shipped)
    try:
        sizes = sizes_of(tensors)
        finite(tensors)
        copied = [hit for hit in hits if hit.startswith(SHIPPED)]
        if copied:
            raise SubmissionError(f"the weights are those of a {copied[0]}, not your own")
    except SubmissionError as error:
        return CapstoneResult(0, reason=str(error), similar=hits)
    mse = measure_mse(tensors, sizes, limit, root)
    if not math.isfinite(mse):
        return CapstoneResult(0, measured={"test MSE": mse}, reason="the reconstructions are not finite", similar=hits)
    points = next((points for points, highest in TIERS if mse <= highest), 0)
    reason = "" if points else f"test MSE {mse:.5f} is above {TIERS[-1][1]:.4f}, the threshold of the lowest tier"
    return CapstoneResult(points, measured={"test MSE": mse}, reason=reason, similar=hits)
